//! JSON as the engine reads it. [`Json`] is a borrowed view of a value held either in a
//! [`Document`] — a request body parsed once with simd-json into a compact tape (one node per
//! value, strings copied once into one buffer, no map per object) — or in a
//! `serde_json::Value` (manifests, policies, test cases). Both read the same.

use std::cell::RefCell;

use serde_json::{Map, Value};

/// serde_json's nesting limit: a document nested this deep or deeper is refused (serde_json
/// stops at its recursion limit of 128), so a [`Document`] refuses it too.
pub const MAX_DEPTH: usize = 128;

/// Objects with more keys than this are checked for repeated keys by sorting, smaller ones
/// key by key.
const SMALL_OBJECT: usize = 16;

/// Bodies up to this size leave their parse buffers behind for the next body on the same
/// thread; the buffers of a larger one are freed.
const KEEP_BUFFERS_UP_TO: usize = 256 * 1024;

/// Why bytes are not a [`Document`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or nested [`MAX_DEPTH`] deep or deeper (simd-json's reason).
    #[error("not JSON: {0}")]
    Syntax(#[source] simd_json::Error),
    /// An object repeats a key.
    #[error("duplicate field `{0}`")]
    DuplicateKey(String),
    /// Larger than 4 GiB (the tape counts in 32 bits).
    #[error("document too large")]
    TooLarge,
}

/// One value of a [`Document`]. Containers are followed by their contents (an object's keys
/// and values alternate) and know how many nodes those take.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    /// `text[start..end]`.
    String {
        start: u32,
        end: u32,
    },
    /// `len` elements in the next `count` nodes.
    Array {
        len: u32,
        count: u32,
    },
    /// `len` key/value pairs in the next `count` nodes.
    Object {
        len: u32,
        count: u32,
    },
}

impl Node {
    /// How many nodes the value starting with this node takes, itself included.
    fn size(self) -> usize {
        match self {
            Node::Array { count, .. } | Node::Object { count, .. } => count as usize + 1,
            _ => 1,
        }
    }
}

/// A JSON document parsed once: its values as a flat tape of nodes and its strings (unescaped)
/// in one buffer. Read it through [`Document::root`].
#[derive(Debug, Clone, Default)]
pub struct Document {
    text: String,
    nodes: Vec<Node>,
}

/// An object key in the text, with a digest of its length and a few of its bytes: two keys with
/// different digests differ, so most comparisons are one of integers.
struct Key {
    digest: u64,
    start: u32,
    end: u32,
}

impl Key {
    fn new(text: &[u8], start: u32, end: u32) -> Key {
        let bytes = &text[start as usize..end as usize];
        let byte = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
        let n = bytes.len();
        let digest = (n as u64 & 0xffff)
            | byte(0) << 16
            | byte(1) << 24
            | byte(n.wrapping_sub(2)) << 32
            | byte(n.wrapping_sub(1)) << 40
            | byte(n / 2) << 48;
        Key { digest, start, end }
    }

    fn bytes<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        &text[self.start as usize..self.end as usize]
    }

    fn same(&self, other: &Key, text: &[u8]) -> bool {
        self.digest == other.digest && self.bytes(text) == other.bytes(text)
    }
}

/// simd-json's working memory, kept per thread between documents.
struct Scratch {
    input: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: Vec<simd_json::Node<'static>>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

impl Document {
    /// Parses `bytes`: RFC 8259 JSON in UTF-8, refused when nested [`MAX_DEPTH`] deep or when
    /// an object repeats a key. It refuses every body serde_json refuses (and a few more:
    /// integers beyond 64 bits).
    pub fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
        u32::try_from(bytes.len()).map_err(|_| ParseError::TooLarge)?;
        SCRATCH.with(|cell| {
            let mut slot = cell.borrow_mut();
            let mut scratch = slot.take().unwrap_or_else(|| Scratch {
                input: Vec::new(),
                // simd-json counts the containers open around the one it opens.
                buffers: simd_json::Buffers::with_max_depth(bytes.len(), MAX_DEPTH - 1),
                tape: Vec::new(),
            });
            let parsed = Self::parse_with(bytes, &mut scratch);
            if bytes.len() <= KEEP_BUFFERS_UP_TO {
                *slot = Some(scratch);
            }
            parsed
        })
    }

