//! Where a finding's field is in the input file: [`FieldPositions`] is all the reports (SARIF,
//! HTML) ask; [`FileFieldPositions`] answers it by reading the file again and asking the YAML
//! module ([`crate::yaml::position`]) where the field is in the object's document.

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::read::{Location, STDIN_NAME};
pub use crate::yaml::Position;
use crate::yaml::Step;

/// Where a finding's field is in the input.
pub trait FieldPositions: std::fmt::Debug {
    /// The position of `field` (a path as the engine writes it in findings:
    /// `spec.template.spec.containers[0].livenessProbe`, `metadata.labels["team"]`) in the
    /// object read at `location`: of its key where the field exists, else of the deepest node
    /// on its path that does. `None` when the input cannot be read again (standard input, a
    /// cluster) or the document is not where the location says.
    fn field_position(&mut self, location: &Location, field: &str) -> Option<Position>;
}

/// Answers [`FieldPositions`] by reading each file again (once, kept while its documents come
/// one after the other, as reports receive them) and walking the document's YAML events.
#[derive(Debug, Default)]
pub struct FileFieldPositions {
    /// The file read last: its name, and its text with where each line starts (`None`: it
    /// could not be read).
    current: Option<(String, Option<Arc<Lines>>)>,
    /// Lookups already answered for the current file (several findings share a field's path
    /// prefix, and every report asks the same questions).
    answered: HashMap<(usize, Option<usize>, String), Option<Position>>,
}

/// A file's text and the byte offset where each of its lines starts.
#[derive(Debug)]
struct Lines {
    text: String,
    starts: Vec<usize>,
}

impl FileFieldPositions {
    /// A reader with nothing read yet.
    pub fn new() -> FileFieldPositions {
        FileFieldPositions::default()
    }

    fn lines(&mut self, file: &str) -> Option<Arc<Lines>> {
        if self.current.as_ref().is_none_or(|(f, _)| f != file) {
            self.answered.clear();
            let lines = std::fs::read_to_string(file).ok().map(|text| {
                let mut starts = vec![0];
                starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
                Arc::new(Lines { text, starts })
            });
            self.current = Some((file.to_owned(), lines));
        }
        self.current.as_ref().and_then(|(_, l)| l.clone())
    }
}

impl FieldPositions for FileFieldPositions {
    fn field_position(&mut self, location: &Location, field: &str) -> Option<Position> {
        if location.file == STDIN_NAME || location.file.starts_with('<') {
            return None;
        }
        let line = location.line?;
        let lines = self.lines(&location.file)?;
        let key = (line, location.item_index, field.to_owned());
        if let Some(answer) = self.answered.get(&key) {
            return *answer;
        }
        let start = *lines.starts.get(line.checked_sub(1)?)?;
        let answer =
            position_in_document(&lines.text[start..], location.item_index, field).map(|p| {
                Position {
                    line: p.line + line - 1,
                    column: p.column,
                }
            });
        self.answered.insert(key, answer);
        answer
    }
}

/// Splits a field path as the engine writes it: `a.b[0].c`, `metadata.labels["app.kubernetes.io/name"]`.
/// `None` when it is not one.
fn steps(field: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]")?;
            out.push(Step::Key(&after[..end]));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            out.push(Step::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            if end == 0 {
                return None;
            }
            out.push(Step::Key(&rest_trimmed[..end]));
            rest = &rest_trimmed[end..];
        }
    }
    Some(out)
}

/// The position of `field` in the document at the start of `text` (the object `items[item]`
/// of it for an item of a `List`), relative to `text`: see [`FieldPositions::field_position`].
pub fn position_in_document(text: &str, item: Option<usize>, field: &str) -> Option<Position> {
    let mut path = Vec::new();
    if let Some(i) = item {
        path.extend([Step::Key("items"), Step::Index(i)]);
    }
    path.extend(steps(field)?);
    crate::yaml::position(text, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, item: Option<usize>, field: &str) -> (usize, usize) {
        let p = position_in_document(text, item, field).expect("a position");
        (p.line, p.column)
    }

    #[test]
    fn field_paths_split_as_the_engine_writes_them() {
        assert_eq!(
            steps("spec.containers[0].livenessProbe"),
            Some(vec![
                Step::Key("spec"),
                Step::Key("containers"),
                Step::Index(0),
                Step::Key("livenessProbe")
            ])
        );
        assert_eq!(
            steps("metadata.labels[\"app.kubernetes.io/name\"]"),
            Some(vec![
                Step::Key("metadata"),
                Step::Key("labels"),
                Step::Key("app.kubernetes.io/name")
            ])
        );
        assert_eq!(steps(""), Some(vec![]));
        assert_eq!(steps("a[x]"), None);
    }

    #[test]
    fn existing_fields_are_found_at_their_key() {
        let doc = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: a:1\n  - name: b\n    image: b\n    resources:\n      limits: {cpu: 1}\n";
        assert_eq!(at(doc, None, "metadata.name"), (4, 3));
        assert_eq!(at(doc, None, "spec.containers[1].image"), (10, 5));
        assert_eq!(
            at(doc, None, "spec.containers[1].resources.limits.cpu"),
            (12, 16)
        );
    }

    #[test]
    fn missing_fields_are_found_at_their_deepest_existing_node() {
        let doc = "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: a:1\n";
        // The container exists, its probe does not: the container's first key.
        assert_eq!(at(doc, None, "spec.containers[0].livenessProbe"), (4, 5));
        assert_eq!(
            at(doc, None, "spec.containers[0].resources.limits.cpu"),
            (4, 5)
        );
        assert_eq!(at(doc, None, "metadata.labels[\"team\"]"), (1, 1));
        assert_eq!(at(doc, None, "spec.containers[3]"), (3, 3));
    }

    #[test]
    fn list_items_and_json_documents() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: a}\n- kind: Pod\n  metadata:\n    name: b\n";
        assert_eq!(at(list, Some(1), "metadata.name"), (8, 5));
        let json = "{\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [{\"name\": \"a\"}]}\n}\n{\"kind\": \"Pod\"}\n";
        // The container's `{` (its `image` is missing).
        assert_eq!(at(json, None, "spec.containers[0].image"), (3, 27));
    }

    #[test]
    fn the_document_ends_where_its_root_does() {
        // The next document (which has the field) is never looked at.
        let text = "kind: Pod\nmetadata: {}\n---\nkind: Pod\nmetadata: {name: x}\n";
        assert_eq!(at(text, None, "metadata.name"), (2, 1));
    }
}
