//! Loading: reads policy files (multi-document YAML) from a directory or a string, parses them
//! strictly and compiles them into a [`PolicySet`], reporting every problem with file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use std::sync::Arc;

use super::compile::{
    CompileError, FieldPath, PathSegment, compile_document_raw, compile_exception,
};
use super::model::{
    API_VERSION, EXCEPTION_KIND, ExceptedPolicy, ExceptionDocument, KIND, PolicyDocument,
};
use super::{CompiledException, CompiledPolicy, PolicySet, Source};

/// One problem in a policy file, located by file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem concerns the file or directory as a whole).
    pub line: usize,
    /// 1-based column, when the problem is at a point of the line (inside a CEL expression);
    /// 0 otherwise.
    pub column: usize,
    /// What is wrong, starting with the field path when there is one
    /// (`spec.rules[0].requireProbes: ...`).
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 && self.column > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Why a policy set could not be loaded: every problem found, each with file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and compiles every `*.yaml` / `*.yml` file of a directory (not recursive, sorted by
/// name) as one policy set, without the lint: entry points use [`crate::lint::load_dir`], which
/// also refuses a set with a lint error.
///
/// Entries whose name starts with `.` are skipped: a Kubernetes ConfigMap volume keeps its
/// bookkeeping there (`..data`, `..2024_01_01_00_00_00.123`), and the visible `foo.yaml` entries
/// are symlinks into `..data/`, which are followed. A symlink that points nowhere is skipped
/// (the kubelet removes such links right after swapping `..data`). A directory without any
/// policy document is an error: it is almost always a wrong mount path.
pub fn compile_dir(dir: &Path) -> Result<PolicySet, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError {
        diagnostics: vec![Diagnostic {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the policy directory: {e}"),
            hint: "pass the directory that holds the policy YAML files".to_owned(),
        }],
    })?;
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                diagnostics.push(file_problem(dir, format!("cannot list the directory: {e}")));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        // `fs::metadata` follows symlinks (ConfigMap volumes are made of them).
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => diagnostics.push(file_problem(&path, format!("cannot read: {e}"))),
        }
    }
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(e) => diagnostics.push(file_problem(&file, format!("cannot read: {e}"))),
        }
    }
    let loaded = load_sources(&sources);
    match loaded {
        Ok(set) if diagnostics.is_empty() && set.policies.is_empty() => Err(LoadError {
            diagnostics: vec![Diagnostic {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                message: "no policy documents found (looked for *.yaml and *.yml files)".to_owned(),
                hint: "check the path; to enforce nothing, keep the policies with `mode: off`"
                    .to_owned(),
            }],
        }),
        Ok(set) if diagnostics.is_empty() => Ok(set),
        Ok(_) => Err(LoadError { diagnostics }),
        Err(mut e) => {
            diagnostics.append(&mut e.diagnostics);
            Err(LoadError { diagnostics })
        }
    }
}

/// Reads and compiles policies from one YAML string (multi-document allowed), named `file` in
/// messages, without the lint: entry points use [`crate::lint::load_str`].
pub fn compile_str(file: &Path, text: &str) -> Result<PolicySet, LoadError> {
    load_sources(&[(file.to_path_buf(), text.to_owned())])
}

fn file_problem(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message,
        hint: String::new(),
    }
}

/// One document of a multi-document YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    /// The document's text: whole lines of the file, its `---` marker included.
    pub(crate) text: &'a str,
    /// 1-based line of the file where `text` begins.
    pub(crate) first_line: usize,
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Splits a YAML stream into its documents at `---` (and after `...`) markers at column 0.
/// YAML forbids those markers at column 0 inside a document, so this split is exact.
pub(crate) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        if is_marker(line, "---") && offset > start {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
        if is_marker(line, "...") {
            chunks.push(Chunk {
                text: &text[start..offset - line.len()],
                first_line: start_line,
            });
            start = offset;
            start_line = line_no + 1;
        }
    }
    if start < text.len() {
        chunks.push(Chunk {
            text: &text[start..],
            first_line: start_line,
        });
    }
    chunks
}

