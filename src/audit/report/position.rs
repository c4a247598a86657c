//! Where a finding's field is in the input file: the seam between the reports (SARIF, HTML)
//! and the YAML reader. [`FieldPositions`] is all the reports ask; [`FileFieldPositions`]
//! answers it for now by reading the file again and walking the document's YAML events.
//!
//! REPLACE WITH THE YAML MODULE: once `src/yaml.rs` keeps the positions of the nodes it parses
//! ("the line and column of the node at a path as the engine writes field paths in findings,
//! and for a path that does not exist, the position of the deepest existing node on it"),
//! [`position_in_document`] becomes a call to it and the second reading of the file goes away.
//! The tests below pin real lines and columns of real fixture files, and must keep holding.

use std::collections::HashMap;
use std::sync::Arc;

use granit_parser::{Event, Parser, Span};

use crate::audit::read::{Location, STDIN_NAME};

/// A place in a text file: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

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

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
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
/// The document ends where its root node does; what follows is never read.
///
/// REPLACE WITH THE YAML MODULE (see the module documentation).
pub fn position_in_document(text: &str, item: Option<usize>, field: &str) -> Option<Position> {
    let mut path = Vec::new();
    if let Some(i) = item {
        path.extend([Step::Key("items"), Step::Index(i)]);
    }
    path.extend(steps(field)?);
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
    let mut walk = Walk {
        events: &mut events,
        found: position(&span),
    };
    walk.descend(&root, &path);
    Some(walk.found)
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// A walk down the events of one node, remembering the deepest position found on the path.
struct Walk<'e, I: Iterator<Item = (Event<'e>, Span)>> {
    events: &'e mut I,
    found: Position,
}

impl<'e, I: Iterator<Item = (Event<'e>, Span)>> Walk<'e, I> {
    /// Looks for `path` in the node that `start` began (its events up to its end are
    /// consumed, except when the path is found inside it: the walk stops there).
    fn descend(&mut self, start: &Event<'e>, path: &[Step<'_>]) -> bool {
        let Some((step, rest)) = path.split_first() else {
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
                let matched = matches!(&key, Event::Scalar(k, ..) if k == wanted);
                if !matched {
                    self.skip(&key);
                    let Some((value, _)) = self.events.next() else {
                        return false;
                    };
                    self.skip(&value);
                    continue;
                }
                self.found = position(&key_span);
                let Some((value, _)) = self.events.next() else {
                    return false;
                };
                if rest.is_empty() {
                    return true;
                }
                if !matches!(value, Event::MappingStart(..) | Event::SequenceStart(..)) {
                    return false;
                }
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
                        self.found = position(&item_span);
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
