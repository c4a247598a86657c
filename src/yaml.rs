//! Reading YAML, the one way: manifests (`audit`, `mutate`), policy files and policy tests all
//! read it through here.
//!
//! - [`Documents`] splits a stream into documents as it reads, at kubectl's rule (a line that
//!   starts with `---` begins a document, a `...` line ends one), each with its first line;
//! - [`parse`] parses one document into JSON as kubectl reads it, with a depth budget: deeper
//!   than [`MAX_DEPTH`] is refused by the parser as it reads (serde-saphyr's budget), never
//!   by a scan of our own;
//! - [`position`] finds the line and column of a field (a path of keys and indexes) in a
//!   document, for error messages and the SARIF and HTML reports.
//!
//! Why serde-saphyr rather than the faster serde_yaml_ng (BENCHMARKS.md, "The parser chosen"):
//! libyaml's time on nested flow mappings grows faster than the square of the depth before any
//! limit acts (6.7 s of CPU for 160 KB of `{a: `), so it needs a hand-written scan in front;
//! serde-saphyr refuses depth past the budget as it reads.

use std::io::BufRead;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};

/// The most levels of nesting accepted (sequences and mappings): the same limit as for JSON
/// ([`crate::nesting::MAX_DEPTH`]).
pub const MAX_DEPTH: usize = crate::nesting::MAX_DEPTH;

/// One document of a stream, split off but not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The document's bytes: whole lines, from its `---` marker line (if any) on.
    pub bytes: Vec<u8>,
    /// 1-based line of the stream where `bytes` begin.
    pub first_line: usize,
    /// Byte offset in the stream where `bytes` begin.
    pub offset: usize,
}

/// Splits a stream into documents as it reads it, a line at a time, as kubectl's YAMLReader
/// does: a line starting with `---` (then a blank, or nothing) begins a document, that line
/// included; a line `...` ends one. YAML forbids both at column 0
/// inside a document, so the split never cuts one. Documents without a byte are left out,
/// those without content are not (see [`has_content`]); a read error ends the iteration.
pub struct Documents<R> {
    reader: R,
    /// 1-based line and byte offset of the next byte to read.
    line: usize,
    offset: usize,
    doc: Vec<u8>,
    doc_line: usize,
    doc_offset: usize,
    done: bool,
}

impl<R: BufRead> Documents<R> {
    /// The documents of `reader`, whose first byte is at `line` and `offset` of the stream.
    pub fn new(reader: R, line: usize, offset: usize) -> Documents<R> {
        Documents {
            reader,
            line,
            offset,
            doc: Vec::new(),
            doc_line: line,
            doc_offset: offset,
            done: false,
        }
    }

    fn take(&mut self) -> Split {
        Split {
            bytes: std::mem::take(&mut self.doc),
            first_line: self.doc_line,
            offset: self.doc_offset,
        }
    }
}

impl<R: BufRead> Iterator for Documents<R> {
    type Item = std::io::Result<Split>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = Vec::new();
        while !self.done {
            line.clear();
            let read = match self.reader.read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if read == 0 {
                self.done = true;
                return (!self.doc.is_empty()).then(|| Ok(self.take()));
            }
            let (line_no, line_offset) = (self.line, self.offset);
            self.line += 1;
            self.offset += read;
            let bare = line.strip_suffix(b"\n").unwrap_or(&line);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            let start =
                bare.starts_with(b"---") && bare.get(3).is_none_or(|c| *c == b' ' || *c == b'\t');
            let end = bare == b"..." || bare.starts_with(b"... ");
            if !(start || end) {
                self.doc.extend_from_slice(&line);
                continue;
            }
            let done = self.take();
            if start {
                self.doc.extend_from_slice(&line);
                (self.doc_line, self.doc_offset) = (line_no, line_offset);
            } else {
                (self.doc_line, self.doc_offset) = (self.line, self.offset);
            }
            if !done.bytes.is_empty() {
                return Some(Ok(done));
            }
        }
        None
    }
}

/// One document of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The document's text: whole lines, its `---` marker line included.
    pub text: &'a str,
    /// 1-based line of the whole text where `text` begins.
    pub first_line: usize,
}

