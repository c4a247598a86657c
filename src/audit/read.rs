//! Manifest reading: files, directories and stdin holding multi-document YAML or JSON, `List`
//! kinds, and what `kubectl kustomize` / `helm template` print.
//!
//! Reading streams: [`Reader`] walks the inputs lazily and splits each file into
//! [`Document`]s as it reads (a line at a time for YAML, a value at a time for JSON), so memory
//! holds one document, never a whole file or input; [`Document::entries`] parses one (the part
//! worth spreading over threads). A broken document never stops the rest. Directories are
//! walked in name order, each real file is read once whatever the symlinks that lead to it, and
//! a symlink loop is skipped and reported ([`Item::Skipped`]).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::nesting::{self, TooDeep};
use crate::yaml;

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

/// A path the directory walk left out, and why (a symbolic link loop). Nothing in it is lost:
/// the walk reads what it leads to elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path as walked.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.path, self.reason)
    }
}

/// What the [`Reader`] yields, in input order.
#[derive(Debug)]
pub enum Item {
    /// A document to parse ([`Document::entries`]).
    Document(Document),
    /// A file or document that cannot be read at all.
    Error(ReadError),
    /// A path left out of a directory walk.
    Skipped(Skipped),
}

/// One document of a file, split off but not parsed yet.
#[derive(Debug)]
pub struct Document {
    file: String,
    index: usize,
    /// 1-based line of the file where `body` begins.
    first_line: usize,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// One YAML document's text (its `---` marker line's remainder included).
    Yaml(String),
    /// One JSON value's bytes.
    Json(Vec<u8>),
}

impl Document {
    /// Where the document is (its first content line).
    pub fn location(&self) -> Location {
        let line = match &self.body {
            Body::Yaml(text) => self.first_line + yaml::first_content_line(text).unwrap_or(1) - 1,
            Body::Json(_) => self.first_line,
        };
        Location {
            file: self.file.clone(),
            document_index: Some(self.index),
            item_index: None,
            line: Some(line),
        }
    }

    /// Whether the document's text contains `needle` (a cheap filter before parsing).
    pub fn mentions(&self, needle: &[u8]) -> bool {
        let bytes = match &self.body {
            Body::Yaml(text) => text.as_bytes(),
            Body::Json(bytes) => bytes.as_slice(),
        };
        memchr::memmem::find(bytes, needle).is_some()
    }

    /// Parses the document into its objects (a `List` gives its items), or an error. Deep
    /// nesting is refused before the parser runs (see [`crate::nesting`]).
    pub fn entries(self) -> Vec<Entry> {
        let location = self.location();
        let shift = self.first_line - 1;
        let error = |line: usize, message: String| {
            vec![Entry::Error(ReadError {
                location: Location {
                    line: Some(line),
                    ..location.clone()
                },
                message,
            })]
        };
        let too_deep = |deep: TooDeep| {
            let at = TooDeep {
                line: deep.line + shift,
                ..deep
            };
            error(at.line, at.to_string())
        };
        let value = match &self.body {
            Body::Yaml(text) => match yaml::parse(text) {
                Ok(value) => value,
                Err(e) => {
                    let (line, column) = (e.line + shift, e.column);
                    return error(
                        line,
                        if e.too_deep {
                            format!(
                                "nested deeper than {} levels (at line {line}, column {column}): refused",
                                yaml::MAX_DEPTH
                            )
                        } else {
                            format!("invalid YAML: {} at line {line} column {column}", e.message)
                        },
                    );
                }
            },
            Body::Json(bytes) => {
                if let Err(deep) = nesting::check_json(bytes) {
                    return too_deep(deep);
                }
                match serde_json::from_slice(bytes) {
                    Ok(value) => value,
                    Err(e) => {
                        return error(
                            self.first_line + e.line().saturating_sub(1),
                            shift_lines(&format!("invalid JSON: {e}"), shift),
                        );
                    }
                }
            }
        };
        let mut entries = Vec::new();
        push_document(location, value, &mut entries);
        entries
    }
}

