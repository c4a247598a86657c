//! The engine's JSON Patch (RFC 6902): `add` operations whose paths are JSON Pointers built
//! from tokens (escaping `~` and `/`), parents created when absent. The values a policy
//! injects (a sidecar container, its volumes and mounts) are shared with the policy set,
//! not copied into each patch, and written as the policy set serialized them once.
//!
//! [`Patch::to_json_patch`] gives the same patch as json-patch's types (to apply it);
//! [`Patch::to_json`] writes exactly the bytes serde_json writes for those (a test checks).

use serde::ser::{SerializeMap as _, SerializeSeq as _};
use serde_json::Value;

pub use crate::json::SharedValue;

/// The value of an `add` operation.
#[derive(Debug, Clone)]
pub enum PatchValue {
    /// A value of the policy set (a sidecar container, a volume, a mount).
    Shared(SharedValue),
    /// An array of values of the policy set (an absent array created with them).
    Array(Vec<SharedValue>),
    /// A value built for this request (label values, label maps).
    Owned(Value),
}

impl PatchValue {
    /// A copy as one `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        match self {
            PatchValue::Shared(v) => v.value().clone(),
            PatchValue::Array(items) => {
                Value::Array(items.iter().map(|v| v.value().clone()).collect())
            }
            PatchValue::Owned(v) => v.clone(),
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            PatchValue::Shared(v) => out.extend_from_slice(v.json().as_bytes()),
            PatchValue::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(v.json().as_bytes());
                }
                out.push(b']');
            }
            PatchValue::Owned(v) => serde_json::to_writer(out, v)?,
        }
        Ok(())
    }
}

impl PartialEq for PatchValue {
    fn eq(&self, other: &PatchValue) -> bool {
        match (self, other) {
            (PatchValue::Shared(a), PatchValue::Shared(b)) => a == b,
            (PatchValue::Array(a), PatchValue::Array(b)) => a == b,
            (PatchValue::Owned(a), PatchValue::Owned(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }
}

impl serde::Serialize for PatchValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PatchValue::Shared(v) => v.value().serialize(serializer),
            PatchValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v.value())?;
                }
                seq.end()
            }
            PatchValue::Owned(v) => v.serialize(serializer),
        }
    }
}

/// An `add` operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// Where: a JSON Pointer, tokens escaped (`/metadata/labels/app.kubernetes.io~1name`).
    pub path: String,
    /// What.
    pub value: PatchValue,
}

impl PatchOp {
    /// The operation as json-patch's type.
    pub fn to_json_patch(&self) -> json_patch::PatchOperation {
        json_patch::PatchOperation::Add(json_patch::AddOperation {
            // The tokens back from their escaped form (RFC 6901: `~1` then `~0`).
            path: json_patch::jsonptr::PointerBuf::from_tokens(
                self.path.split('/').skip(1).map(|t| {
                    json_patch::jsonptr::Token::new(t.replace("~1", "/").replace("~0", "~"))
                }),
            ),
            value: self.value.to_value(),
        })
    }
}

impl serde::Serialize for PatchOp {
    /// As json-patch serializes its `add` operations.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("op", "add")?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("value", &self.value)?;
        map.end()
    }
}

/// A JSON Patch of `add` operations, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch(pub Vec<PatchOp>);

impl Patch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The patch as json-patch's type (values copied).
    pub fn to_json_patch(&self) -> json_patch::Patch {
        json_patch::Patch(self.0.iter().map(PatchOp::to_json_patch).collect())
    }

    /// Applies the patch to `doc` (with json-patch).
    pub fn apply(&self, doc: &mut Value) -> Result<(), json_patch::PatchError> {
        json_patch::patch(doc, &self.to_json_patch())
    }

    /// The patch as JSON: the bytes `serde_json::to_vec` gives for [`Patch::to_json_patch`],
    /// shared values written as serialized once.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(
            64 + self
                .0
                .iter()
                .map(|op| {
                    op.path.len()
                        + 32
                        + match &op.value {
                            PatchValue::Shared(v) => v.json().len(),
                            PatchValue::Array(items) => {
                                items.iter().map(|v| v.json().len() + 1).sum()
                            }
                            PatchValue::Owned(_) => 32,
                        }
                })
                .sum::<usize>(),
        );
        out.push(b'[');
        for (i, op) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"op":"add","path":"#);
            serde_json::to_writer(&mut out, &op.path)?;
            out.extend_from_slice(br#","value":"#);
            op.value.write_json(&mut out)?;
            out.push(b'}');
        }
        out.push(b']');
        Ok(out)
    }
}

