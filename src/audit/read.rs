//! Manifest reading: files, directories and stdin holding multi-document YAML or JSON, `List`
//! kinds, and what `kubectl kustomize` / `helm template` print, turned into one ordered list of
//! objects and unreadable inputs (a broken document never stops the rest).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

/// The name stdin goes by in reports.
pub const STDIN_NAME: &str = "<stdin>";

/// Where manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file (read whatever its extension) or a directory (walked recursively for `*.yaml`,
    /// `*.yml` and `*.json`, skipping entries whose name starts with `.`).
    Path(PathBuf),
    /// Standard input (`-` on the command line).
    Stdin,
}

impl Input {
    /// `-` is stdin, anything else a path.
    pub fn parse(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }
}

/// Where one object sits in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as named on the command line (joined with the path inside a directory), or
    /// [`STDIN_NAME`].
    pub file: String,
    /// 1-based index of the document in the file, counting only documents with content
    /// (empty documents and comment-only documents, as `helm template` prints, are not counted).
    /// `None` when the whole file could not be read.
    pub document_index: Option<usize>,
    /// 0-based index in the `items` of a `List` document, when the object came from one.
    pub item_index: Option<usize>,
    /// 1-based line where the document starts (or where the syntax error is).
    pub line: Option<usize>,
}

impl std::fmt::Display for Location {
    /// `apps.yaml#2`, `list.yaml#1.items[3]`, `<stdin>#1`, or just the file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(i) = self.document_index {
            write!(f, "#{i}")?;
        }
        if let Some(i) = self.item_index {
            write!(f, ".items[{i}]")?;
        }
        Ok(())
    }
}

/// One Kubernetes object read from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where it was read.
    pub location: Location,
    /// The object (a JSON object with string `apiVersion` and `kind`).
    pub object: Value,
}

/// An input that could not be read as Kubernetes objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Where (line when known).
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(line) = self.location.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One entry of the input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An object.
    Object(Manifest),
    /// Something unreadable.
    Error(ReadError),
}

/// Reads every input in order. Problems become [`Entry::Error`]s; nothing here fails as a whole.
pub fn read_inputs(inputs: &[Input]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for input in inputs {
        match input {
            Input::Stdin => {
                let mut bytes = Vec::new();
                match std::io::stdin().lock().read_to_end(&mut bytes) {
                    Ok(_) => entries.extend(read_bytes(STDIN_NAME, &bytes)),
                    Err(e) => entries.push(file_error(STDIN_NAME, format!("cannot read: {e}"))),
                }
            }
            Input::Path(path) => read_path(path, true, &mut entries),
        }
    }
    entries
}

/// Whether a file found while walking a directory is a manifest by its name.
fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext))
}

fn read_path(path: &Path, explicit: bool, entries: &mut Vec<Entry>) {
    let name = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            entries.push(file_error(&name, format!("cannot read: {e}")));
            return;
        }
    };
    if meta.is_dir() {
        let listing = match std::fs::read_dir(path) {
            Ok(l) => l,
            Err(e) => {
                entries.push(file_error(&name, format!("cannot read directory: {e}")));
                return;
            }
        };
        let mut children: Vec<(PathBuf, bool)> = Vec::new();
        for entry in listing {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    entries.push(file_error(&name, format!("cannot read directory: {e}")));
                    continue;
                }
            };
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if file_name.starts_with('.') {
                continue;
            }
            let child = entry.path();
            // Follow symlinks (Kubernetes volumes are made of them).
            let is_dir = child.is_dir();
            if is_dir || is_manifest_name(&file_name) {
                children.push((child, is_dir));
            }
        }
        children.sort();
        for (child, _) in children {
            read_path(&child, false, entries);
        }
        return;
    }
    if !explicit && !meta.is_file() {
        return;
    }
    match std::fs::read(path) {
        Ok(bytes) => entries.extend(read_bytes(&name, &bytes)),
        Err(e) => entries.push(file_error(&name, format!("cannot read: {e}"))),
    }
}

fn file_error(file: &str, message: String) -> Entry {
    Entry::Error(ReadError {
        location: Location {
            file: file.to_owned(),
            document_index: None,
            item_index: None,
            line: None,
        },
        message,
    })
}