/// Reads every input in order, lazily: files are opened and split as the iteration reaches
/// them. Problems become [`Item::Error`]s; nothing here fails as a whole.
pub struct Reader {
    /// What is left to read, the next on top.
    pending: Vec<Pending>,
    /// Standard input, when it is not the process's own (read a second time, in tests).
    stdin: Option<Box<dyn BufRead + Send>>,
    /// The file being split.
    current: Option<Splitter>,
    /// Every real file and directory read so far (canonical paths).
    seen: HashSet<PathBuf>,
}

enum Pending {
    Stdin,
    Path {
        path: PathBuf,
        /// Named on the command line (read whatever its name), not found by a walk.
        explicit: bool,
        /// The directories being walked above it: (canonical path, path as walked).
        ancestors: std::rc::Rc<Vec<(PathBuf, String)>>,
    },
}

impl Reader {
    /// A reader of `inputs`, in order.
    pub fn new(inputs: &[Input]) -> Reader {
        let pending = inputs
            .iter()
            .rev()
            .map(|input| match input {
                Input::Stdin => Pending::Stdin,
                Input::Path(path) => Pending::Path {
                    path: path.clone(),
                    explicit: true,
                    ancestors: std::rc::Rc::default(),
                },
            })
            .collect();
        Reader {
            pending,
            stdin: None,
            current: None,
            seen: HashSet::new(),
        }
    }

    /// Reads `-` from `stdin` instead of the process's standard input (when given).
    pub fn with_stdin(mut self, stdin: Option<Box<dyn BufRead + Send>>) -> Reader {
        self.stdin = stdin;
        self
    }

    fn open(&mut self, next: Pending) -> Option<Item> {
        match next {
            Pending::Stdin => {
                let stdin: Box<dyn BufRead + Send> = match self.stdin.take() {
                    Some(given) => given,
                    None => Box::new(BufReader::with_capacity(64 * 1024, std::io::stdin())),
                };
                self.current = Some(Splitter::new(STDIN_NAME.to_owned(), stdin));
                None
            }
            Pending::Path {
                path,
                explicit,
                ancestors,
            } => self.open_path(path, explicit, ancestors),
        }
    }

    fn open_path(
        &mut self,
        path: PathBuf,
        explicit: bool,
        ancestors: std::rc::Rc<Vec<(PathBuf, String)>>,
    ) -> Option<Item> {
        let name = path.display().to_string();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => return Some(file_error(&name, format!("cannot read: {e}"))),
        };
        // Symlinks are followed (Kubernetes volumes are made of them); the real path tells
        // loops and second visits apart.
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if meta.is_dir() {
            if let Some((_, walked)) = ancestors.iter().find(|(r, _)| *r == real) {
                return Some(Item::Skipped(Skipped {
                    path: name,
                    reason: format!(
                        "a symbolic link loop (it leads back to {walked}, which contains it)"
                    ),
                }));
            }
            if !self.seen.insert(real.clone()) {
                return None; // Read already, through another path.
            }
            let listing = match std::fs::read_dir(&path) {
                Ok(l) => l,
                Err(e) => return Some(file_error(&name, format!("cannot read directory: {e}"))),
            };
            let mut children: Vec<PathBuf> = Vec::new();
            let mut problem = None;
            for entry in listing {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        problem = Some(file_error(&name, format!("cannot read directory: {e}")));
                        continue;
                    }
                };
                let file_name = entry.file_name();
                let file_name = file_name.to_string_lossy();
                if file_name.starts_with('.') {
                    continue;
                }
                let child = entry.path();
                if child.is_dir() || is_manifest_name(&file_name) {
                    children.push(child);
                }
            }
            children.sort();
            let mut below = (*ancestors).clone();
            below.push((real, name));
            let below = std::rc::Rc::new(below);
            for child in children.into_iter().rev() {
                self.pending.push(Pending::Path {
                    path: child,
                    explicit: false,
                    ancestors: below.clone(),
                });
            }
            return problem;
        }
        if !explicit && !meta.is_file() {
            return None;
        }
        if !self.seen.insert(real) {
            return None; // Read already, through another path.
        }
        match std::fs::File::open(&path) {
            Ok(file) => {
                let reader = BufReader::with_capacity(64 * 1024, file);
                self.current = Some(Splitter::new(name, Box::new(reader)));
                None
            }
            Err(e) => Some(file_error(&name, format!("cannot read: {e}"))),
        }
    }
}

