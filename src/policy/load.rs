//! Loading: reads policy files (multi-document YAML) from a directory or a string, parses them
//! strictly and compiles them into a [`PolicySet`], reporting every problem with file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::yaml::{Chunk, Step};

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

/// The 1-based line (within `yaml`, a single document) of the key or list item at `path`, or
/// of the nearest ancestor that exists. The empty path gives the line where the document's
/// content starts.
pub fn field_line(yaml: &str, path: &FieldPath) -> Option<usize> {
    crate::yaml::position(yaml, &steps(path)).map(|p| p.line)
}

/// A field path as the YAML module's steps.
fn steps(path: &FieldPath) -> Vec<Step<'_>> {
    path.segments()
        .iter()
        .map(|s| match s {
            PathSegment::Key(k) => Step::Key(k),
            PathSegment::Index(i) => Step::Index(*i),
        })
        .collect()
}

/// A hint for a problem found reading a document, by what its message says.
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

/// Parses one document into JSON ([`crate::yaml::parse`]: deep nesting is refused by the
/// parser's budget, before any typed read), or the diagnostic, at the line and column where the
/// parser stopped, in serde-saphyr's words.
pub(crate) fn parse_raw(file: &Path, chunk: Chunk<'_>) -> Result<serde_json::Value, Diagnostic> {
    let e = match crate::yaml::parse(chunk.text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let line = e.line + chunk.first_line - 1;
    let (message, hint) = if e.too_deep {
        (
            format!(
                "nested deeper than {} levels, at column {}: refused",
                crate::yaml::MAX_DEPTH,
                e.column
            ),
            "a policy nests a few levels deep: look for runaway brackets or dashes",
        )
    } else {
        // The audit's words (`audit::read`), with the line in the file.
        let message = format!(
            "invalid YAML: {} at line {line} column {}",
            e.message, e.column
        );
        let hint = parse_hint(&message);
        (message, hint)
    };
    Err(Diagnostic {
        file: file.to_path_buf(),
        line,
        column: 0,
        message,
        hint: hint.to_owned(),
    })
}

/// Reads a parsed document (see [`parse_raw`]) into its typed form. A problem is told with
/// its field path (`spec.rules[0].requireProbes: invalid type: string "yes", expected a
/// boolean`) at the line of that field, or of the nearest ancestor that exists.
///
/// A number or boolean written without quotes where the format wants a string (`tier: 1`,
/// `version: 1.10` under `defaultLabels`) is read as written (`"1"`, `"1.10"`: the plain
/// scalar's text, never the number's), as policy files have always been read: the typed read
/// is retried with the scalar's text at the field it stopped at, as long as that gets it past
/// that field.
pub(crate) fn read_typed<T: serde::de::DeserializeOwned>(
    file: &Path,
    chunk: Chunk<'_>,
    raw: &serde_json::Value,
) -> Result<T, Diagnostic> {
    let mut raw = std::borrow::Cow::Borrowed(raw);
    // The error before the last substitution, and where it was.
    let mut before: Option<(FieldPath, serde_path_to_error::Error<serde_json::Error>)> = None;
    for _ in 0..=MAX_SCALARS_AS_TEXT {
        let e = match serde_path_to_error::deserialize::<_, T>(&*raw) {
            Ok(typed) => return Ok(typed),
            Err(e) => e,
        };
        let path = error_path(&e);
        if let Some((at, first)) = before.take()
            && at == path
        {
            // The text did not get the read past the field: tell what the value was.
            return Err(typed_diagnostic(file, chunk, path, first));
        }
        let Some(text) = as_written(&raw, chunk.text, &path) else {
            return Err(typed_diagnostic(file, chunk, path, e));
        };
        if let Some(slot) = value_at(raw.to_mut(), &path) {
            *slot = serde_json::Value::String(text);
        }
        before = Some((path, e));
    }
    // More unquoted values than any policy holds: the last one is told as it is.
    let e = match serde_path_to_error::deserialize::<_, T>(&*raw) {
        Ok(typed) => return Ok(typed),
        Err(e) => e,
    };
    Err(typed_diagnostic(file, chunk, error_path(&e), e))
}

/// At most this many unquoted numbers and booleans per document are read as text (each costs
/// a typed read and a walk of the document).
const MAX_SCALARS_AS_TEXT: usize = 256;

/// The field path a typed read stopped at.
fn error_path(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldPath {
    use serde_path_to_error::Segment;
    FieldPath(
        e.path()
            .iter()
            .filter_map(|s| match s {
                Segment::Seq { index } => Some(PathSegment::Index(*index)),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    Some(PathSegment::Key(key.clone()))
                }
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// The text of the number or boolean at `path`, as written in `yaml` (a plain scalar).
fn as_written(raw: &serde_json::Value, yaml: &str, path: &FieldPath) -> Option<String> {
    let value = path.segments().iter().try_fold(raw, |v, s| match s {
        PathSegment::Key(k) => v.get(k.as_str()),
        PathSegment::Index(i) => v.get(*i),
    })?;
    if !(value.is_number() || value.is_boolean()) {
        return None;
    }
    crate::yaml::plain_scalar(yaml, &steps(path))
}

/// The value at `path`, to replace.
fn value_at<'v>(
    raw: &'v mut serde_json::Value,
    path: &FieldPath,
) -> Option<&'v mut serde_json::Value> {
    path.segments().iter().try_fold(raw, |v, s| match s {
        PathSegment::Key(k) => v.get_mut(k.as_str()),
        PathSegment::Index(i) => v.get_mut(*i),
    })
}

/// The diagnostic for a typed read that stopped at `path`.
fn typed_diagnostic(
    file: &Path,
    chunk: Chunk<'_>,
    path: FieldPath,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> Diagnostic {
    let line = field_line(chunk.text, &path).map_or(chunk.first_line, |l| l + chunk.first_line - 1);
    let message = e.into_inner().to_string();
    // An unknown field is told at its mapping's path (the message names the field), on
    // the field's own line.
    let named = match path.segments().split_last() {
        Some((PathSegment::Key(k), parent))
            if message.starts_with(&format!("unknown field `{k}`")) =>
        {
            FieldPath(parent.to_vec())
        }
        _ => path,
    };
    let message = if named.segments().is_empty() {
        message
    } else {
        format!("{named}: {message}")
    };
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column: 0,
        hint: parse_hint(&message).to_owned(),
        message,
    }
}

/// How a value found in a document is quoted in messages: a string as it is, anything else as
/// JSON.
fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
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
    let raw = parse_raw(file, chunk).map_err(|d| vec![d])?;
    if raw.is_null() {
        return Ok(None);
    }
    let start = field_line(chunk.text, &FieldPath::root()).map_or(chunk.first_line, at);
    let Some(map) = raw.as_object() else {
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
        header.push(diag(
            line_of("apiVersion"),
            format!("apiVersion: expected {API_VERSION:?}, found {:?}", scalar_text(v)),
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
        header.push(diag(
            line_of("kind"),
            format!(
                "kind: expected {KIND:?} or {EXCEPTION_KIND:?}, found {:?}",
                scalar_text(v)
            ),
            "this is not a Portcullis policy: a policy directory holds only `apiVersion: portcullis.dev/v1alpha1` documents of kind `Policy` or `PolicyException`",
        ));
    }
    if !header.is_empty() {
        return Err(header);
    }
    let doc = if kind == Some(EXCEPTION_KIND) {
        read_typed(file, chunk, &raw).map(|d| Document::Exception(Box::new(d)))
    } else {
        read_typed(file, chunk, &raw).map(|d| Document::Policy(Box::new(d)))
    };
    let doc = doc.map_err(|d| vec![d])?;
    Ok(Some(Parsed {
        doc,
        raw: Some(raw),
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
        for chunk in crate::yaml::documents(text) {
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
}