impl serde::Serialize for Patch {
    /// As json-patch serializes a patch.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for op in &self.0 {
            seq.serialize_element(op)?;
        }
        seq.end()
    }
}

impl PartialEq<json_patch::Patch> for Patch {
    fn eq(&self, other: &json_patch::Patch) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.to_json_patch() == *b)
    }
}

impl PartialEq<Patch> for json_patch::Patch {
    fn eq(&self, other: &Patch) -> bool {
        other == self
    }
}

/// A JSON Pointer under construction: `/` and each token, escaped (`~` as `~0`, `/` as `~1`).
#[derive(Debug, Clone, Default)]
pub struct Pointer(String);

impl Pointer {
    /// The pointer of `tokens` (none of which needs escaping: the engine's own paths).
    pub fn of(tokens: &[&str]) -> Pointer {
        let mut p = Pointer(String::with_capacity(
            tokens.iter().map(|t| t.len() + 1).sum::<usize>() + 32,
        ));
        for t in tokens {
            p.push(t);
        }
        p
    }

    /// Appends a token, escaped.
    pub fn push(&mut self, token: &str) {
        self.0.push('/');
        // Escaped in one pass, in place: no copy of the token.
        let mut rest = token;
        while let Some(at) = rest.bytes().position(|b| b == b'~' || b == b'/') {
            self.0.push_str(&rest[..at]);
            self.0.push_str(if rest.as_bytes()[at] == b'~' {
                "~0"
            } else {
                "~1"
            });
            rest = &rest[at + 1..];
        }
        self.0.push_str(rest);
    }

    /// Appends an array index.
    pub fn push_index(&mut self, index: usize) {
        self.0.push('/');
        crate::workload::push_decimal(&mut self.0, index);
    }

    /// This pointer with `token` appended.
    pub fn with(&self, token: &str) -> Pointer {
        let mut p = String::with_capacity(self.0.len() + token.len() + 8);
        p.push_str(&self.0);
        let mut p = Pointer(p);
        p.push(token);
        p
    }

