//! Field names a CEL expression reads, checked against the Kubernetes v1.32 schema: under
//! `podSpec`, `podMetadata`, `container`, and `object.metadata`/`object.spec` (and the same
//! of `oldObject`), through selects (`a.b`, `has(a.b)`), optional selects (`a.?b`),
//! indexes (`a[0]`, `a['b']`, `a[?'b']`) and the elements of comprehensions
//! (`podSpec.containers.all(c, c.image ...)`). A name no type of the path has is a typo
//! (`podSpec.hostNetwrok`), refused at load with the close names. Conservative: a path whose
//! type is not certain (variables, map values such as labels, free-form fields, function
//! results) is not checked.
//!
//! The table (`k8s_fields.json`: per schema type, each field and its type) is generated from
//! the API server's `/openapi/v3`; tests/e2e_cel.rs fails when it differs from a real
//! kube-apiserver's (and rewrites it with `PORTCULLIS_WRITE_FIELDS=1`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use kube_core::cel::cel::IdedExpr;
use kube_core::cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};

/// Per schema type (`io.k8s.api.core.v1.PodSpec`), each field and its type: another type of
/// the table, `[]T` (a list of T), `{}T` (a map with free keys, values T), or `` (a scalar,
/// or a free-form value) after the `[]`/`{}`, or alone.
type Table = BTreeMap<String, BTreeMap<String, String>>;

static TABLE: LazyLock<Table> =
    LazyLock::new(|| serde_json::from_str(include_str!("k8s_fields.json")).unwrap_or_default());

/// The schema types of the workload kinds, whose `spec` is `object.spec`.
pub(crate) const KIND_TYPES: [&str; 8] = [
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.core.v1.ReplicationController",
];

const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// `container` is every container of the Pod spec, ephemeral ones too.
const CONTAINERS: [&str; 2] = [
    "io.k8s.api.core.v1.Container",
    "io.k8s.api.core.v1.EphemeralContainer",
];
/// `object` and `oldObject` (not a schema type: only their `metadata` and `spec` are checked).
const OBJECT: &str = "object";

/// A field no type of its path has.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unknown {
    /// The field's name, to find it in the expression.
    pub field: String,
    pub message: String,
    pub hint: String,
}

/// What an expression may be: one of these type references (as in the table).
type Types = Vec<&'static str>;

/// The unknown fields `e` reads; `container` is bound when the rule is per container.
pub(super) fn unknown_fields(e: &IdedExpr, container: bool) -> Vec<Unknown> {
    let mut w = Walk {
        container,
        bound: Vec::new(),
        found: Vec::new(),
    };
    w.walk(e);
    w.found
}

struct Walk {
    container: bool,
    /// Comprehension variables in scope, with their type when certain.
    bound: Vec<(String, Option<Types>)>,
    found: Vec<Unknown>,
}

/// The type (in the table) a reference names, when it is an object type.
fn object_type(r: &str) -> Option<&'static BTreeMap<String, String>> {
    TABLE.get(r)
}