/// The documents of `text` (see [`Documents`]), empty ones included.
pub fn documents(text: &str) -> Vec<Chunk<'_>> {
    Documents::new(text.as_bytes(), 1, 0)
        .filter_map(Result::ok)
        .filter_map(|s| {
            Some(Chunk {
                // Whole lines: the split is after a newline, never inside a character.
                text: text.get(s.offset..s.offset + s.bytes.len())?,
                first_line: s.first_line,
            })
        })
        .collect()
}

/// Whether a document holds anything besides its `---` marker, blank lines, comments and
/// directives.
pub fn has_content(doc: &str) -> bool {
    first_content_line(doc).is_some()
}

/// The 1-based line of a document's first content line (see [`has_content`]).
pub fn first_content_line(doc: &str) -> Option<usize> {
    doc.lines()
        .enumerate()
        .position(|(i, l)| {
            let l = match l.strip_prefix("---") {
                Some(rest) if i == 0 => rest,
                _ => l,
            };
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
        })
        .map(|i| i + 1)
}

/// Why a document could not be parsed, and where (relative to the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What is wrong, without the position.
    pub message: String,
    /// 1-based line in the document.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Nested deeper than [`MAX_DEPTH`].
    pub too_deep: bool,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

/// Parses one document into JSON, as kubectl reads it: merge keys (`<<`) applied, tags
/// ignored, scalar keys as strings, duplicate keys refused, and aliases limited (a "billion
/// laughs" is refused). Nesting deeper than [`MAX_DEPTH`] is refused as the parser reaches it.
/// An empty document is `null`.
pub fn parse(doc: &str) -> Result<Value, Error> {
    serde_saphyr::from_str_with_options::<Node>(doc, options())
        .map(|n| n.0)
        .map_err(error)
}

/// Room the parse needs on the stack for one more level (the deserializer's frames between two
/// levels, in a debug build, with margin), and how much more to take when it is not there.
const RED_ZONE: usize = 256 * 1024;
const GROW: usize = 2 * 1024 * 1024;

/// A JSON value, read from YAML with room on the stack at every level: the budget bounds the
/// levels, [`stacker`] makes sure each has its stack, on any thread (tests and tokio's
/// blocking threads have 2 MiB).
struct Node(Value);

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        stacker::maybe_grow(RED_ZONE, GROW, || d.deserialize_any(NodeVisitor))
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node(Value::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Node(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("the number {v} cannot be represented in JSON")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node(Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Node(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(Key(key)) = map.next_key()? {
            let Node(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Node(Value::Object(out)))
    }
}

/// A mapping key as kubectl reads it: a scalar, as text (`8080`, `true`, `null`).
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> serde::de::Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping key must be a scalar")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Key, E> {
        Ok(Key(v))
    }

    fn visit_unit<E>(self) -> Result<Key, E> {
        Ok(Key("null".to_owned()))
    }

    fn visit_none<E>(self) -> Result<Key, E> {
        Ok(Key("null".to_owned()))
    }
}

/// The parser's options: the depth budget, everything else serde-saphyr's defaults, with the
/// limits on size made as large as [`crate::audit`] documents may be.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    // Flow collections count towards the same limit (the parser refuses them itself).
    budget.flow_nesting_limit = MAX_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // Scalars as Portcullis has always read them (YAML 1.2's core schema, as serde_yaml_ng):
    // `yes`, `on`, `y` are strings, and so are `0644` and `1_000`.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options
}

fn error(e: serde_saphyr::Error) -> Error {
    let e = e.without_snippet();
    let (line, column) = e
        .location()
        .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
    let too_deep = matches!(
        e,
        serde_saphyr::Error::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
            ..
        }
    );
    // The message without the position serde-saphyr appends (` at line 3, column 1`).
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((message, at)) if at.starts_with(|c: char| c.is_ascii_digit()) => message,
        _ => &text,
    };
    Error {
        // The parser's own limit on flow collections, set to the same depth.
        too_deep: too_deep || message == "recursion limit exceeded",
        message: message.to_owned(),
        line: line.max(1),
        column: column.max(1),
    }
}