/// The 1-based line (within `yaml`, a single document) of the key or list item at `path`, or
/// of the nearest ancestor that exists. The empty path gives the line where the document's
/// content starts.
pub fn field_line(yaml: &str, path: &FieldPath) -> Option<usize> {
    let segments = path.segments();
    (0..=segments.len())
        .rev()
        .find_map(|n| locate_exact(yaml, &segments[..n]))
}

/// A marker error message: the seek reached its target (and the error carries its location).
const FOUND: &str = "\u{1}portcullis: located";

fn locate_exact(yaml: &str, path: &[PathSegment]) -> Option<usize> {
    let de = serde_yaml_ng::Deserializer::from_str(yaml);
    let seek = Seek { path };
    match seek.deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
        _ => None,
    }
}

/// Walks the YAML along `path` and fails with [`FOUND`] on the target node, so that the
/// deserializer's error carries the target's position.
struct Seek<'p> {
    path: &'p [PathSegment],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.path.first() {
            None => d.deserialize_any(Found),
            Some(PathSegment::Key(_)) => d.deserialize_map(self),
            Some(PathSegment::Index(_)) => d.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping or a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((PathSegment::Key(target), rest)) = self.path.split_first() else {
            return Ok(());
        };
        while let Some(is_target) = map.next_key_seed(KeySeek {
            target,
            last: rest.is_empty(),
        })? {
            if is_target {
                return map.next_value_seed(Seek { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((PathSegment::Index(target), rest)) = self.path.split_first() else {
            return Ok(());
        };
        for _ in 0..*target {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek { path: rest })?;
        Ok(())
    }
}

/// Fails with [`FOUND`] on whatever node it is given.
struct Found;

impl<'de> Visitor<'de> for Found {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

/// Reads one mapping key: whether it is the target, failing with [`FOUND`] (at the key's
/// position) when it is the last segment.
struct KeySeek<'t> {
    target: &'t str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeek<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeek<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match (v == self.target, self.last) {
            (true, true) => Err(E::custom(FOUND)),
            (found, _) => Ok(found),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// Rewrites `line N` positions in a serde_yaml_ng message (relative to a document) to file
/// lines, dropping the ` at line N column M` that repeats the diagnostic's own line.
pub(crate) fn relocate_message(message: &str, first_line: usize, own_line: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    let mut dropped_own = false;
    while let Some(at) = rest.find("line ") {
        let (before, after) = rest.split_at(at);
        let after = &after["line ".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        let Ok(n) = after[..digits].parse::<usize>() else {
            out.push_str(before);
            out.push_str("line ");
            rest = after;
            continue;
        };
        let file_line = n + first_line - 1;
        let tail = &after[digits..];
        let col_len = tail
            .strip_prefix(" column ")
            .map(|t| " column ".len() + t.chars().take_while(char::is_ascii_digit).count())
            .unwrap_or(0);
        if !dropped_own && file_line == own_line && before.ends_with(" at ") {
            dropped_own = true;
            out.push_str(&before[..before.len() - " at ".len()]);
        } else {
            out.push_str(before);
            out.push_str(&format!("line {file_line}"));
            out.push_str(&tail[..col_len]);
        }
        rest = &tail[col_len..];
    }
    out.push_str(rest);
    out
}

/// A hint for a serde_yaml_ng error, by what its message says.
pub(crate) fn parse_hint(message: &str) -> &'static str {
    if message.contains("unknown field") {
        "check the spelling (field names are camelCase); `portcullis policy schema` lists every field"
    } else if message.contains("missing field") {
        "add the field; `portcullis policy schema` shows what each block needs"
    } else if message.contains("unknown variant") {
        "use one of the expected values listed (they are case-sensitive)"
    } else if message.contains("rule type") {
        "write each rule as a list item with exactly one key, e.g. `- requireProbes: {}`"
    } else if message.contains("invalid time") {
        "dates are written YYYY-MM-DD (meaning 00:00 UTC of that day); other instants as RFC 3339 times"
    } else if message.contains("invalid type") {
        "check the value's shape: a list (`- item` or `[a, b]`), a mapping (`key: value`) or a plain value"
    } else if message.contains("duplicate entry") || message.contains("duplicate key") {
        "a key may appear once per mapping: merge the two entries"
    } else {
        "fix the YAML syntax (indentation, quoting, tabs); `portcullis policy schema` describes the format"
    }
}

/// A document of a policy set, typed.
enum Document {
    Policy(Box<PolicyDocument>),
    Exception(Box<ExceptionDocument>),
}

/// The `kind` of the documents test files hold (`portcullis test`).
const TEST_KIND: &str = "PolicyTest";

/// A document parsed into its typed form, with what is needed to locate its fields.
struct Parsed<'a> {
    doc: Document,
    raw: Option<serde_json::Value>,
    chunk: Chunk<'a>,
    source: Source,
}

/// Parses one document: `Ok(None)` for an empty one, `Err` with every problem found.
fn parse_chunk<'a>(file: &Path, chunk: Chunk<'a>) -> Result<Option<Parsed<'a>>, Vec<Diagnostic>> {
    let at = |local: usize| local + chunk.first_line - 1;
    let diag = |line: usize, message: String, hint: &str| Diagnostic {
        file: file.to_path_buf(),
        line,
        column: 0,
        message,
        hint: hint.to_owned(),
    };
    let located = |e: serde_yaml_ng::Error, fallback: usize| {
        let line = e.location().map(|l| at(l.line())).unwrap_or(fallback);
        let message = relocate_message(&e.to_string(), chunk.first_line, line);
        diag(line, message.clone(), parse_hint(&message))
    };
    // Deep nesting is refused before the YAML parser sees it (see `crate::nesting`).
    if let Err(deep) = crate::nesting::check_yaml(chunk.text) {
        return Err(vec![diag(
            at(deep.line),
            format!(
                "nested deeper than {} levels, at column {}: refused before parsing",
                crate::nesting::MAX_DEPTH,
                deep.column
            ),
            "a policy nests a few levels deep: look for runaway brackets or dashes",
        )]);
    }
    let raw: serde_yaml_ng::Value = match serde_yaml_ng::from_str(chunk.text) {
        Ok(v) => v,
        Err(e) => return Err(vec![located(e, chunk.first_line)]),
    };
    if raw.is_null() {
        return Ok(None);
    }
    let start = field_line(chunk.text, &FieldPath::root()).map_or(chunk.first_line, at);
    let Some(map) = raw.as_mapping() else {
        return Err(vec![diag(
            start,
            "a policy document must be a mapping with apiVersion, kind, metadata and spec"
                .to_owned(),
            "start the document with `apiVersion: portcullis.dev/v1alpha1` and `kind: Policy`",
        )]);
    };
    // A document of another kind (say, a Deployment) would produce a heap of unknown-field
    // errors; say what it is instead.
    let mut header = Vec::new();
    let kind = map.get("kind").and_then(|v| v.as_str());
    let line_of = |key: &str| field_line(chunk.text, &FieldPath::keys(&[key])).map_or(start, at);
    if let Some(v) = map.get("apiVersion")
        && v.as_str() != Some(API_VERSION)
    {
        let found = serde_yaml_ng::to_string(v).unwrap_or_default();
        header.push(diag(
            line_of("apiVersion"),
            format!("apiVersion: expected {API_VERSION:?}, found {:?}", found.trim_end()),
            "this is not a Portcullis policy: a policy directory holds only `apiVersion: portcullis.dev/v1alpha1` documents of kind `Policy` or `PolicyException`",
        ));
    }
    if kind == Some(TEST_KIND) {
        header.push(diag(
            line_of("kind"),
            format!("kind: {TEST_KIND} documents are tests, not policies"),
            "keep test files in a subdirectory (policies/tests/ is where `portcullis test` looks): the policy directory is loaded as it is by the webhook, and is not searched recursively",
        ));
    } else if let Some(v) = map.get("kind")
        && kind != Some(KIND)
        && kind != Some(EXCEPTION_KIND)
    {
        let found = serde_yaml_ng::to_string(v).unwrap_or_default();
        header.push(diag(
            line_of("kind"),
            format!(
                "kind: expected {KIND:?} or {EXCEPTION_KIND:?}, found {:?}",
                found.trim_end()
            ),
            "this is not a Portcullis policy: a policy directory holds only `apiVersion: portcullis.dev/v1alpha1` documents of kind `Policy` or `PolicyException`",
        ));
    }
    if !header.is_empty() {
        return Err(header);
    }
    let doc = if kind == Some(EXCEPTION_KIND) {
        serde_yaml_ng::from_str(chunk.text).map(|d| Document::Exception(Box::new(d)))
    } else {
        serde_yaml_ng::from_str(chunk.text).map(|d| Document::Policy(Box::new(d)))
    };
    let doc = match doc {
        Ok(d) => d,
        Err(e) => return Err(vec![located(e, start)]),
    };
    Ok(Some(Parsed {
        doc,
        raw: serde_json::to_value(&raw).ok(),
        chunk,
        source: Source {
            file: file.to_path_buf(),
            line: start,
        },
    }))
}