    fn parse_with(bytes: &[u8], scratch: &mut Scratch) -> Result<Document, ParseError> {
        let Scratch {
            input,
            buffers,
            tape,
        } = scratch;
        // simd-json reads in blocks past the end and unescapes strings in place: it gets a
        // padded copy of the body.
        input.clear();
        input.extend_from_slice(bytes);
        input.resize(bytes.len() + simd_json::INPUT_PADDING, b' ');
        let mut nodes = simd_json::Tape(std::mem::take(tape));
        let parsed = simd_json::fill_tape_padded(input, bytes.len(), buffers, &mut nodes)
            .map_err(ParseError::Syntax)
            .and_then(|()| Document::from_tape(&nodes.0, bytes.len()));
        *tape = nodes.reset().0;
        parsed
    }

    /// The document of a simd-json tape (the same layout: each container followed by its
    /// contents; simd-json refused deep nesting), refusing repeated keys.
    fn from_tape(tape: &[simd_json::Node<'_>], text_len: usize) -> Result<Document, ParseError> {
        use simd_json::StaticNode;
        let mut doc = Document {
            text: String::with_capacity(text_len),
            nodes: Vec::with_capacity(tape.len()),
        };
        for node in tape {
            let node = match *node {
                simd_json::Node::String(s) => {
                    let (start, end) = doc.push_str(s);
                    Node::String { start, end }
                }
                // Every node takes at least one byte of the input, which is shorter than
                // 4 GiB: lengths and counts fit in 32 bits.
                simd_json::Node::Object { len, count } => Node::Object {
                    len: len as u32,
                    count: count as u32,
                },
                simd_json::Node::Array { len, count } => Node::Array {
                    len: len as u32,
                    count: count as u32,
                },
                simd_json::Node::Static(StaticNode::Null) => Node::Null,
                simd_json::Node::Static(StaticNode::Bool(b)) => Node::Bool(b),
                simd_json::Node::Static(StaticNode::I64(n)) => Node::I64(n),
                simd_json::Node::Static(StaticNode::U64(n)) => Node::U64(n),
                simd_json::Node::Static(StaticNode::F64(n)) => Node::F64(n),
            };
            doc.nodes.push(node);
        }
        doc.check_keys()?;
        Ok(doc)
    }

    /// Refuses an object that repeats a key (or a tape that is not well formed).
    fn check_keys(&self) -> Result<(), ParseError> {
        let malformed = || ParseError::Syntax(simd_json::Error::generic(simd_json::ErrorType::Eof));
        let text = self.text.as_bytes();
        let mut keys: Vec<Key> = Vec::new();
        for (at, node) in self.nodes.iter().enumerate() {
            let Node::Object { len, count } = *node else {
                continue;
            };
            let end = at + count as usize + 1;
            keys.clear();
            let mut key_at = at + 1;
            for _ in 0..len {
                let Some(&Node::String {
                    start,
                    end: key_end,
                }) = self.nodes.get(key_at)
                else {
                    return Err(malformed());
                };
                let key = Key::new(text, start, key_end);
                // Small objects are checked key by key, large ones by sorting.
                if len as usize <= SMALL_OBJECT && keys.iter().any(|k| k.same(&key, text)) {
                    return Err(self.duplicate(key.bytes(text)));
                }
                keys.push(key);
                key_at += 1 + self.nodes.get(key_at + 1).ok_or_else(malformed)?.size();
            }
            if key_at != end {
                return Err(malformed());
            }
            if len as usize > SMALL_OBJECT {
                keys.sort_unstable_by(|a, b| a.bytes(text).cmp(b.bytes(text)));
                if let Some(w) = keys.windows(2).find(|w| w[0].same(&w[1], text)) {
                    return Err(self.duplicate(w[0].bytes(text)));
                }
            }
        }
        Ok(())
    }

    fn duplicate(&self, key: &[u8]) -> ParseError {
        ParseError::DuplicateKey(String::from_utf8_lossy(key).into_owned())
    }

    /// Copies `s` into the text buffer; where it is there.
    fn push_str(&mut self, s: &str) -> (u32, u32) {
        let start = self.text.len();
        self.text.push_str(s);
        // The text is at most as long as the parsed input, which fits in 32 bits.
        (start as u32, self.text.len() as u32)
    }

    /// The document's top-level value.
    pub fn root(&self) -> Json<'_> {
        Json::Doc(DocValue { doc: self, at: 0 })
    }

