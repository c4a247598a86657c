//! Nesting depth: refuses deeply nested JSON and YAML before any parser sees it.
//!
//! Every entry point that parses outside input checks it here first: the webhook's request
//! body ([`check_json`], in `admission::parse_review`), `portcullis audit` and `mutate` (each
//! document, `audit::read`) and policy files (each document, `policy::load`). The checks are
//! byte-level scans, independent of the parser that runs next, so replacing a parser keeps the
//! protection; they cost about a byte-wide vector compare per byte for a typical webhook body
//! and a few instructions per byte otherwise (BENCHMARKS.md), and refuse 100,000 levels in
//! well under a millisecond.
//!
//! Why: parsers recurse (a stack overflow at some depth, unless they count), serde_json and
//! serde_yaml_ng stop at 128 levels but the YAML parser underneath (libyaml) is quadratic in the
//! depth of flow collections (`[[[...`) and compact sequences (`- - - ...`): 100,000 levels took
//! over a minute before its "recursion limit exceeded". Real Kubernetes objects nest a few dozen
//! levels (CRD schemas are the deepest).
//!
//! What counts as a level: an array or object (JSON), a sequence or mapping (YAML). The JSON
//! scan is exact. The YAML scan is a lower bound: it counts flow collections and runs of
//! compact indicators (`- - x`, `? x`) on one line, skipping quoted and block scalars and
//! comments, and leaves out nesting by indentation (which costs the parser nothing unusual and
//! needs quadratic file size to grow deep). Since it never counts more than the document holds,
//! it refuses only what the YAML parser would refuse anyway (depth over 128), just faster and
//! with a clear message.

/// The most levels of nesting accepted (arrays and objects, sequences and mappings).
/// serde_json and serde_yaml_ng refuse deeper input themselves; this check refuses it before
/// they run, in one pass, whatever parser comes next.
pub const MAX_DEPTH: usize = 128;

/// Input nested deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "nested deeper than {max} levels (at line {line}, column {column}): refused before parsing",
    max = MAX_DEPTH
)]
pub struct TooDeep {
    /// 1-based line of the opening bracket (or indicator) past the limit.
    pub line: usize,
    /// 1-based column (bytes) of it.
    pub column: usize,
}

impl TooDeep {
    fn at(text: &[u8], offset: usize) -> TooDeep {
        let before = &text[..offset.min(text.len())];
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        TooDeep {
            line: before.iter().filter(|b| **b == b'\n').count() + 1,
            column: offset - line_start + 1,
        }
    }
}

/// Bytes that matter to the JSON scan outside strings.
const fn json_table() -> [bool; 256] {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'[' as usize] = true;
    t[b'{' as usize] = true;
    t[b']' as usize] = true;
    t[b'}' as usize] = true;
    t
}
static JSON_SPECIAL: [bool; 256] = json_table();

/// Refuses JSON nested deeper than [`MAX_DEPTH`].
///
/// Parser-independent on purpose: the webhook calls it on every request body before parsing
/// (`admission::parse_review`), so whichever JSON parser reads the body next never sees deep
/// input; keep the call in front of the parse if the parser changes. Cheap: a body with at
/// most [`MAX_DEPTH`] opening brackets in all (strings included) cannot be deeper, which a
/// vectorised count finds in under a microsecond for a typical review (about 2,400
/// instructions for the captured 3.1 KB Deployment review, against 243,000 for its parse,
/// BENCHMARKS.md); only other bodies get the exact scan ([`json_depth`], about 8
/// instructions a byte).
pub fn check_json(bytes: &[u8]) -> Result<(), TooDeep> {
    // `b | 0x20` folds `[` (0x5B) onto `{` (0x7B), and nothing else onto it: one compare a
    // byte, counted in byte-wide lanes the compiler vectorises (255 at most per lane).
    let mut openers = 0usize;
    for chunk in bytes.chunks(255) {
        let mut in_chunk = 0u8;
        for b in chunk {
            in_chunk += u8::from(*b | 0x20 == b'{');
        }
        openers += usize::from(in_chunk);
    }
    if openers <= MAX_DEPTH {
        return Ok(());
    }
    json_depth(bytes).map(|_| ())
}

