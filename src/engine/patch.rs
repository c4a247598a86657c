//! Typed JSON Patch operations: pointers built from tokens (escaping `/` and `~`), parents
//! created when absent, every operation applied to the working copy as it is planned.

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

/// A JSON Pointer under construction, from tokens (never from strings with `/`).
pub fn pointer<'t>(tokens: impl IntoIterator<Item = Token<'t>>) -> PointerBuf {
    PointerBuf::from_tokens(tokens)
}

/// `add` of `value` at `path`.
pub fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// Operations appending `items` to the array at `base`/`key` (one `add` creating the array
/// when it does not `exist`, else one `add .../-` per item).
pub fn append_all(
    ops: &mut Vec<PatchOperation>,
    exists: bool,
    base: &[Token<'static>],
    key: &str,
    items: Vec<Value>,
) {
    if items.is_empty() {
        return;
    }
    let mut path: Vec<Token<'static>> = base.to_vec();
    path.push(Token::new(key.to_owned()));
    if exists {
        for item in items {
            let mut p = path.clone();
            p.push(Token::new("-"));
            ops.push(add(pointer(p), item));
        }
    } else {
        ops.push(add(pointer(path), Value::Array(items)));
    }
}

/// Operations setting `entries` in the map at `base`/`key` (one `add` creating the map when it
/// does not `exist`, else one `add` per entry, keys escaped).
pub fn insert_all(
    ops: &mut Vec<PatchOperation>,
    exists: bool,
    base: &[Token<'static>],
    key: &str,
    entries: Vec<(String, Value)>,
) {
    if entries.is_empty() {
        return;
    }
    let mut path: Vec<Token<'static>> = base.to_vec();
    path.push(Token::new(key.to_owned()));
    if exists {
        for (k, v) in entries {
            let mut p = path.clone();
            p.push(Token::new(k));
            ops.push(add(pointer(p), v));
        }
    } else {
        ops.push(add(
            pointer(path),
            Value::Object(entries.into_iter().collect()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_with_slash_and_tilde_are_escaped() {
        let mut ops = Vec::new();
        let parent = json!({"labels": {"a": "b"}});
        insert_all(
            &mut ops,
            parent["labels"].is_object(),
            &[Token::new("metadata")],
            "labels",
            vec![
                ("app.kubernetes.io/name".into(), json!("web")),
                ("x~y".into(), json!("1")),
            ],
        );
        let text = serde_json::to_string(&ops).expect("serialize");
        assert!(
            text.contains("/metadata/labels/app.kubernetes.io~1name"),
            "{text}"
        );
        assert!(text.contains("/metadata/labels/x~0y"), "{text}");
        let mut doc = json!({"metadata": {"labels": {"a": "b"}}});
        json_patch::patch(&mut doc, &ops).expect("applies");
        assert_eq!(doc["metadata"]["labels"]["app.kubernetes.io/name"], "web");
        assert_eq!(doc["metadata"]["labels"]["x~y"], "1");
    }

    #[test]
    fn absent_parents_are_created() {
        let mut doc = json!({"metadata": {}});
        let mut ops = Vec::new();
        insert_all(
            &mut ops,
            doc["metadata"].get("labels").is_some(),
            &[Token::new("metadata")],
            "labels",
            vec![("k".into(), json!("v"))],
        );
        json_patch::patch(&mut doc, &ops).expect("applies");
        assert_eq!(doc, json!({"metadata": {"labels": {"k": "v"}}}));

        let mut doc = json!({"spec": {}});
        let mut ops = Vec::new();
        append_all(
            &mut ops,
            doc["spec"].get("volumes").is_some(),
            &[Token::new("spec")],
            "volumes",
            vec![json!({"name": "a"})],
        );
        json_patch::patch(&mut doc, &ops).expect("applies");
        assert_eq!(doc, json!({"spec": {"volumes": [{"name": "a"}]}}));
    }
}
