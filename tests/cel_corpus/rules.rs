//! A case of the CEL corpus (tests/cel_corpus/corpus.yaml, read as JSON) as the `cel` rule
//! body Portcullis gets: `expression` with its `message`, `messageExpression` and `reason`,
//! then `validations`, `variables` and `matchConditions` as written. Shared by the suites that
//! read the corpus untyped (tests/e2e_cel.rs reads it typed, with its checks).

use serde_json::{Value, json};

/// The `cel` rule body of corpus case `case`.
pub fn rule_of(case: &Value) -> Value {
    let mut validations: Vec<Value> = Vec::new();
    if let Some(e) = case.get("expression") {
        let mut v = json!({"expression": e});
        for k in ["message", "messageExpression", "reason"] {
            if let Some(f) = case.get(k) {
                v[k] = f.clone();
            }
        }
        validations.push(v);
    }
    validations.extend(
        case["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned(),
    );
    let mut rule = json!({"validations": validations});
    for k in ["variables", "matchConditions"] {
        if let Some(x) = case.get(k) {
            rule[k] = x.clone();
        }
    }
    rule
}