fn load_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, LoadError> {
    let mut diagnostics = Vec::new();
    let mut policies: Vec<CompiledPolicy> = Vec::new();
    let mut exceptions: Vec<(CompiledException, Located)> = Vec::new();
    // Policy name -> where it was first defined (file, line of `metadata.name`).
    let mut names: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    let mut exception_names: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for (file, text) in sources {
        for chunk in split_documents(text) {
            let parsed = match parse_chunk(file, chunk) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(mut d) => {
                    diagnostics.append(&mut d);
                    continue;
                }
            };
            let line_of = |path: &FieldPath| {
                field_line(parsed.chunk.text, path)
                    .map_or(parsed.source.line, |l| l + parsed.chunk.first_line - 1)
            };
            let name_line = line_of(&FieldPath::keys(&["metadata", "name"]));
            let doc = match parsed.doc {
                Document::Policy(doc) => doc,
                Document::Exception(doc) => {
                    let name = doc.metadata.name.clone();
                    if let Some((first_file, first_line)) = exception_names.get(&name) {
                        diagnostics.push(Diagnostic {
                            file: file.clone(),
                            line: name_line,
                            column: 0,
                            message: format!(
                                "metadata.name: duplicate exception name {name:?}, also defined at {}:{first_line}",
                                first_file.display()
                            ),
                            hint: "exception names must be unique in the set: rename one of the two".to_owned(),
                        });
                    } else {
                        exception_names.insert(name, (file.clone(), name_line));
                    }
                    let lines = located_lines(parsed.chunk, &parsed.source, &doc.spec.policies);
                    match compile_exception(*doc, parsed.source.clone()) {
                        Ok(e) => exceptions.push((e, lines)),
                        Err(errors) => diagnostics.extend(errors.into_iter().map(|e| Diagnostic {
                            file: file.clone(),
                            line: line_of(&e.path),
                            column: 0,
                            message: format!("{}: {}", e.path, e.message),
                            hint: e.hint,
                        })),
                    }
                    continue;
                }
            };
            let name = doc.metadata.name.clone();
            if let Some((first_file, first_line)) = names.get(&name) {
                diagnostics.push(Diagnostic {
                    file: file.clone(),
                    line: name_line,
                    column: 0,
                    message: format!(
                        "metadata.name: duplicate policy name {name:?}, also defined at {}:{first_line}",
                        first_file.display()
                    ),
                    hint: "policy names must be unique in the set: rename one of the two, or delete the copy".to_owned(),
                });
            } else {
                names.insert(name, (file.clone(), name_line));
            }
            match compile_document_raw(*doc, parsed.raw.as_ref(), parsed.source.clone()) {
                Ok(p) => policies.push(p),
                Err(errors) => diagnostics.extend(errors.into_iter().map(|e: CompileError| {
                    let line = line_of(&e.path);
                    let (line, column) = match e.at {
                        Some(at) => value_position(text, line, at),
                        None => (line, 0),
                    };
                    Diagnostic {
                        file: file.clone(),
                        line,
                        column,
                        message: format!("{}: {}", e.path, e.message),
                        hint: e.hint,
                    }
                })),
            }
        }
    }
    // Exceptions name policies and rule types of this set.
    for (exception, lines) in &exceptions {
        check_exception_targets(exception, lines, &policies, &mut diagnostics);
    }
    if diagnostics.is_empty() {
        let mut set = PolicySet::new(policies);
        set.exceptions = exceptions.into_iter().map(|(e, _)| Arc::new(e)).collect();
        Ok(set)
    } else {
        Err(LoadError { diagnostics })
    }
}