impl Iterator for Reader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(splitter) = &mut self.current {
                match splitter.next() {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            let next = self.pending.pop()?;
            if let Some(item) = self.open(next) {
                return Some(item);
            }
        }
    }
}

/// Reads every input in order and parses every document, on this thread. Problems become
/// [`Entry::Error`]s; nothing here fails as a whole. (`portcullis audit` streams through
/// [`Reader`] instead.)
pub fn read_inputs(inputs: &[Input]) -> Vec<Entry> {
    Reader::new(inputs).flat_map(Item::into_entries).collect()
}

impl Item {
    /// The entries of the item: a document's objects, or its error; none for a skipped path.
    pub fn into_entries(self) -> Vec<Entry> {
        match self {
            Item::Document(d) => d.entries(),
            Item::Error(e) => vec![Entry::Error(e)],
            Item::Skipped(_) => Vec::new(),
        }
    }
}

/// Whether a file found while walking a directory is a manifest by its name.
fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext))
}

fn file_error(file: &str, message: String) -> Item {
    Item::Error(ReadError {
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
    Splitter::of_bytes(file, bytes)
        .flat_map(Item::into_entries)
        .collect()
}

/// Reads the objects of one file's text (YAML or JSON, possibly several documents).
pub fn read_str(file: &str, text: &str) -> Vec<Entry> {
    read_bytes(file, text.as_bytes())
}

/// What the splitter is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing read yet: BOM, then JSON or YAML by the first character.
    Start,
    /// JSON values, one after the other.
    Json,
    /// YAML documents split at `---` lines.
    Yaml,
    Done,
}

/// Splits one file (or stdin) into documents as it reads: YAML at `---` lines (column 0, as
/// kubectl does; text after `---` on the same line stays with the document, `...` ends one),
/// JSON value by value (`kubectl get -o json` per object, concatenated). A file whose first
/// character is `{` or `[` is JSON when its first value parses as JSON, YAML otherwise (a
/// flow mapping).
pub struct Splitter {
    file: String,
    reader: Box<dyn BufRead + Send>,
    mode: Mode,
    /// Documents with content so far.
    index: usize,
    /// 1-based line of the next byte to read.
    line: usize,
    /// Byte offset of the next byte to read.
    offset: usize,
    /// The YAML documents, once the input is known to be YAML.
    yaml: Option<yaml::Documents<Box<dyn BufRead + Send>>>,
}

impl Splitter {
    /// A splitter of one file's bytes, named `file` in locations.
    pub fn of_bytes(file: &str, bytes: &[u8]) -> Splitter {
        Splitter::new(file.to_owned(), Box::new(Cursor::new(bytes.to_vec())))
    }

    fn new(file: String, reader: Box<dyn BufRead + Send>) -> Splitter {
        Splitter {
            file,
            reader,
            mode: Mode::Start,
            index: 0,
            line: 1,
            offset: 0,
            yaml: None,
        }
    }

    fn error(&self, index: Option<usize>, line: Option<usize>, message: String) -> Item {
        Item::Error(ReadError {
            location: Location {
                file: self.file.clone(),
                document_index: index,
                item_index: None,
                line,
            },
            message,
        })
    }

    fn read_error(&mut self, e: &std::io::Error) -> Item {
        self.mode = Mode::Done;
        self.error(None, None, format!("cannot read: {e}"))
    }

    /// BOM, then the first non-blank byte decides JSON or YAML.
    fn start(&mut self) -> Option<Item> {
        let (utf16, bom) = match self.reader.fill_buf() {
            Ok(head) => (
                head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]),
                head.starts_with(&[0xEF, 0xBB, 0xBF]),
            ),
            Err(e) => return Some(self.read_error(&e)),
        };
        if utf16 {
            self.mode = Mode::Done;
            return Some(self.error(
                None,
                Some(1),
                "not UTF-8 text: the file is UTF-16 encoded; convert it (e.g. `iconv -f UTF-16 -t UTF-8`)"
                    .to_owned(),
            ));
        }
        if bom {
            self.reader.consume(3);
            self.offset = 3;
        }
        // Leading blank space, kept for the YAML reader if it comes to that.
        let mut blank = Vec::new();
        let first = loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Some(self.read_error(&e)),
            };
            if buf.is_empty() {
                break None;
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            blank.extend_from_slice(&buf[..n]);
            let found = buf.get(n).copied();
            self.reader.consume(n);
            if found.is_some() {
                break found;
            }
        };
        if !matches!(first, Some(b'{' | b'[')) {
            self.yaml(blank, Vec::new());
            return None;
        }
        let start_line = self.line + count_lines(&blank);
        let value = match self.json_value() {
            Ok(v) => v,
            Err(e) => return Some(self.read_error(&e)),
        };
        // JSON when the first value reads as JSON (or is too deep to tell: refused either way).
        let is_json = nesting::check_json(&value).is_err()
            || serde_json::from_slice::<serde::de::IgnoredAny>(&value).is_ok();
        if !is_json {
            self.yaml(blank, value);
            return None;
        }
        self.mode = Mode::Json;
        self.line = start_line + count_lines(&value);
        self.offset += blank.len() + value.len();
        self.index = 1;
        Some(Item::Document(Document {
            file: self.file.clone(),
            index: 1,
            first_line: start_line,
            body: Body::Json(value),
        }))
    }

    /// Reads on as YAML, from `blank` and `value` (read while deciding) on.
    fn yaml(&mut self, mut blank: Vec<u8>, value: Vec<u8>) {
        self.mode = Mode::Yaml;
        blank.extend_from_slice(&value);
        let rest = std::mem::replace(&mut self.reader, Box::new(std::io::empty()));
        let all: Box<dyn BufRead + Send> = Box::new(Cursor::new(blank).chain(rest));
        self.yaml = Some(yaml::Documents::new(all, self.line, self.offset));
    }

    /// The bytes of the next JSON value, from its first byte (blank space before it already
    /// skipped): an object or array to its matching bracket, a string to its closing quote,
    /// anything else to the next blank, bracket, comma or quote (at least one byte). Empty at
    /// the end of the input. Nesting is only counted here, never limited: the parse refuses
    /// deep values ([`Document::entries`]).
    fn json_value(&mut self) -> std::io::Result<Vec<u8>> {
        #[derive(PartialEq)]
        enum Kind {
            Container,
            String,
            Scalar,
        }
        let mut value: Vec<u8> = Vec::new();
        let mut kind = None;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(value);
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                let Some(kind) = kind.as_ref() else {
                    kind = Some(match b {
                        b'{' | b'[' => {
                            depth = 1;
                            Kind::Container
                        }
                        b'"' => {
                            in_string = true;
                            Kind::String
                        }
                        _ => Kind::Scalar,
                    });
                    continue;
                };
                if *kind == Kind::Scalar {
                    if b.is_ascii_whitespace()
                        || matches!(b, b'[' | b'{' | b']' | b'}' | b',' | b'"')
                    {
                        end = Some(i);
                        break;
                    }
                    continue;
                }
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if *kind == Kind::String {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            match end {
                Some(n) => {
                    value.extend_from_slice(&buf[..n]);
                    self.reader.consume(n);
                    return Ok(value);
                }
                None => {
                    let n = buf.len();
                    value.extend_from_slice(buf);
                    self.reader.consume(n);
                }
            }
        }
    }

    /// The next JSON value, or the end.
    fn next_json(&mut self) -> Option<Item> {
        // Blank space between values.
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Some(self.read_error(&e)),
            };
            if buf.is_empty() {
                self.mode = Mode::Done;
                return None;
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.line += count_lines(&buf[..n]);
            self.offset += n;
            let more = n == buf.len();
            self.reader.consume(n);
            if !more {
                break;
            }
        }
        let start_line = self.line;
        let value = match self.json_value() {
            Ok(v) => v,
            Err(e) => return Some(self.read_error(&e)),
        };
        self.line += count_lines(&value);
        self.offset += value.len();
        self.index += 1;
        if !matches!(value.first(), Some(b'{' | b'[')) {
            // A scalar between values: fine if it is JSON (reported as "not a Kubernetes
            // object"); otherwise the rest of the file is not JSON, and is not read on.
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&value) {
                self.mode = Mode::Done;
                return Some(self.error(
                    Some(self.index),
                    Some(start_line + e.line().saturating_sub(1)),
                    shift_lines(&format!("invalid JSON: {e}"), start_line - 1),
                ));
            }
        }
        Some(Item::Document(Document {
            file: self.file.clone(),
            index: self.index,
            first_line: start_line,
            body: Body::Json(value),
        }))
    }

    /// The next YAML document with content, or the end.
    fn next_yaml(&mut self) -> Option<Item> {
        loop {
            match self.yaml.as_mut()?.next() {
                None => {
                    self.mode = Mode::Done;
                    return None;
                }
                Some(Err(e)) => return Some(self.read_error(&e)),
                Some(Ok(split)) => {
                    if let Some(item) = self.finish_yaml(split) {
                        return Some(item);
                    }
                }
            }
        }
    }

    /// A finished YAML document: `None` when it has no content.
    fn finish_yaml(&mut self, split: yaml::Split) -> Option<Item> {
        let yaml::Split {
            bytes,
            first_line,
            offset,
        } = split;
        match String::from_utf8(bytes) {
            Ok(text) => {
                if !yaml::has_content(&text) {
                    return None;
                }
                self.index += 1;
                Some(Item::Document(Document {
                    file: self.file.clone(),
                    index: self.index,
                    first_line,
                    body: Body::Yaml(text),
                }))
            }
            Err(e) => {
                self.index += 1;
                let bytes = e.as_bytes();
                let valid = e.utf8_error().valid_up_to();
                let line = first_line + count_lines(&bytes[..valid]);
                Some(self.error(
                    Some(self.index),
                    Some(line),
                    format!(
                        "not UTF-8 text: invalid byte 0x{:02X} at offset {}",
                        bytes[valid],
                        offset + valid
                    ),
                ))
            }
        }
    }
}