/// The nesting depth of JSON text: the most arrays and objects open at once. Exact for valid
/// JSON; for anything else a number that any JSON parser would have to reach before failing.
/// Stops counting (and returns `Err`) at the first level past [`MAX_DEPTH`]. Skips string
/// contents with `memchr`.
pub fn json_depth(bytes: &[u8]) -> Result<usize, TooDeep> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !JSON_SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                // Skip the string: to the next unescaped quote. A byte loop: most strings are
                // a few bytes long, where a memchr call costs more than it saves.
                i += 1;
                loop {
                    // An escape as the last byte steps past the end: the string is unclosed.
                    let rest = bytes.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(n) if bytes[i + n] == b'\\' => i += n + 2,
                        Some(n) => {
                            i += n;
                            break;
                        }
                        None => return Ok(deepest),
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep::at(bytes, i));
                }
                deepest = deepest.max(depth);
            }
            _ => depth = depth.saturating_sub(1),
        }
        i += 1;
    }
    Ok(deepest)
}

/// Where the YAML scan is within a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
}

/// Refuses a YAML document whose nesting, by [`yaml_depth_bound`], is over [`MAX_DEPTH`].
pub fn check_yaml(text: &str) -> Result<(), TooDeep> {
    yaml_depth_bound(text).map(|_| ())
}

/// A lower bound of the nesting depth of one YAML document (see the module docs): flow
/// collections, and runs of compact `- ` / `? ` indicators on one line. Returns `Err` at the
/// first point where that bound passes [`MAX_DEPTH`], so the parser never sees the document.
pub fn yaml_depth_bound(text: &str) -> Result<usize, TooDeep> {
    YamlScan::default().run(text.as_bytes())
}

#[derive(Debug, Default)]
struct YamlScan {
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Inside a quoted scalar that continues on the next line.
    quote: Option<Quote>,
    /// Inside a block scalar (`|`, `>`): lines indented more than this are its content.
    block_scalar: Option<usize>,
    /// The previous line ended in a plain scalar: lines indented at least this much continue
    /// it (and may start with any character, `[` included), up to a document marker. That is
    /// one more than its parent's indentation: the key's or the compact indicator's before it
    /// on its line, or, for a scalar alone on its line, at most its own indentation (its parent
    /// is on an earlier, less indented line; the document's root has -1).
    plain_from: Option<usize>,
    /// No node of the current document seen yet: the next one is its root.
    before_root: bool,
    deepest: usize,
}

impl YamlScan {
    fn run(mut self, text: &[u8]) -> Result<usize, TooDeep> {
        self.before_root = true;
        let mut offset = 0;
        for line in text.split_inclusive(|b| *b == b'\n') {
            self.line(text, offset, line)?;
            offset += line.len();
        }
        Ok(self.deepest)
    }

    fn level(&mut self, depth: usize, text: &[u8], at: usize) -> Result<(), TooDeep> {
        if depth > MAX_DEPTH {
            return Err(TooDeep::at(text, at));
        }
        self.deepest = self.deepest.max(depth);
        Ok(())
    }