    fn str_at(&self, start: u32, end: u32) -> &str {
        &self.text[start as usize..end as usize]
    }
}

/// A value inside a [`Document`].
#[derive(Clone, Copy)]
pub struct DocValue<'a> {
    doc: &'a Document,
    at: usize,
}

impl<'a> DocValue<'a> {
    fn node(self) -> Node {
        self.doc.nodes.get(self.at).copied().unwrap_or(Node::Null)
    }
}

/// A JSON value, borrowed from a [`Document`] or from a `serde_json::Value`.
#[derive(Clone, Copy)]
pub enum Json<'a> {
    /// A value of a parsed [`Document`].
    Doc(DocValue<'a>),
    /// A `serde_json::Value`.
    Value(&'a Value),
}

impl std::fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

impl<'a> From<&'a Value> for Json<'a> {
    fn from(v: &'a Value) -> Json<'a> {
        Json::Value(v)
    }
}

impl<'a> Json<'a> {
    /// The value of `key` when this is an object that has it.
    pub fn get(self, key: &str) -> Option<Json<'a>> {
        self.as_object()?.get(key)
    }

    /// The value at a JSON Pointer (RFC 6901) below this one, as `serde_json::Value::pointer`
    /// finds it.
    pub fn pointer(self, pointer: &str) -> Option<Json<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let tokens = pointer.strip_prefix('/')?;
        tokens.split('/').try_fold(self, |at, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            match at.as_array() {
                Some(array) => {
                    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
                        return None;
                    }
                    array.iter().nth(token.parse().ok()?)
                }
                None => at.get(&token),
            }
        })
    }

    /// The string, when this is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Json::Doc(d) => match d.node() {
                Node::String { start, end } => Some(d.doc.str_at(start, end)),
                _ => None,
            },
            Json::Value(v) => v.as_str(),
        }
    }

    /// The boolean, when this is one.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Json::Doc(d) => match d.node() {
                Node::Bool(b) => Some(b),
                _ => None,
            },
            Json::Value(v) => v.as_bool(),
        }
    }

    /// The number, when this is one.
    pub fn as_number(self) -> Option<serde_json::Number> {
        match self {
            Json::Doc(d) => match d.node() {
                Node::I64(n) => Some(n.into()),
                Node::U64(n) => Some(n.into()),
                Node::F64(n) => serde_json::Number::from_f64(n),
                _ => None,
            },
            Json::Value(Value::Number(n)) => Some(n.clone()),
            Json::Value(_) => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(self) -> bool {
        match self {
            Json::Doc(d) => d.node() == Node::Null,
            Json::Value(v) => v.is_null(),
        }
    }

    /// Whether this is a number.
    pub fn is_number(self) -> bool {
        match self {
            Json::Doc(d) => matches!(d.node(), Node::I64(_) | Node::U64(_) | Node::F64(_)),
            Json::Value(v) => v.is_number(),
        }
    }

    /// Whether this is an object.
    pub fn is_object(self) -> bool {
        self.as_object().is_some()
    }

    /// Whether this is an array.
    pub fn is_array(self) -> bool {
        self.as_array().is_some()
    }

    /// The object, when this is one.
    pub fn as_object(self) -> Option<Object<'a>> {
        match self {
            Json::Doc(d) => match d.node() {
                Node::Object { .. } => Some(Object::Doc(d)),
                _ => None,
            },
            Json::Value(v) => v.as_object().map(Object::Value),
        }
    }

    /// The array, when this is one.
    pub fn as_array(self) -> Option<Array<'a>> {
        match self {
            Json::Doc(d) => match d.node() {
                Node::Array { .. } => Some(Array::Doc(d)),
                _ => None,
            },
            Json::Value(v) => v.as_array().map(|a| Array::Value(a)),
        }
    }

    /// A `serde_json::Value` with the same content (a copy).
    pub fn to_value(self) -> Value {
        match self {
            Json::Value(v) => v.clone(),
            Json::Doc(d) => match d.node() {
                Node::Null => Value::Null,
                Node::Bool(b) => Value::Bool(b),
                Node::I64(_) | Node::U64(_) | Node::F64(_) => {
                    self.as_number().map_or(Value::Null, Value::Number)
                }
                Node::String { start, end } => Value::String(d.doc.str_at(start, end).to_owned()),
                Node::Array { .. } => {
                    Value::Array(Array::Doc(d).iter().map(Json::to_value).collect())
                }
                Node::Object { .. } => Value::Object(
                    Object::Doc(d)
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_value()))
                        .collect(),
                ),
            },
        }
    }
}