impl Walk {
    /// Visits every part of `e`; returns its types when certain.
    fn walk(&mut self, e: &IdedExpr) -> Option<Types> {
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                let operand = self.walk(&s.operand);
                self.field(operand?, &s.field)
            }
            Expr::Call(call) => {
                let target = call.target.as_deref().map(|t| self.walk(t));
                let args: Vec<Option<Types>> = call.args.iter().map(|a| self.walk(a)).collect();
                let literal = |i: usize| match call.args.get(i).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::String(s))) => Some(s.inner().to_owned()),
                    _ => None,
                };
                match (call.func_name.as_str(), args.len()) {
                    // `a.?b`: the field `b` (the optional is transparent here).
                    ("_?._", 2) => {
                        let f = literal(1)?;
                        self.field(args.into_iter().next()??, &f)
                    }
                    ("_[_]" | "_[?_]", 2) => {
                        let operand = args.first().cloned()??;
                        match literal(1) {
                            Some(f) if operand.iter().all(|r| object_type(r).is_some()) => {
                                self.field(operand, &f)
                            }
                            _ => element(&operand),
                        }
                    }
                    // An optional's value is the field's.
                    ("value", 0) => target.flatten(),
                    _ => None,
                }
            }
            Expr::Comprehension(c) => {
                let range = self.walk(&c.iter_range);
                self.walk(&c.accu_init);
                let element = range.as_ref().and_then(element);
                self.bound.push((c.iter_var.clone(), element));
                self.bound.push((c.accu_var.clone(), None));
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push((v2.clone(), None));
                }
                for x in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(x);
                }
                self.bound
                    .truncate(self.bound.len() - 2 - usize::from(c.iter_var2.is_some()));
                None
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.walk(x);
                }
                None
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key);
                        self.walk(&me.value);
                    }
                }
                None
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value);
                    }
                }
                None
            }
            Expr::Unspecified | Expr::Literal(_) => None,
        }
    }

    fn ident(&self, name: &str) -> Option<Types> {
        if let Some((_, types)) = self.bound.iter().rev().find(|(b, _)| b == name) {
            return types.clone();
        }
        match name {
            "podSpec" => Some(vec![POD_SPEC]),
            "podMetadata" => Some(vec![OBJECT_META]),
            "container" if self.container => Some(CONTAINERS.to_vec()),
            "object" | "oldObject" => Some(vec![OBJECT]),
            _ => None,
        }
    }

    /// The types of `field` of a value of `types`, recording it when none has it.
    fn field(&mut self, types: Types, field: &str) -> Option<Types> {
        if types == [OBJECT] {
            return match field {
                "metadata" => Some(vec![OBJECT_META]),
                "spec" => Some(
                    KIND_TYPES
                        .iter()
                        .filter_map(|k| object_type(k)?.get("spec"))
                        .map(String::as_str)
                        .collect(),
                )
                .filter(|t: &Types| !t.is_empty()),
                _ => None,
            };
        }
        let tables: Vec<&BTreeMap<String, String>> = types
            .iter()
            .map(|r| object_type(r))
            .collect::<Option<_>>()?;
        let found: Types = tables
            .iter()
            .filter_map(|t| t.get(field))
            .map(String::as_str)
            .collect();
        if found.is_empty() {
            let mut names: Vec<&str> = tables
                .iter()
                .flat_map(|t| t.keys())
                .map(String::as_str)
                .collect();
            names.sort_unstable();
            names.dedup();
            let close = names
                .iter()
                .map(|n| (strsim::jaro_winkler(n, field), *n))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, n)| n);
            let short: Vec<&str> = types
                .iter()
                .map(|t| t.rsplit('.').next().unwrap_or(t))
                .collect();
            let of = if short.len() > 2 {
                "the spec of any workload kind".to_owned()
            } else {
                short.join(" or ")
            };
            self.found.push(Unknown {
                field: field.to_owned(),
                message: format!(
                    "unknown field `{field}`: the Kubernetes schema (v1.32) of {of} has no such field"
                ),
                hint: match close {
                    Some(n) => format!("did you mean `{n}`?"),
                    None if names.len() <= 12 => format!("its fields are {}", names.join(", ")),
                    None => "check the name against the Kubernetes API reference (v1.32)".to_owned(),
                },
            });
            return None;
        }
        // A free-form or scalar field ends what can be checked.
        found.iter().all(|r| !r.is_empty()).then_some(found)
    }
}

/// The element types of a list (or the value types of a map) of `types`, when all are.
fn element(types: &Types) -> Option<Types> {
    let out: Types = types
        .iter()
        .map(|r| r.strip_prefix("[]").or_else(|| r.strip_prefix("{}")))
        .collect::<Option<_>>()?;
    out.iter().all(|r| !r.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_pod_spec_and_the_kinds() {
        assert!(
            TABLE
                .get(POD_SPEC)
                .is_some_and(|t| t.contains_key("hostNetwork"))
        );
        for k in KIND_TYPES {
            assert!(TABLE.get(k).is_some_and(|t| t.contains_key("spec")), "{k}");
        }
        for c in CONTAINERS {
            assert!(TABLE.get(c).is_some_and(|t| t.contains_key("image")), "{c}");
        }
    }
}