    /// Scans one line (`start` is its offset in `text`).
    fn line(&mut self, text: &[u8], start: usize, line: &[u8]) -> Result<(), TooDeep> {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let indent = content.iter().take_while(|b| **b == b' ').count();
        let blank = content[indent..].iter().all(|b| *b == b' ' || *b == b'\t');
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut i = 0;
        if let Some(q) = self.quote {
            match skip_quoted(content, 0, q) {
                Some(end) => {
                    self.quote = None;
                    i = end;
                }
                None => return Ok(()),
            }
        } else if self.flow == 0 {
            if blank || content[indent] == b'#' {
                return Ok(());
            }
            // Document markers: what follows `--- ` on the line is a node.
            let marker = indent == 0
                && (content.starts_with(b"---") || content.starts_with(b"..."))
                && content.get(3).is_none_or(|b| *b == b' ' || *b == b'\t');
            if let Some(from) = self.plain_from.take()
                && indent >= from
                && !marker
            {
                self.plain_from = Some(from);
                return Ok(());
            }
            if marker {
                self.before_root = true;
                i = 3;
            } else {
                i = indent;
            }
        }
        // In block context: a run of compact indicators, then one node, owned by the last
        // indicator (or the line's indentation): lines indented more than its owner continue
        // a plain or block scalar.
        let mut compact = 0;
        let mut owner = indent;
        if self.flow == 0 {
            loop {
                i = skip_spaces(content, i);
                match (content.get(i), content.get(i + 1)) {
                    (Some(b'-' | b'?'), next) if next.is_none_or(|b| *b == b' ' || *b == b'\t') => {
                        compact += 1;
                        self.level(compact, text, start + i)?;
                        owner = i;
                        i += 1;
                    }
                    _ => break,
                }
            }
            i = self.block_node(text, start, content, i, owner, compact)?;
            if self.flow == 0 {
                return Ok(());
            }
        }
        self.flow_rest(text, start, content, i, indent, compact)
    }

    /// A node in block context starting at `i`: a flow collection, a quoted or block scalar,
    /// or a plain scalar (perhaps a key, whose value is then scanned). Returns where the flow
    /// collection it opened continues, if any.
    fn block_node(
        &mut self,
        text: &[u8],
        start: usize,
        content: &[u8],
        mut i: usize,
        mut owner: usize,
        compact: usize,
    ) -> Result<usize, TooDeep> {
        // Whether a key came before the node on this line (its value is then the node).
        let mut keyed = false;
        // Whether this node is the document's root (nothing before it on its line either).
        let node = content
            .get(skip_spaces(content, i))
            .is_some_and(|b| *b != b'#');
        let root = self.before_root && node && compact == 0;
        if node || compact > 0 {
            self.before_root = false;
        }
        loop {
            i = skip_properties(content, i);
            match content.get(i) {
                None | Some(b'#') => return Ok(i),
                Some(b'[' | b'{') => {
                    self.flow = 1;
                    self.level(compact + 1, text, start + i)?;
                    return Ok(i + 1);
                }
                Some(b'|' | b'>') => {
                    let rest = &content[i + 1..];
                    let header_end = rest
                        .iter()
                        .take_while(|b| matches!(b, b'+' | b'-' | b'0'..=b'9'))
                        .count();
                    let after = skip_spaces(rest, header_end);
                    if after == rest.len() || rest[after] == b'#' {
                        self.block_scalar = Some(owner);
                        return Ok(content.len());
                    }
                    // Not a block scalar header: a plain scalar that starts with `|` or `>`
                    // is not valid YAML; nothing nests here.
                    return Ok(content.len());
                }
                Some(b'"' | b'\'') => {
                    let key_at = i;
                    let q = if content[i] == b'"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    };
                    match skip_quoted(content, i + 1, q) {
                        Some(end) => i = end,
                        None => {
                            self.quote = Some(q);
                            return Ok(content.len());
                        }
                    }
                    // A quoted key: its value follows `:`.
                    i = skip_spaces(content, i);
                    match content.get(i) {
                        Some(b':') => {
                            i += 1;
                            owner = key_at;
                            keyed = true;
                        }
                        _ => return Ok(content.len()),
                    }
                }
                Some(_) => {
                    // A plain scalar, to the end of the line unless it is a key (`: `).
                    match find_key_end(content, i) {
                        Some(value) => {
                            owner = i;
                            i = value;
                            keyed = true;
                        }
                        None => {
                            self.plain_from = Some(if root && !keyed {
                                0
                            } else if compact == 0 && !keyed {
                                owner
                            } else {
                                owner + 1
                            });
                            return Ok(content.len());
                        }
                    }
                }
            }
            i = skip_spaces(content, i);
        }
    }