/// A JSON object, borrowed.
#[derive(Clone, Copy)]
pub enum Object<'a> {
    /// An object of a [`Document`].
    Doc(DocValue<'a>),
    /// A `serde_json` map.
    Value(&'a Map<String, Value>),
}

impl std::fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> From<&'a Map<String, Value>> for Object<'a> {
    fn from(m: &'a Map<String, Value>) -> Object<'a> {
        Object::Value(m)
    }
}

impl<'a> Object<'a> {
    /// The value of `key`.
    pub fn get(self, key: &str) -> Option<Json<'a>> {
        match self {
            Object::Value(m) => m.get(key).map(Json::Value),
            Object::Doc(d) => {
                let Node::Object { len, .. } = d.node() else {
                    return None;
                };
                let nodes = &d.doc.nodes;
                let mut at = d.at + 1;
                for _ in 0..len {
                    let Node::String { start, end } = nodes[at] else {
                        return None;
                    };
                    if d.doc.text.as_bytes()[start as usize..end as usize] == *key.as_bytes() {
                        return Some(Json::Doc(DocValue {
                            doc: d.doc,
                            at: at + 1,
                        }));
                    }
                    at += 1 + nodes[at + 1].size();
                }
                None
            }
        }
    }

    /// Whether the object has `key`.
    pub fn contains_key(self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of keys.
    pub fn len(self) -> usize {
        match self {
            Object::Value(m) => m.len(),
            Object::Doc(d) => match d.node() {
                Node::Object { len, .. } => len as usize,
                _ => 0,
            },
        }
    }

    /// Whether the object has no keys.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The keys and values, in the order they were written.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, Json<'a>)> + 'a {
        let (mut doc, mut map) = match self {
            Object::Doc(d) => (Some((d, d.at + 1)), None),
            Object::Value(m) => (None, Some(m.iter())),
        };
        let mut left = self.len();
        std::iter::from_fn(move || {
            if let Some(m) = map.as_mut() {
                return m.next().map(|(k, v)| (k.as_str(), Json::Value(v)));
            }
            let (d, at) = doc.as_mut()?;
            if left == 0 {
                return None;
            }
            left -= 1;
            let Node::String { start, end } = d.doc.nodes[*at] else {
                return None;
            };
            let value = DocValue {
                doc: d.doc,
                at: *at + 1,
            };
            *at += 1 + value.node().size();
            Some((d.doc.str_at(start, end), Json::Doc(value)))
        })
    }
}

/// A JSON array, borrowed.
#[derive(Clone, Copy)]
pub enum Array<'a> {
    /// An array of a [`Document`].
    Doc(DocValue<'a>),
    /// A `serde_json` array.
    Value(&'a [Value]),
}

impl<'a> Array<'a> {
    /// The number of elements.
    pub fn len(self) -> usize {
        match self {
            Array::Value(a) => a.len(),
            Array::Doc(d) => match d.node() {
                Node::Array { len, .. } => len as usize,
                _ => 0,
            },
        }
    }

    /// Whether the array is empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The elements, in order.
    pub fn iter(self) -> impl Iterator<Item = Json<'a>> + 'a {
        let (mut doc, mut values) = match self {
            Array::Doc(d) => (Some((d, d.at + 1)), None),
            Array::Value(a) => (None, Some(a.iter())),
        };
        let mut left = self.len();
        std::iter::from_fn(move || {
            if let Some(v) = values.as_mut() {
                return v.next().map(Json::Value);
            }
            let (d, at) = doc.as_mut()?;
            if left == 0 {
                return None;
            }
            left -= 1;
            let value = DocValue {
                doc: d.doc,
                at: *at,
            };
            *at += value.node().size();
            Some(Json::Doc(value))
        })
    }
}

/// A JSON value of the policy set that the engine's patches add as it is (a sidecar
/// container, a volume): shared with each patch, not copied, serialized once, and parsed once
/// into a [`Document`] for the engine's reads.
#[derive(Clone)]
pub struct SharedValue(std::sync::Arc<Shared>);

struct Shared {
    value: Value,
    json: String,
    /// `None` only for a value nested too deep for a [`Document`].
    doc: Option<Document>,
}

impl SharedValue {
    /// Shares `value`, serialized and parsed once.
    pub fn new(value: Value) -> SharedValue {
        let json = value.to_string();
        let doc = Document::parse(json.as_bytes()).ok();
        SharedValue(std::sync::Arc::new(Shared { value, json, doc }))
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.0.value
    }

    /// The value as compact JSON, as serde_json writes it.
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// The value to read (from its [`Document`]: lookups without hashing).
    pub fn view(&self) -> Json<'_> {
        match &self.0.doc {
            Some(doc) => doc.root(),
            None => Json::Value(&self.0.value),
        }
    }
}

impl std::ops::Deref for SharedValue {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::fmt::Debug for SharedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl serde::Serialize for SharedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl PartialEq for SharedValue {
    fn eq(&self, other: &SharedValue) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.value() == other.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(text.as_bytes()).expect(text)
    }

    #[test]
    fn reads_like_serde_json() {
        let text =
            r#"{"a": {"b": [1, -2, 2.5, "x\"y\u00e9", null, true, {"c": []}]}, "d": "", "e": {}}"#;
        let d = doc(text);
        let value: Value = serde_json::from_str(text).expect("json");
        for json in [d.root(), Json::Value(&value)] {
            assert_eq!(json.to_value(), value);
            let b = json.get("a").and_then(|a| a.get("b")).expect("a.b");
            let items: Vec<Json<'_>> = b.as_array().expect("array").iter().collect();
            assert_eq!(items.len(), 7);
            assert_eq!(items[3].as_str(), Some("x\"yé"));
            assert!(items[0].is_number() && items[2].is_number());
            assert!(items[4].is_null());
            assert_eq!(items[5].as_bool(), Some(true));
            assert!(items[6].get("c").is_some_and(|c| c.is_array()));
            assert_eq!(json.get("d").and_then(Json::as_str), Some(""));
            assert!(
                json.get("e")
                    .is_some_and(|e| e.as_object().is_some_and(Object::is_empty))
            );
            assert!(json.get("z").is_none() && b.get("a").is_none());
            for pointer in [
                "", "/a/b/3", "/a/b/6/c", "/a/b/01", "/a/b/7", "/d", "/x", "a",
            ] {
                assert_eq!(
                    json.pointer(pointer).map(Json::to_value),
                    value.pointer(pointer).cloned(),
                    "{pointer}"
                );
            }
            let keys: Vec<&str> = json
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(keys, ["a", "d", "e"]);
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases = [
            String::new(),
            " ".into(),
            "{".into(),
            r#"{"a":1,}"#.into(),
            r#"{"a":"\ud800"}"#.into(),
            "{\"a\":\"\x01\"}".into(),
            r#"{"a":1e400}"#.into(),
            r#"{"a":01}"#.into(),
            "{} x".into(),
            deep(MAX_DEPTH),
            deep(100_000),
            format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH)),
        ];
        for text in cases {
            assert!(serde_json::from_str::<Value>(&text).is_err());
            assert!(Document::parse(text.as_bytes()).is_err(), "{text:.40}");
        }
        assert!(Document::parse(deep(MAX_DEPTH - 1).as_bytes()).is_ok());
        assert!(Document::parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn refuses_repeated_keys_in_small_and_large_objects() {
        for text in [
            r#"{"a": 1, "a": 2}"#.to_owned(),
            r#"{"x": {"a": 1, "b": 2, "\u0061": 3}}"#.to_owned(),
            format!(
                "{{{}, \"k7\": 0}}",
                (0..40)
                    .map(|i| format!("\"k{i}\": {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ] {
            assert!(
                matches!(
                    Document::parse(text.as_bytes()),
                    Err(ParseError::DuplicateKey(_))
                ),
                "{text}"
            );
        }
        let many = format!(
            "{{{}}}",
            (0..40)
                .map(|i| format!("\"k{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(doc(&many).root().as_object().map(Object::len), Some(40));
    }
}