/// Reads the objects of one file's bytes (YAML or JSON, possibly several documents).
pub fn read_bytes(file: &str, bytes: &[u8]) -> Vec<Entry> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return vec![not_utf8(file, bytes, &e)],
    };
    read_str(file, text)
}

fn not_utf8(file: &str, bytes: &[u8], e: &std::str::Utf8Error) -> Entry {
    let offset = e.valid_up_to();
    let message = if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        "not UTF-8 text: the file is UTF-16 encoded; convert it (e.g. `iconv -f UTF-16 -t UTF-8`)"
            .to_owned()
    } else {
        format!(
            "not UTF-8 text: invalid byte 0x{:02X} at offset {offset}",
            bytes[offset]
        )
    };
    let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
    Entry::Error(ReadError {
        location: Location {
            file: file.to_owned(),
            document_index: None,
            item_index: None,
            line: Some(line),
        },
        message,
    })
}

/// Reads the objects of one file's text (YAML or JSON, possibly several documents).
pub fn read_str(file: &str, text: &str) -> Vec<Entry> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Some(entries) = read_json_stream(file, text)
    {
        return entries;
    }
    let mut entries = Vec::new();
    let mut index = 0;
    for chunk in split_documents(text) {
        if !has_content(chunk.text) {
            continue;
        }
        index += 1;
        let location = Location {
            file: file.to_owned(),
            document_index: Some(index),
            item_index: None,
            line: Some(chunk.first_line + first_content_line(chunk.text) - 1),
        };
        match parse_yaml_document(chunk.text) {
            Ok(value) => push_document(location, value, &mut entries),
            Err((message, line)) => entries.push(Entry::Error(ReadError {
                location: Location {
                    line: Some(chunk.first_line + line.saturating_sub(1)),
                    ..location
                },
                message: shift_lines(&message, chunk.first_line - 1),
            })),
        }
    }
    entries
}

/// JSON files: one value, or several concatenated (`kubectl get -o json` per object). `None`
/// when the text is not JSON after all (a YAML flow mapping), so YAML gets its turn.
fn read_json_stream(file: &str, text: &str) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut index = 0;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Some(entries),
            Some(Ok(value)) => {
                index += 1;
                let skipped_ws = text[start..].len() - text[start..].trim_start().len();
                let line = text[..start + skipped_ws].matches('\n').count() + 1;
                let location = Location {
                    file: file.to_owned(),
                    document_index: Some(index),
                    item_index: None,
                    line: Some(line),
                };
                push_document(location, value, &mut entries);
            }
            Some(Err(e)) => {
                if index == 0 {
                    // Not JSON at all: let the YAML reader try (and report).
                    return None;
                }
                entries.push(Entry::Error(ReadError {
                    location: Location {
                        file: file.to_owned(),
                        document_index: Some(index + 1),
                        item_index: None,
                        line: Some(e.line()),
                    },
                    message: format!("invalid JSON: {e}"),
                }));
                return Some(entries);
            }
        }
    }
}

/// Turns one parsed document into objects: a `List` (or a JSON array) is flattened into its
/// items; anything that is not an object with `apiVersion` and `kind` is an error.
fn push_document(location: Location, value: Value, entries: &mut Vec<Entry>) {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) if is_list(&map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                entries.push(Entry::Error(ReadError {
                    location,
                    message: "a List's `items` must be a sequence of objects".to_owned(),
                }));
                return;
            }
        },
        other => {
            entries.push(check_object(location, other));
            return;
        }
    };
    for (i, item) in flatten_lists(items).into_iter().enumerate() {
        let location = Location {
            item_index: Some(i),
            ..location.clone()
        };
        entries.push(check_object(location, item));
    }
}