    /// The rest of a line inside flow collections.
    fn flow_rest(
        &mut self,
        text: &[u8],
        start: usize,
        content: &[u8],
        mut i: usize,
        indent: usize,
        compact: usize,
    ) -> Result<(), TooDeep> {
        // Whether a node may start here (after `[`, `{`, `,`, `:`, `?`): only there does a
        // quote open a quoted scalar (`[it's]` is a plain scalar).
        let mut node_start = true;
        while i < content.len() {
            let b = content[i];
            match b {
                b'[' | b'{' => {
                    self.flow += 1;
                    self.level(compact + self.flow, text, start + i)?;
                    node_start = true;
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    node_start = false;
                    if self.flow == 0 {
                        // Back in block context: the rest of the line is a value or a comment.
                        let rest = skip_spaces(content, i + 1);
                        if content.get(rest) == Some(&b':') {
                            let next = self.block_node(
                                text,
                                start,
                                content,
                                skip_spaces(content, rest + 1),
                                indent,
                                compact,
                            )?;
                            if self.flow > 0 {
                                return self.flow_rest(text, start, content, next, indent, compact);
                            }
                        }
                        return Ok(());
                    }
                }
                b',' | b':' | b'?' => node_start = true,
                b'"' | b'\'' if node_start => {
                    let q = if b == b'"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    };
                    match skip_quoted(content, i + 1, q) {
                        Some(end) => {
                            i = end;
                            node_start = false;
                            continue;
                        }
                        None => {
                            self.quote = Some(q);
                            return Ok(());
                        }
                    }
                }
                b'#' if i == 0 || matches!(content[i - 1], b' ' | b'\t') => return Ok(()),
                b' ' | b'\t' => {}
                _ => node_start = false,
            }
            i += 1;
        }
        Ok(())
    }
}

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// Skips anchors (`&a`) and tags (`!t`, `!!seq`) before a node.
fn skip_properties(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b'&' | b'!')) {
        while s.get(i).is_some_and(|b| !matches!(b, b' ' | b'\t')) {
            i += 1;
        }
        i = skip_spaces(s, i);
    }
    i
}

/// The end (just past the closing quote) of a quoted scalar whose content starts at `i`, or
/// `None` when it continues on the next line.
fn skip_quoted(s: &[u8], mut i: usize, q: Quote) -> Option<usize> {
    match q {
        Quote::Double => loop {
            let n = memchr::memchr2(b'"', b'\\', s.get(i..)?)?;
            if s[i + n] == b'\\' {
                i += n + 2;
            } else {
                return Some(i + n + 1);
            }
        },
        Quote::Single => loop {
            let n = memchr::memchr(b'\'', s.get(i..)?)?;
            if s.get(i + n + 1) == Some(&b'\'') {
                i += n + 2;
            } else {
                return Some(i + n + 1);
            }
        },
    }
}