/// The lines of an exception's `spec.policies[i].name` and `.rules[j]` fields, for messages
/// written after the whole set is read.
struct Located {
    file: PathBuf,
    /// (policy index, line of its name, lines of its rules).
    policies: Vec<(usize, Vec<usize>)>,
}

fn located_lines(chunk: Chunk<'_>, source: &Source, targets: &[ExceptedPolicy]) -> Located {
    let line = |path: &FieldPath| {
        field_line(chunk.text, path).map_or(source.line, |l| l + chunk.first_line - 1)
    };
    let policies = targets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let base = FieldPath::keys(&["spec", "policies"]).index(i);
            let rules = (0..p.rules.len())
                .map(|j| line(&base.key("rules").index(j)))
                .collect();
            (line(&base.key("name")), rules)
        })
        .collect();
    Located {
        file: source.file.clone(),
        policies,
    }
}

/// The policies and rule types an exception names must exist in the set; `containers` only
/// narrow violations, so an exception naming containers cannot except mutation rules.
fn check_exception_targets(
    exception: &CompiledException,
    lines: &Located,
    policies: &[CompiledPolicy],
    out: &mut Vec<Diagnostic>,
) {
    let diag = |line: usize, message: String, hint: String| Diagnostic {
        file: lines.file.clone(),
        line,
        column: 0,
        message,
        hint,
    };
    for (i, target) in exception.policies.iter().enumerate() {
        let (name_line, rule_lines) = lines
            .policies
            .get(i)
            .cloned()
            .unwrap_or((exception.source.line, Vec::new()));
        let Some(policy) = policies.iter().find(|p| p.name == target.name) else {
            let known: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            out.push(diag(
                name_line,
                format!(
                    "spec.policies[{i}].name: no policy {:?} in the set",
                    target.name
                ),
                format!("name a policy of this set: {}", known.join(", ")),
            ));
            continue;
        };
        let types: Vec<&str> = policy.rules.iter().map(|r| r.type_name()).collect();
        for (j, rule) in target.rules.iter().enumerate() {
            let line = rule_lines.get(j).copied().unwrap_or(name_line);
            if !types.contains(&rule.as_str()) {
                out.push(diag(
                    line,
                    format!(
                        "spec.policies[{i}].rules[{j}]: policy {:?} has no {rule} rule",
                        target.name
                    ),
                    format!("its rules are: {}", types.join(", ")),
                ));
            }
        }
        let mutations = policy
            .rules
            .iter()
            .filter(|r| r.is_mutation())
            .map(|r| r.type_name())
            .find(|t| target.rules.is_empty() || target.rules.iter().any(|r| r == t));
        if let Some(mutation) = mutations
            && !exception.match_.containers.is_empty()
        {
            out.push(diag(
                name_line,
                format!(
                    "spec.policies[{i}]: the exception names containers, but {mutation} of policy {:?} is a mutation rule, which is excepted per workload",
                    target.name
                ),
                "drop `match.containers`, or write a separate exception for the mutation rule".to_owned(),
            ));
        }
    }
}