    /// The pointer's text.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// `add` of `value` at `path`.
pub fn add(path: Pointer, value: PatchValue) -> PatchOp {
    PatchOp {
        path: path.into_string(),
        value,
    }
}

/// Operations appending `items` to the array at `base`/`key` (one `add` creating the array
/// when it does not `exist`, else one `add .../-` per item).
pub fn append_all(
    ops: &mut Vec<PatchOp>,
    exists: bool,
    base: &Pointer,
    key: &str,
    items: Vec<SharedValue>,
) {
    if items.is_empty() {
        return;
    }
    let path = base.with(key);
    if exists {
        for item in items {
            ops.push(add(path.with("-"), PatchValue::Shared(item)));
        }
    } else {
        ops.push(add(path, PatchValue::Array(items)));
    }
}

/// Operations setting `entries` in the map at `base`/`key` (one `add` creating the map when it
/// does not `exist`, else one `add` per entry, keys escaped).
pub fn insert_all(
    ops: &mut Vec<PatchOp>,
    exists: bool,
    base: &Pointer,
    key: &str,
    entries: Vec<(String, Value)>,
) {
    if entries.is_empty() {
        return;
    }
    let path = base.with(key);
    if exists {
        for (k, v) in entries {
            ops.push(add(path.with(&k), PatchValue::Owned(v)));
        }
    } else {
        ops.push(add(
            path,
            PatchValue::Owned(Value::Object(entries.into_iter().collect())),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use json_patch::jsonptr::{PointerBuf, Token};
    use serde_json::json;

    #[test]
    fn keys_with_slash_and_tilde_are_escaped() {
        let mut ops = Vec::new();
        let parent = json!({"labels": {"a": "b"}});
        insert_all(
            &mut ops,
            parent["labels"].is_object(),
            &Pointer::of(&["metadata"]),
            "labels",
            vec![
                ("app.kubernetes.io/name".into(), json!("web")),
                ("x~y".into(), json!("1")),
                ("~/~1".into(), json!("2")),
            ],
        );
        let patch = Patch(ops);
        let text = serde_json::to_string(&patch).expect("serialize");
        assert!(
            text.contains("/metadata/labels/app.kubernetes.io~1name"),
            "{text}"
        );
        assert!(text.contains("/metadata/labels/x~0y"), "{text}");
        // As jsonptr escapes them.
        for (op, key) in patch
            .0
            .iter()
            .zip(["app.kubernetes.io/name", "x~y", "~/~1"])
        {
            let want = PointerBuf::from_tokens([
                Token::new("metadata"),
                Token::new("labels"),
                Token::new(key),
            ]);
            assert_eq!(op.path, want.as_str());
        }
        let mut doc = json!({"metadata": {"labels": {"a": "b"}}});
        patch.apply(&mut doc).expect("applies");
        assert_eq!(doc["metadata"]["labels"]["app.kubernetes.io/name"], "web");
        assert_eq!(doc["metadata"]["labels"]["x~y"], "1");
        assert_eq!(doc["metadata"]["labels"]["~/~1"], "2");
    }

    #[test]
    fn absent_parents_are_created() {
        let mut doc = json!({"metadata": {}});
        let mut ops = Vec::new();
        insert_all(
            &mut ops,
            doc["metadata"].get("labels").is_some(),
            &Pointer::of(&["metadata"]),
            "labels",
            vec![("k".into(), json!("v"))],
        );
        Patch(ops).apply(&mut doc).expect("applies");
        assert_eq!(doc, json!({"metadata": {"labels": {"k": "v"}}}));

        let mut doc = json!({"spec": {}});
        let mut ops = Vec::new();
        append_all(
            &mut ops,
            doc["spec"].get("volumes").is_some(),
            &Pointer::of(&["spec"]),
            "volumes",
            vec![SharedValue::new(json!({"name": "a"}))],
        );
        Patch(ops).apply(&mut doc).expect("applies");
        assert_eq!(doc, json!({"spec": {"volumes": [{"name": "a"}]}}));
    }

    #[test]
    fn written_as_json_patch_writes_it() {
        let shared = SharedValue::new(json!({"name": "log-shipper", "image": "f:1",
            "env": [{"name": "A", "value": "quote \" and \u{e9} and \u{1}"}], "n": 1.5}));
        let mut index = Pointer::of(&["spec", "containers"]);
        index.push_index(10);
        let patch = Patch(vec![
            add(
                Pointer::of(&["spec", "containers"]).with("-"),
                PatchValue::Shared(shared.clone()),
            ),
            add(
                Pointer::of(&["spec", "volumes"]),
                PatchValue::Array(vec![shared.clone(), shared.clone()]),
            ),
            add(index.with("volumeMounts"), PatchValue::Array(vec![shared])),
            add(
                Pointer::of(&["metadata"]).with("a/b~c"),
                PatchValue::Owned(json!({"labels": {"k/1": "v\"\n"}, "x": []})),
            ),
            add(
                Pointer::of(&["metadata", "name"]),
                PatchValue::Owned(json!("w")),
            ),
        ]);
        let theirs = patch.to_json_patch();
        let want = serde_json::to_vec(&theirs).expect("serialize");
        assert_eq!(
            String::from_utf8(patch.to_json().expect("json")).expect("utf-8"),
            String::from_utf8(want.clone()).expect("utf-8")
        );
        assert_eq!(serde_json::to_vec(&patch).expect("serialize"), want);
        assert_eq!(
            serde_json::to_value(&patch).expect("value"),
            serde_json::to_value(&theirs).expect("value")
        );
        assert_eq!(patch, theirs);
        assert_eq!(Patch::default().to_json().expect("json"), b"[]");
        // Reading it back gives the same operations.
        let back: json_patch::Patch = serde_json::from_slice(&want).expect("parse");
        assert_eq!(back, theirs);
    }
}