impl Iterator for Splitter {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            match self.mode {
                Mode::Start => {
                    if let Some(item) = self.start() {
                        return Some(item);
                    }
                }
                Mode::Json => return self.next_json(),
                Mode::Yaml => return self.next_yaml(),
                Mode::Done => return None,
            }
        }
    }
}

fn count_lines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
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

    #[cfg(unix)]
    fn symlink(target: &str, link: &std::path::Path) {
        std::os::unix::fs::symlink(target, link).expect("symlink");
    }

    fn split_items(items: Vec<Item>) -> (Vec<Entry>, Vec<Skipped>) {
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for item in items {
            match item {
                Item::Skipped(s) => skipped.push(s),
                other => entries.extend(other.into_entries()),
            }
        }
        (entries, skipped)
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end_and_are_reported() {
        // `ln -s . a; ln -s . b`: the walk used to go on until killed.
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("app.yaml"), CM).expect("test setup");
        symlink(".", &d.join("a"));
        symlink(".", &d.join("b"));
        let (entries, skipped) =
            split_items(Reader::new(&[Input::Path(d.to_path_buf())]).collect());
        assert_eq!(names(&entries), ["ConfigMap/a"]);
        let paths: Vec<String> = skipped.iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            [
                d.join("a").display().to_string(),
                d.join("b").display().to_string()
            ]
        );
        assert_eq!(
            skipped[0].to_string(),
            format!(
                "skipped {}: a symbolic link loop (it leads back to {}, which contains it)",
                d.join("a").display(),
                d.display()
            )
        );

        // `mkdir -p d/a; ln -s ../a d/a/b`: every manifest below counted once, not 41 times.
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().join("d");
        std::fs::create_dir_all(d.join("a")).expect("test setup");
        std::fs::write(d.join("a/app.yaml"), CM).expect("test setup");
        symlink("../a", &d.join("a/b"));
        let (entries, skipped) = split_items(Reader::new(&[Input::Path(d.clone())]).collect());
        assert_eq!(names(&entries), ["ConfigMap/a"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].path, d.join("a/b").display().to_string());
    }

    #[cfg(unix)]
    #[test]
    fn each_real_file_is_read_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("shared")).expect("test setup");
        std::fs::create_dir_all(d.join("team")).expect("test setup");
        std::fs::write(d.join("shared/app.yaml"), CM).expect("test setup");
        symlink("../shared", &d.join("team/shared"));
        symlink("shared/app.yaml", &d.join("z-link.yaml"));
        let inputs = [
            Input::Path(d.to_path_buf()),
            Input::Path(d.join("shared/app.yaml")),
        ];
        let (entries, skipped) = split_items(Reader::new(&inputs).collect());
        assert_eq!(names(&entries), ["ConfigMap/a"], "{entries:?}");
        assert!(skipped.is_empty(), "{skipped:?}");
        let objs = objects(&entries);
        assert_eq!(
            objs[0].0.file,
            d.join("shared/app.yaml").display().to_string()
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_yaml = format!("{}x\n", "- ".repeat(100_000));
        for (file, text, line) in [
            (
                "deep.json",
                format!("{CM_JSON}\n{deep_json}\n{CM_JSON}\n"),
                2,
            ),
            ("deep.yaml", format!("{CM}---\n{deep_yaml}---\n{CM}"), 6),
            (
                "flow.yaml",
                format!("{CM}---\nitems: {deep_json}\n---\n{CM}"),
                6,
            ),
        ] {
            let entries = read_str(file, &text);
            assert_eq!(names(&entries), ["ConfigMap/a", "ConfigMap/a"], "{file}");
            let errs = errors(&entries);
            assert_eq!(errs.len(), 1, "{file}");
            assert_eq!(errs[0].location.document_index, Some(2), "{file}");
            assert_eq!(errs[0].location.line, Some(line), "{file}");
            assert!(
                errs[0].message.starts_with(&format!(
                    "nested deeper than 128 levels (at line {line}, column "
                )),
                "{file}: {}",
                errs[0].message
            );
        }
    }

    const CM_JSON: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;

    #[test]
    fn json_values_are_split_one_by_one() {
        // A broken value does not hide the next one; a string may hold brackets.
        let text = format!(
            "{CM_JSON}\n{{\"kind\": }}\n{}\n  42 \"s\"{}",
            CM_JSON.replace("\"a\"", "\"b]}\\\"\""),
            CM_JSON
        );
        let entries = read_str("s.json", &text);
        assert_eq!(
            names(&entries),
            ["ConfigMap/a", "ConfigMap/b]}\"", "ConfigMap/a"]
        );
        let errs = errors(&entries);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(
            (errs[0].location.document_index, errs[0].location.line),
            (Some(2), Some(2))
        );
        assert!(
            errs[0].message.contains("at line 2 column"),
            "{}",
            errs[0].message
        );
        assert!(
            errs[1].message.contains("found a number"),
            "{}",
            errs[1].message
        );
        assert_eq!(errs[1].location.line, Some(4));
        assert!(
            errs[2].message.contains("found a string"),
            "{}",
            errs[2].message
        );
        // YAML after JSON: the rest is not JSON, and is reported once.
        let text = format!("{CM_JSON}\n---\n{CM}");
        let entries = read_str("mixed.json", &text);
        assert_eq!(names(&entries), ["ConfigMap/a"]);
        let errs = errors(&entries);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].location.line, Some(2));
    }

    #[test]
    fn documents_are_read_as_the_reader_goes() {
        // A reader that fails after the first document: what came before is yielded first.
        struct Failing(Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other("disk on fire")),
                    n => Ok(n),
                }
            }
        }
        let text = format!("{CM}---\n{CM}---\n");
        let reader = BufReader::with_capacity(16, Failing(Cursor::new(text.into_bytes())));
        let items: Vec<Item> = Splitter::new("f.yaml".to_owned(), Box::new(reader)).collect();
        let entries: Vec<Entry> = items.into_iter().flat_map(Item::into_entries).collect();
        assert_eq!(names(&entries), ["ConfigMap/a", "ConfigMap/a"]);
        assert_eq!(errors(&entries)[0].message, "cannot read: disk on fire");
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