/// Items of nested Lists are flattened too (`kubectl get all -o yaml` never nests, but a
/// hand-written List may).
fn flatten_lists(items: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(mut map) if is_list(&map) => {
                if let Some(Value::Array(inner)) = map.remove("items") {
                    out.extend(flatten_lists(inner));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `kind: List`, or any `*List` kind (`PodList`, `DeploymentList`) with `items`.
fn is_list(map: &Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || (k.ends_with("List") && map.contains_key("items")))
}

fn check_object(location: Location, value: Value) -> Entry {
    let problem = match &value {
        Value::Object(map) => match (map.get("apiVersion"), map.get("kind")) {
            (Some(Value::String(a)), Some(Value::String(k))) if !a.is_empty() && !k.is_empty() => {
                None
            }
            (_, None) | (_, Some(Value::Null)) => {
                Some("not a Kubernetes object: `kind` is missing".to_owned())
            }
            (None, _) | (Some(Value::Null), _) => {
                Some("not a Kubernetes object: `apiVersion` is missing".to_owned())
            }
            _ => Some(
                "not a Kubernetes object: `apiVersion` and `kind` must be non-empty strings"
                    .to_owned(),
            ),
        },
        other => Some(format!(
            "not a Kubernetes object: expected a mapping with apiVersion and kind, found {}",
            json_type(other)
        )),
    };
    match problem {
        None => Entry::Object(Manifest {
            location,
            object: value,
        }),
        Some(message) => Entry::Error(ReadError { location, message }),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// A document's text and the 1-based line it starts on.
struct Chunk<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a YAML stream at `---` lines (column 0, as kubectl does), keeping each document's
/// starting line. Text after `---` on the same line (`--- # Source: x`) stays with the
/// document; `...` document-end markers end a document.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0; // byte offset of the current document
    let mut start_line = 1;
    let mut offset = 0;
    for (line_no, line) in (1..).zip(text.split_inclusive('\n')) {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_separator = bare.starts_with("---")
            && bare[3..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t');
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_separator || is_end {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            if is_separator {
                // The rest of the line belongs to the next document; keep it (a comment, or
                // even content) by starting the document right after `---`.
                start = offset + 3;
            } else {
                start = offset + line.len();
            }
            start_line = if is_separator { line_no } else { line_no + 1 };
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start.min(text.len())..],
        first_line: start_line,
    });
    chunks
}

/// Whether a document has anything besides blank lines, comments and directives.
fn has_content(doc: &str) -> bool {
    doc.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
    })
}

/// Rewrites the parser's document-relative `line N` mentions into file lines.
fn shift_lines(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        let (before, after) = rest.split_at(i + "line ".len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The 1-based line of a document's first content line (see [`has_content`]).
fn first_content_line(doc: &str) -> usize {
    doc.lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
        })
        .map_or(1, |i| i + 1)
}

/// Parses one YAML document into JSON, the way kubectl does: merge keys (`<<`) applied, tags
/// ignored, scalar keys turned into strings. Errors carry the 1-based line in the document.
fn parse_yaml_document(doc: &str) -> Result<Value, (String, usize)> {
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(1);
        (format!("invalid YAML: {e}"), line)
    })?;
    yaml.apply_merge()
        .map_err(|e| (format!("invalid YAML merge key: {e}"), 1))?;
    yaml_to_json(yaml).map_err(|m| (m, 1))
}

fn yaml_to_json(v: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(
                    Number::from_f64(f)
                        .ok_or_else(|| format!("the number {n} cannot be represented in JSON"))?,
                )
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_owned(),
                    other => {
                        return Err(format!(
                            "a mapping key must be a scalar, found {}",
                            yaml_kind(&other)
                        ));
                    }
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

fn yaml_kind(v: &serde_yaml_ng::Value) -> &'static str {
    match v {
        serde_yaml_ng::Value::Sequence(_) => "a sequence",
        serde_yaml_ng::Value::Mapping(_) => "a mapping",
        _ => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(entries: &[Entry]) -> Vec<(&Location, &Value)> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Object(m) => Some((&m.location, &m.object)),
                Entry::Error(_) => None,
            })
            .collect()
    }

    fn errors(entries: &[Entry]) -> Vec<&ReadError> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Error(r) => Some(r),
                Entry::Object(_) => None,
            })
            .collect()
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        objects(entries)
            .iter()
            .map(|(_, o)| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().expect("kind is a string"),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn multi_document_with_indexes_and_lines() {
        let text = format!("{CM}---\n{}", CM.replace("name: a", "name: b"));
        let entries = read_str("f.yaml", &text);
        let objs = objects(&entries);
        assert_eq!(names(&entries), ["ConfigMap/a", "ConfigMap/b"]);
        assert_eq!(objs[0].0.document_index, Some(1));
        assert_eq!(objs[0].0.line, Some(1));
        assert_eq!(objs[1].0.document_index, Some(2));
        assert_eq!(objs[1].0.line, Some(6));
        assert_eq!(objs[1].0.to_string(), "f.yaml#2");
    }

    #[test]
    fn helm_template_empty_documents_and_source_comments() {
        let text = format!(
            "---\n# Source: chart/templates/a.yaml\n{CM}---\n# Source: chart/templates/empty.yaml\n---\n---\n--- # Source: chart/templates/b.yaml\n{}\n",
            CM.replace("name: a", "name: b")
        );
        let entries = read_str("helm.yaml", &text);
        assert!(errors(&entries).is_empty(), "{entries:?}");
        assert_eq!(names(&entries), ["ConfigMap/a", "ConfigMap/b"]);
        // Empty documents are not counted.
        assert_eq!(objects(&entries)[1].0.document_index, Some(2));
    }

    #[test]
    fn list_kinds_are_flattened() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
---
apiVersion: v1
kind: PodList
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p}
  spec: {containers: []}