/// A place in a text: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// The position of the field at `path` in the document at the start of `text` (relative to
/// `text`): of its key where the field exists, of the item for an index, else of the deepest
/// node on the path that exists (the document's root for the empty path). The document ends
/// where its root node does; what follows is never read. `None` when the document has no node.
pub fn position(text: &str, path: &[Step<'_>]) -> Option<Position> {
    walk(text, path).map(|(found, _)| found)
}

/// The text of the plain scalar at `path` in the document at the start of `text`, as written
/// (`1.10`, `0x1F`, `true`): what a field that wants a string reads where the author left the
/// quotes off. `None` when there is no node at `path`, or it is not a plain scalar.
pub fn plain_scalar(text: &str, path: &[Step<'_>]) -> Option<String> {
    walk(text, path).and_then(|(_, leaf)| leaf)
}

/// Walks the document at the start of `text` down `path`: the position [`position`] tells,
/// and the plain scalar found at the end of the path, if that is one.
fn walk(text: &str, path: &[Step<'_>]) -> Option<(Position, Option<String>)> {
    // Only the events of nodes and their ends: not the stream's and document's starts, nor
    // presentation (anchors, comments).
    let mut events = Parser::new_from_str(text)
        .map_while(Result::ok)
        .filter(|(e, _)| {
            matches!(
                e,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::MappingStart(..)
                    | Event::MappingEnd
                    | Event::Alias(..)
                    | Event::UnresolvedAlias(..)
                    | Event::DocumentEnd
                    | Event::StreamEnd
            )
        });
    let (root, span) = events.next()?;
    if matches!(root, Event::DocumentEnd | Event::StreamEnd) {
        return None;
    }
    let mut walk = Walk {
        events: &mut events,
        found: position_of(&span),
        leaf: None,
    };
    walk.descend(&root, path);
    Some((walk.found, walk.leaf))
}

fn position_of(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// A walk down the events of one node, remembering the deepest position found on the path.
struct Walk<'e, I: Iterator<Item = (Event<'e>, Span)>> {
    events: &'e mut I,
    found: Position,
    /// The plain scalar at the end of the path, once reached.
    leaf: Option<String>,
}

impl<'e, I: Iterator<Item = (Event<'e>, Span)>> Walk<'e, I> {
    /// Looks for `path` in the node that `start` began (its events up to its end are
    /// consumed, except when the path is found inside it: the walk stops there).
    fn descend(&mut self, start: &Event<'e>, path: &[Step<'_>]) -> bool {
        let Some((step, rest)) = path.split_first() else {
            if let Event::Scalar(value, ScalarStyle::Plain, ..) = start {
                self.leaf = Some(value.to_string());
            }
            return true;
        };
        match (start, step) {
            (Event::MappingStart(..), Step::Key(wanted)) => loop {
                let Some((key, key_span)) = self.events.next() else {
                    return false;
                };
                if matches!(key, Event::MappingEnd) {
                    return false;
                }
                if !matches!(&key, Event::Scalar(k, ..) if k == wanted) {
                    self.skip(&key);
                    let Some((value, _)) = self.events.next() else {
                        return false;
                    };
                    self.skip(&value);
                    continue;
                }
                self.found = position_of(&key_span);
                let Some((value, _)) = self.events.next() else {
                    return false;
                };
                return self.descend(&value, rest);
            },
            (Event::SequenceStart(..), Step::Index(wanted)) => {
                let mut index = 0;
                loop {
                    let Some((item, item_span)) = self.events.next() else {
                        return false;
                    };
                    if matches!(item, Event::SequenceEnd) {
                        return false;
                    }
                    if index == *wanted {
                        self.found = position_of(&item_span);
                        return self.descend(&item, rest);
                    }
                    self.skip(&item);
                    index += 1;
                }
            }
            _ => {
                self.skip(start);
                false
            }
        }
    }

    /// Consumes the rest of the node that `start` began.
    fn skip(&mut self, start: &Event<'e>) {
        if !matches!(start, Event::MappingStart(..) | Event::SequenceStart(..)) {
            return;
        }
        let mut depth = 1usize;
        for (event, _) in self.events.by_ref() {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(&str, usize)> {
        documents(text)
            .into_iter()
            .map(|c| (c.text, c.first_line))
            .collect()
    }

    #[test]
    fn documents_split_at_kubectl_markers_with_their_first_line() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: 3\n...\n# after\n---x: not a marker\n";
        assert_eq!(
            split(text),
            [
                ("a: 1\n", 1),
                ("---\nb: 2\n", 2),
                ("--- # c\nc: 3\n", 4),
                ("# after\n---x: not a marker\n", 7),
            ]
        );
        // CRLF, and a marker as the last line.
        assert_eq!(split("a: 1\r\n---\r\n"), [("a: 1\r\n", 1), ("---\r\n", 2)]);
        assert_eq!(split(""), []);
        assert_eq!(
            split("---\na: 1\n...\n---\n"),
            [("---\na: 1\n", 1), ("---\n", 4)]
        );
    }

    #[test]
    fn content_is_what_is_not_blank_comment_or_directive() {
        assert!(!has_content("--- # x\n  # x\n%YAML 1.2\n"));
        assert_eq!(first_content_line("# x\n\na: 1\n"), Some(3));
        assert_eq!(first_content_line("--- {a: 1}\n"), Some(1));
    }

    fn at(text: &str, path: &[Step<'_>]) -> (usize, usize) {
        let p = position(text, path).expect("a position");
        (p.line, p.column)
    }

    #[test]
    fn positions_of_fields_and_of_their_deepest_existing_node() {
        use Step::{Index, Key};
        let doc = "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: a:1\n    resources:\n      limits: {cpu: 1}\n";
        assert_eq!(
            at(
                doc,
                &[Key("spec"), Key("containers"), Index(0), Key("image")]
            ),
            (5, 5)
        );
        assert_eq!(
            at(
                doc,
                &[
                    Key("spec"),
                    Key("containers"),
                    Index(0),
                    Key("resources"),
                    Key("limits"),
                    Key("cpu")
                ]
            ),
            (7, 16)
        );
        // Missing: the deepest node that exists.
        assert_eq!(
            at(
                doc,
                &[
                    Key("spec"),
                    Key("containers"),
                    Index(0),
                    Key("livenessProbe")
                ]
            ),
            (4, 5)
        );
        assert_eq!(at(doc, &[Key("spec"), Key("containers"), Index(3)]), (3, 3));
        assert_eq!(at(doc, &[Key("metadata"), Key("name")]), (1, 1));
        assert_eq!(at("\n\n  x: 1\n", &[]), (3, 3));
        assert_eq!(position("# nothing\n", &[]), None);
    }

    #[test]
    fn kubectl_scalars_merge_keys_and_tags() {
        let v = parse("a: 1\nb: true\nc: \"1\"\nd: 1.5\ne: ~\nm: &m {x: 1}\nn:\n  <<: *m\n  y: !!str 2\n8080: port\n")
            .expect("parses");
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": true, "c": "1", "d": 1.5, "e": null, "m": {"x": 1}, "n": {"x": 1, "y": "2"}, "8080": "port"})
        );
        assert_eq!(parse("").expect("empty"), Value::Null);
    }

    #[test]
    fn duplicate_keys_and_alias_bombs_are_refused() {
        let dup = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(dup.line, 3, "{dup}");
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&bomb).is_err());
    }

    // The depth of a JSON value, counted on the value, independently of the parser.
    use crate::nesting::tests::json_value_depth as depth;

    #[test]
    fn the_depth_budget_is_exact_for_every_shape() {
        // Flow, compact and block nesting, at the limit and one past it, on this thread's
        // stack (2 MiB for tests): the budget stops the parser before the stack can run out.
        type Make = fn(usize) -> String;
        let shapes: [(&str, Make); 4] = [
            ("flow", |n| format!("{}{}\n", "[".repeat(n), "]".repeat(n))),
            ("flow maps", |n| {
                format!("{}1{}\n", "{a: ".repeat(n), "}".repeat(n))
            }),
            ("compact", |n| format!("{}x\n", "- ".repeat(n))),
            ("block", |n| {
                (0..n)
                    .map(|i| format!("{}k:\n", " ".repeat(i)))
                    .collect::<String>()
                    + &" ".repeat(n)
                    + "x\n"
            }),
        ];
        for (name, make) in shapes {
            let at = parse(&make(MAX_DEPTH)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(depth(&at), MAX_DEPTH, "{name}");
            // Block nesting needs quadratic text to grow deep: not 100,000 levels of it.
            let deep = if name == "block" { 2_000 } else { 100_000 };
            for n in [MAX_DEPTH + 1, deep] {
                let e = parse(&make(n)).expect_err(name);
                assert!(e.too_deep, "{name} {n}: {e}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Values around the limit, written in block style (as serde_yaml_ng writes them:
        /// compact `- - x` sequences, indented mappings) and in flow style (JSON): the parse
        /// keeps exactly the depth counted on the value itself, and refuses exactly what is
        /// deeper than the limit.
        #[test]
        fn the_budget_refuses_exactly_what_is_too_deep(v in crate::nesting::tests::wrapped()) {
            let levels = depth(&v);
            for text in [
                serde_yaml_ng::to_string(&v).expect("yaml"),
                serde_json::to_string(&v).expect("json"),
            ] {
                match parse(&text) {
                    Ok(parsed) => {
                        proptest::prop_assert!(levels <= MAX_DEPTH, "accepted {levels} levels");
                        proptest::prop_assert_eq!(depth(&parsed), levels);
                    }
                    Err(e) => {
                        proptest::prop_assert!(e.too_deep && levels > MAX_DEPTH, "{levels} levels: {e}");
                    }
                }
            }
        }
    }

    /// A scalar as serde_yaml_ng reads it (the parser Portcullis used before serde-saphyr),
    /// made JSON as the audit reader made it.
    fn as_before(text: &str) -> Result<Value, ()> {
        use serde_yaml_ng::Value as Y;
        match serde_yaml_ng::from_str::<Y>(text).map_err(|_| ())? {
            Y::Null => Ok(Value::Null),
            Y::Bool(b) => Ok(Value::Bool(b)),
            Y::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(i))
                } else if let Some(u) = n.as_u64() {
                    Ok(Value::from(u))
                } else {
                    let f = n.as_f64().ok_or(())?;
                    serde_json::Number::from_f64(f).map(Value::Number).ok_or(())
                }
            }
            Y::String(s) => Ok(Value::String(s)),
            _ => Err(()),
        }
    }

    #[test]
    fn scalars_read_as_before() {
        let scalars = [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "Yes",
            "NO",
            "true",
            "True",
            "TRUE",
            "false",
            "0644",
            "0o644",
            "0x1F",
            "0b101",
            "00",
            "08",
            "-0",
            "+1",
            "1_000",
            "1e3",
            "1E+3",
            "1.0",
            ".5",
            "-.5",
            "1.",
            ".inf",
            "-.Inf",
            ".nan",
            "~",
            "null",
            "Null",
            "NULL",
            "",
            "'0644'",
            "\"yes\"",
            "2026-01-15",
            "12:30",
            "1:20",
            "0.1.2",
            "9223372036854775807",
            "9223372036854775808",
            "+.5",
            "0x",
            "-",
            "a b",
            "0",
            "0.0",
            "0.5",
            "00.5",
            "-01",
            "0e1",
            "1e-3",
        ];
        let mut differ = Vec::new();
        for scalar in scalars {
            let text = format!("v: {scalar}\n");
            let now = parse(&text).map(|v| v["v"].clone()).map_err(|_| ());
            let before = if scalar.is_empty() {
                Ok(Value::Null)
            } else {
                as_before(scalar)
            };
            if now != before {
                differ.push(format!("{scalar}: {now:?} (before: {before:?})"));
            }
        }
        assert!(differ.is_empty(), "{differ:#?}");
        // Where the two differ, and how: numbers too large for any JSON number were a string
        // (`1e400`) or an error (2^64) before, and are an error and a float now.
        assert!(parse("v: 1e400\n").is_err());
        assert_eq!(
            parse("v: 18446744073709551616\n").expect("float")["v"],
            1.8446744073709552e19
        );
    }
}