/// The file position (line, column, 1-based) of the point `at` (line, column within the
/// value) of the scalar value whose key is on `key_line` of `text`: after `key: ` (and an
/// opening quote) on that line, or on the lines below a block scalar (`|`, `>`).
/// Escapes in a quoted value (`\"`) may shift the column by their extra characters.
pub(crate) fn value_position(text: &str, key_line: usize, at: (usize, usize)) -> (usize, usize) {
    let Some(line) = text.lines().nth(key_line.saturating_sub(1)) else {
        return (key_line, 0);
    };
    // After the key's colon (a list item's `- key:` included).
    let value_start = line
        .find(": ")
        .map(|i| i + 2)
        .or_else(|| line.ends_with(':').then_some(line.len()))
        .unwrap_or(0);
    let value = line[value_start..].trim_start();
    let skipped = line.len() - value.len();
    let block = value.starts_with('|') || value.starts_with('>');
    if block || value.is_empty() {
        // The value starts on the next line; the block's indentation is its first line's.
        let indent = text
            .lines()
            .nth(key_line)
            .map_or(0, |l| l.len() - l.trim_start().len());
        return (key_line + at.0, indent + at.1);
    }
    let quote = usize::from(value.starts_with('"') || value.starts_with('\''));
    let before: usize = line[..skipped].chars().count() + quote;
    if at.0 <= 1 {
        (key_line, before + at.1)
    } else {
        // A folded, multi-line flow scalar: later lines keep their own indentation.
        let below = key_line + at.0 - 1;
        let indent = text
            .lines()
            .nth(below.saturating_sub(1))
            .map_or(0, |l| l.len() - l.trim_start().len());
        (below, indent + at.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_at_markers() {
        let text = "# c\na: 1\n---\nb: 2\n--- # x\nc: 3\n...\n---\nd: 4\n";
        let chunks: Vec<(usize, &str)> = split_documents(text)
            .into_iter()
            .map(|c| (c.first_line, c.text))
            .collect();
        assert_eq!(
            chunks,
            vec![
                (1, "# c\na: 1\n"),
                (3, "---\nb: 2\n"),
                (5, "--- # x\nc: 3\n"),
                (8, "---\nd: 4\n"),
            ]
        );
        assert!(split_documents("").is_empty());
        // `----` and `---x` are not markers.
        assert_eq!(split_documents("a: |\n  x\n----: 1\n").len(), 1);
    }

    #[test]
    fn locates_keys_items_and_ancestors() {
        let yaml = "# comment\n\napiVersion: v\nspec:\n  rules:\n    - requireProbes:\n        liveness: false\n    - {defaultLabels: {labels: {a.b/c: x}}}\n";
        let line = |p: FieldPath| field_line(yaml, &p);
        assert_eq!(line(FieldPath::root()), Some(3));
        assert_eq!(line(FieldPath::keys(&["apiVersion"])), Some(3));
        let rules = FieldPath::keys(&["spec", "rules"]);
        assert_eq!(line(rules.clone()), Some(5));
        assert_eq!(line(rules.index(0)), Some(6));
        assert_eq!(
            line(rules.index(0).key("requireProbes").key("liveness")),
            Some(7)
        );
        assert_eq!(
            line(
                rules
                    .index(1)
                    .key("defaultLabels")
                    .key("labels")
                    .key("a.b/c")
            ),
            Some(8)
        );
        // Absent fields fall back to the nearest ancestor that exists.
        assert_eq!(
            line(rules.index(0).key("requireProbes").key("startup")),
            Some(6)
        );
        assert_eq!(line(rules.index(5)), Some(5));
    }

    #[test]
    fn relocates_serde_positions() {
        assert_eq!(
            relocate_message("spec: unknown field `x` at line 3 column 5", 10, 12),
            "spec: unknown field `x`"
        );
        assert_eq!(
            relocate_message(
                "did not find expected key at line 2 column 1, while parsing a block mapping at line 1 column 1",
                5,
                6
            ),
            "did not find expected key, while parsing a block mapping at line 5 column 1"
        );
    }
}