/// Where the value of a plain key starting at `i` begins (just past `:`), if the plain scalar
/// is a key (`key: value`, `key:` at the end of the line); `None` for a plain scalar value.
fn find_key_end(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j < s.len() {
        match s[j] {
            b':' if s.get(j + 1).is_none_or(|b| matches!(b, b' ' | b'\t')) => return Some(j + 1),
            b'#' if j > i && matches!(s[j - 1], b' ' | b'\t') => return None,
            _ => {}
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn json_depth_is_exact_and_strings_do_not_count() {
        assert_eq!(json_depth(b""), Ok(0));
        assert_eq!(json_depth(b"42"), Ok(0));
        assert_eq!(json_depth(br#"{"a": [1, {"b": []}]}"#), Ok(4));
        assert_eq!(json_depth(br#"{"a": "[[[{{{", "b\"[": ["]]]"]}"#), Ok(2));
        assert_eq!(json_depth(br#"["\\", ["\\\"["]]"#), Ok(2));
        // An unclosed string ending in a backslash (found by the fuzz smoke run: it sliced
        // past the end).
        assert_eq!(json_depth(br#"{"a": ["\"#), Ok(2));
        assert_eq!(json_depth(b"\"\\"), Ok(0));
        assert_eq!(check_json(br#"{"a": ["\"#), Ok(()));
        assert_eq!(
            json_depth(nested("[", "]", MAX_DEPTH).as_bytes()),
            Ok(MAX_DEPTH)
        );
        let err = json_depth(nested("[", "]", MAX_DEPTH + 1).as_bytes()).expect_err("deep");
        assert_eq!((err.line, err.column), (1, MAX_DEPTH + 1));
        let text = format!("{{\"a\":\n  {}", "{\"b\":".repeat(200));
        let err = json_depth(text.as_bytes()).expect_err("deep");
        assert_eq!(err.line, 2);
        assert_eq!(
            err.to_string(),
            format!(
                "nested deeper than 128 levels (at line 2, column {}): refused before parsing",
                err.column
            )
        );
    }

    #[test]
    fn the_quick_count_and_the_scan_agree() {
        let shallow = br#"{"a": ["[[[[", {"b": "{{{{"}]}"#;
        assert_eq!(check_json(shallow), Ok(()));
        // Many brackets in strings: the count cannot tell, the scan can.
        let text = format!("{{\"a\": \"{}\"}}", "[".repeat(10 * MAX_DEPTH));
        assert_eq!(check_json(text.as_bytes()), Ok(()));
        let deep = nested("[", "]", MAX_DEPTH + 1);
        assert_eq!(
            check_json(deep.as_bytes()),
            json_depth(deep.as_bytes()).map(|_| ())
        );
        assert!(check_json(deep.as_bytes()).is_err());
        assert_eq!(
            check_json(nested("{\"a\":", "}", MAX_DEPTH).as_bytes()),
            Ok(())
        );
        assert!(check_yaml(&format!("{}x\n", "- ".repeat(MAX_DEPTH + 1))).is_err());
        assert_eq!(check_yaml("a: [b]\n"), Ok(()));
    }

    #[test]
    fn a_million_levels_are_refused_at_the_limit() {
        for text in [nested("[", "]", 1_000_000), "{\"a\":".repeat(1_000_000)] {
            let err = json_depth(text.as_bytes()).expect_err("deep");
            assert_eq!(err.line, 1);
            assert!(yaml_depth_bound(&text).is_err());
        }
    }

    #[test]
    fn yaml_flow_and_compact_nesting_is_counted() {
        assert_eq!(yaml_depth_bound("a: 1\n"), Ok(0));
        assert_eq!(yaml_depth_bound("a: [1, {b: [2]}]\n"), Ok(3));
        assert_eq!(yaml_depth_bound("- - - x\n"), Ok(3));
        assert_eq!(yaml_depth_bound("- ? - [x]\n  : y\n"), Ok(4));
        assert_eq!(yaml_depth_bound("--- [[x]]\n"), Ok(2));
        assert_eq!(yaml_depth_bound("a: &x !!seq [b]\n"), Ok(1));
        assert_eq!(yaml_depth_bound("\"quoted key\": [x]\n"), Ok(1));
        assert_eq!(yaml_depth_bound("a:\n  [\n    [x],\n  ]\n"), Ok(2));
        assert!(yaml_depth_bound(&nested("[", "]", 100_000)).is_err());
        assert!(yaml_depth_bound(&format!("{}x\n", "- ".repeat(100_000))).is_err());
        assert!(yaml_depth_bound(&format!("{}x\n", "? ".repeat(100_000))).is_err());
        assert!(
            yaml_depth_bound(&format!(
                "{}1{}",
                "{a: ".repeat(100_000),
                "}".repeat(100_000)
            ))
            .is_err()
        );
        let err = yaml_depth_bound(&format!("a: 1\nb: {}\n", "[".repeat(200))).expect_err("deep");
        assert_eq!((err.line, err.column), (2, 4 + MAX_DEPTH));
    }

    #[test]
    fn yaml_scalars_and_comments_do_not_count() {
        let cases = [
            "a: '[[[' # [[[\nb: \"{{{\\\"[[[\"\n",
            "a: it's [not [a [flow\n",
            "- text with - dashes - and ? marks\n",
            "a: |\n  [[[[\n  - - - -\n  {{{{\nb: >-\n    [[[[\n",
            "a: plain\n  [continued [scalar\n  - still text\n",
            "a: 'multi\n  [[[ line'\nb: \"multi\n  {{{ line\"\n",
            "a: [it's, \"x]\", 'y]', z] # ]]]\n",
            "# [[[[\n- x # - - -\n",
            // The document's root is a plain scalar: its next lines continue it, even at
            // indentation 0 (found by the fuzzer: the quote and the brace were counted).
            "apiVersion v1\n\":{\\\"labels\\\":x\":{},\"f\":{\"g:]?\n",
            "--- root text\n[[[[ still [[ the root\n",
            // A scalar alone on its line continues at its own indentation (its parent is less
            // indented), the root's at any.
            "# c\n  root text\n  [ text\n [ text}\n",
            "a:\n  b\n  [c\n  - d\n",
            "- \n  b\n  [c\n",
        ];
        for text in cases {
            let depth = yaml_depth_bound(text).expect("not deep");
            let real: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("valid YAML");
            assert!(depth <= yaml_depth(&real), "{text:?}: {depth}");
        }
        // A document marker ends the root scalar: the next document's nesting counts.
        assert_eq!(
            yaml_depth_bound("root\n  [[ text\n[[ text\n---\n[[x]]\n"),
            Ok(2)
        );
    }

    fn json_value_depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(json_value_depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(json_value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Strings made of what the scanners look at: brackets, quotes, escapes, indicators,
    /// comments, newlines.
    fn tricky_string() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex(r#"[\[\]{}"'\\#:?|>&!*, \n-]{0,12}|[a-z]{1,4}"#)
            .expect("regex")
    }

    fn value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            tricky_string().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(12, 96, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
                proptest::collection::vec((tricky_string(), inner), 0..5)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// JSON: exact. YAML as serde_yaml_ng writes it (block style, quoted and block
        /// scalars) and as JSON (flow style): never more than the real depth.
        #[test]
        fn scans_never_count_more_than_the_document_holds(v in value()) {
            let depth = json_value_depth(&v);
            let json = serde_json::to_string_pretty(&v).expect("json");
            proptest::prop_assert_eq!(json_depth(json.as_bytes()), Ok(depth));
            let yaml = serde_yaml_ng::to_string(&v).expect("yaml");
            let found = yaml_depth_bound(&yaml).expect("not deep");
            proptest::prop_assert!(found <= depth, "{yaml}: {found} > {depth}");
            let flow = yaml_depth_bound(&json).expect("not deep");
            proptest::prop_assert!(flow <= depth, "{json}: {flow} > {depth}");
        }
    }

    #[test]
    fn the_repository_yaml_files_are_scanned_within_their_depth() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("dir") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() && !name.starts_with('.') && name != "target" {
                    walk(&path, out);
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
        assert!(files.len() > 20, "{files:?}");
        let mut checked = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for doc in text.split("\n---") {
                let Ok(real) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(doc) else {
                    continue;
                };
                let found = yaml_depth_bound(doc).expect("not deep");
                assert!(found <= yaml_depth(&real), "{}: {found}", file.display());
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");
    }

    fn yaml_depth(v: &serde_yaml_ng::Value) -> usize {
        use serde_yaml_ng::Value as Y;
        match v {
            Y::Sequence(s) => 1 + s.iter().map(yaml_depth).max().unwrap_or(0),
            Y::Mapping(m) => {
                1 + m
                    .iter()
                    .map(|(k, v)| yaml_depth(k).max(yaml_depth(v)))
                    .max()
                    .unwrap_or(0)
            }
            Y::Tagged(t) => yaml_depth(&t.value),
            _ => 0,
        }
    }
}