"#;
        let entries = read_str("l.yaml", text);
        assert_eq!(names(&entries), ["Service/s", "ConfigMap/c", "Pod/p"]);
        let objs = objects(&entries);
        assert_eq!(objs[1].0.to_string(), "l.yaml#1.items[1]");
        assert_eq!(objs[2].0.to_string(), "l.yaml#2.items[0]");
    }

    #[test]
    fn a_kind_ending_in_list_without_items_is_an_object() {
        let text = "apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: x}\n";
        assert_eq!(names(&read_str("f.yaml", text)), ["AllowList/x"]);
    }

    #[test]
    fn broken_document_does_not_stop_the_rest() {
        let text =
            format!("{CM}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [oops\n---\n{CM}");
        let entries = read_str("b.yaml", &text);
        assert_eq!(names(&entries), ["ConfigMap/a", "ConfigMap/a"]);
        let errs = errors(&entries);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].location.document_index, Some(2));
        // The document starts on line 5; the error is reported within it, not at line 1.
        let line = errs[0].location.line.expect("syntax errors have a line");
        assert!((5..=10).contains(&line), "line {line}");
        assert!(
            errs[0].message.starts_with("invalid YAML"),
            "{}",
            errs[0].message
        );
        assert!(
            errs[0].to_string().starts_with("b.yaml#2 (line "),
            "{}",
            errs[0]
        );
        // Input order is kept.
        assert!(matches!(entries[1], Entry::Error(_)));
    }

    #[test]
    fn comments_and_crlf() {
        let text = "# leading comment\r\napiVersion: v1 # trailing\r\nkind: ConfigMap\r\nmetadata:\r\n  name: crlf\r\ndata:\r\n  k: \"v\"\r\n---\r\napiVersion: v1\r\nkind: Secret\r\nmetadata: {name: s}\r\n";
        let entries = read_str("crlf.yaml", text);
        assert!(errors(&entries).is_empty(), "{entries:?}");
        assert_eq!(names(&entries), ["ConfigMap/crlf", "Secret/s"]);
        assert_eq!(objects(&entries)[0].1["data"]["k"], json!("v"));
    }

    #[test]
    fn json_single_concatenated_and_array() {
        let one = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#;
        assert_eq!(names(&read_str("a.json", one)), ["ConfigMap/j"]);
        let two = format!("{one}\n{}", one.replace("\"j\"", "\"k\""));
        let entries = read_str("b.json", &two);
        assert_eq!(names(&entries), ["ConfigMap/j", "ConfigMap/k"]);
        assert_eq!(objects(&entries)[1].0.line, Some(2));
        let arr = format!("[{one}, {one}]");
        let entries = read_str("c.json", &arr);
        assert_eq!(objects(&entries)[1].0.to_string(), "c.json#1.items[1]");
    }

    #[test]
    fn broken_json_after_a_good_object_is_reported() {
        let text = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"j\"}}\n{\"kind\": }";
        let entries = read_str("b.json", text);
        assert_eq!(names(&entries), ["ConfigMap/j"]);
        let errs = errors(&entries);
        assert_eq!(errs[0].location.document_index, Some(2));
        assert_eq!(errs[0].location.line, Some(2));
    }

    #[test]
    fn yaml_flow_mapping_is_not_mistaken_for_json() {
        let text = "{apiVersion: v1, kind: ConfigMap, metadata: {name: flow}}\n";
        assert_eq!(names(&read_str("f.yaml", text)), ["ConfigMap/flow"]);
    }

    #[test]
    fn not_objects_are_errors() {
        let entries = read_str(
            "x.yaml",
            "just a string\n---\nkind: Pod\n---\napiVersion: v1\n",
        );
        let errs = errors(&entries);
        assert_eq!(errs.len(), 3);
        assert!(
            errs[0].message.contains("found a string"),
            "{}",
            errs[0].message
        );
        assert!(errs[1].message.contains("`apiVersion` is missing"));
        assert!(errs[2].message.contains("`kind` is missing"));
    }

    #[test]
    fn non_utf8_is_a_clear_error() {
        let mut bytes = CM.as_bytes().to_vec();
        bytes.extend_from_slice(b"data:\n  k: \xff\xfe\n");
        let entries = read_bytes("bin.yaml", &bytes);
        let errs = errors(&entries);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("not UTF-8"), "{}", errs[0].message);
        assert_eq!(errs[0].location.line, Some(6));
        let utf16 = read_bytes("u16.yaml", b"\xff\xfea\x00");
        assert!(errors(&utf16)[0].message.contains("UTF-16"));
    }

    #[test]
    fn bom_merge_keys_tags_and_non_string_keys() {
        let text = "\u{FEFF}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  labels: &l {a: b}\n  annotations:\n    <<: *l\n    c: !!str 1\ndata:\n  8080: port\n";
        let entries = read_str("m.yaml", text);
        assert!(errors(&entries).is_empty(), "{entries:?}");
        let o = objects(&entries)[0].1;
        assert_eq!(o["metadata"]["annotations"], json!({"a": "b", "c": "1"}));
        assert_eq!(o["data"]["8080"], json!("port"));
    }

    #[test]
    fn syntax_error_lines_are_file_lines() {
        assert_eq!(
            shift_lines(
                "bad at line 8 column 12, while scanning at line 7 column 1",
                7
            ),
            "bad at line 15 column 12, while scanning at line 14 column 1"
        );
        assert_eq!(shift_lines("no lines here", 3), "no lines here");
        let text = format!("{CM}---\nkind: x\nmetadata: [\n");
        let entries = read_str("e.yaml", &text);
        let err = errors(&entries)[0];
        assert!(!err.message.contains("line 2 "), "{}", err.message);
    }

    #[test]
    fn empty_input_yields_nothing() {
        assert!(read_str("e.yaml", "").is_empty());
        assert!(read_str("e.yaml", "---\n# nothing\n---\n").is_empty());
    }

    #[test]
    fn separator_lookalikes_are_content() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  k: |\n    ---not a separator\n";
        let entries = read_str("s.yaml", text);
        assert_eq!(names(&entries), ["ConfigMap/x"]);
    }

    #[test]
    fn directories_are_walked_sorted_skipping_dot_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).expect("test setup");
        std::fs::create_dir_all(d.join(".git")).expect("test setup");
        std::fs::write(d.join("b.yaml"), CM.replace("name: a", "name: b")).expect("test setup");
        std::fs::write(d.join("a.yml"), CM).expect("test setup");
        std::fs::write(
            d.join("sub/c.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
        )
        .expect("test setup");
        std::fs::write(d.join(".hidden.yaml"), CM).expect("test setup");
        std::fs::write(d.join(".git/x.yaml"), CM).expect("test setup");
        std::fs::write(d.join("README.md"), "# not a manifest").expect("test setup");
        let entries = read_inputs(&[Input::Path(d.to_path_buf())]);
        assert_eq!(
            names(&entries),
            ["ConfigMap/a", "ConfigMap/b", "ConfigMap/c"]
        );
        let missing = read_inputs(&[Input::Path(d.join("nope.yaml"))]);
        assert!(errors(&missing)[0].message.starts_with("cannot read"));
    }
}
