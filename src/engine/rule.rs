//! What every rule shares, beneath the pipeline that runs the rules: what a validation rule
//! judges ([`Context`]), what a rule finds ([`Found`]) and what a mutation rule plans
//! ([`Plan`]). Rule modules import this, never the pipeline (`evaluate.rs`).

use super::patch::PatchOp;
use crate::workload::{Additions, ContainerRef, Workload};

/// What a validation rule judges: the workload as mutated (the view shows the planned
/// additions), and what the request says about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context<'a> {
    /// The workload as the mutation rules left it.
    pub workload: Workload<'a>,
    /// The request's namespace (else the object's); `None` when neither says (a manifest
    /// without one, judged offline).
    pub namespace: Option<&'a str>,
    /// What CEL rules see besides the workload (the request, the old object, the namespace),
    /// and the CEL values made from them once, when a CEL rule first needs them.
    pub cel: &'a super::cel_values::Input<'a>,
}

/// Something a rule found, before the policy's mode turns it into a [`super::Finding`]: a
/// violation of a validation rule, or a change (or a change not made) of a mutation rule.
///
/// Built with [`Found::in_container`] for a field of a container and [`Found::in_object`] for
/// any other field, so that the container's part of the field is known: an UPDATE's violations
/// are told apart from the stored object's by policy, rule, container (by name) and the field
/// within the container, whatever the container's index or the message's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    /// The container concerned, if any.
    pub container: Option<String>,
    /// Dotted path of the field from the object's root
    /// (`spec.template.spec.containers[0].livenessProbe`).
    pub field: String,
    /// Where the field's part within its container starts in `field` (after
    /// `...containers[0]`); 0 when the field is not a container's.
    within: usize,
    /// What is wrong, or what changes.
    pub message: String,
    /// How to fix it (empty for changes).
    pub hint: String,
    /// Which check of its rule found it, when a rule has several (a CEL rule's validations);
    /// 0 otherwise. Part of what makes two violations the same one.
    pub part: usize,
}

// Small, and called from every rule module: `#[inline]` lets them inline across codegen units
// (BENCHMARKS.md, "Rules beneath the pipeline").
impl Found {
    /// A finding about a field of container `c`: `suffix` is the field's path within the
    /// container, in pieces (`[".resources.", "limits", ".", "cpu"]`; empty for the container
    /// itself), written after the container's path in one allocation.
    #[inline]
    pub fn in_container(
        w: &Workload<'_>,
        c: &ContainerRef<'_>,
        suffix: &[&str],
        message: String,
        hint: String,
    ) -> Found {
        let field = w.container_field(c, suffix);
        let within = field.len() - suffix.iter().map(|s| s.len()).sum::<usize>();
        Found {
            container: Some(c.name.to_owned()),
            field,
            within,
            message,
            hint,
            part: 0,
        }
    }

    /// A finding about a field that is not a container's (`metadata.labels["team"]`,
    /// `spec.template.spec.volumes`), at its dotted path from the object's root.
    #[inline]
    pub fn in_object(field: String, message: String, hint: String) -> Found {
        Found {
            container: None,
            field,
            within: 0,
            message,
            hint,
            part: 0,
        }
    }

    /// The same finding, found by check `part` of its rule.
    #[inline]
    pub fn part(self, part: usize) -> Found {
        Found { part, ..self }
    }

    /// The same finding, naming a container it concerns although the field is not inside it
    /// (a sidecar not injected because of the Pod's `hostNetwork`; the sidecar being added).
    #[inline]
    pub fn naming(self, container: &str) -> Found {
        Found {
            container: Some(container.to_owned()),
            ..self
        }
    }

    /// The field as far as it is the container's (`.resources.limits.cpu`), or the whole
    /// field when it is not a container's: what, with the container's name, identifies the
    /// field whatever the container's index.
    #[inline]
    pub fn field_in_container(&self) -> &str {
        &self.field[self.within..]
    }
}

/// The planned changes of one mutation rule: patch operations, their descriptions, and what
/// they add (for the view later rules and validation judge).
#[derive(Debug, Default)]
pub(super) struct Plan<'p> {
    /// The JSON Patch operations.
    pub ops: Vec<PatchOp>,
    /// One description per change.
    pub changes: Vec<Found>,
    /// What the operations add, as later rules see it.
    pub added: Additions<'p>,
    /// Changes the rule did not make, and why (reported as notices).
    pub notices: Vec<Found>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::WorkloadKind;
    use serde_json::json;

    #[test]
    fn a_container_field_is_known_apart_from_the_container_path() {
        let obj = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}}}});
        let w = Workload::new(WorkloadKind::Deployment, &obj).expect("workload");
        let found: Vec<Found> = w
            .containers()
            .map(|c| {
                Found::in_container(
                    &w,
                    &c,
                    &[".resources.", "limits", ".cpu"],
                    String::new(),
                    String::new(),
                )
            })
            .collect();
        let seen: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|f| {
                (
                    f.container.as_deref().unwrap_or(""),
                    f.field.as_str(),
                    f.field_in_container(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "a",
                    "spec.template.spec.containers[0].resources.limits.cpu",
                    ".resources.limits.cpu"
                ),
                (
                    "b",
                    "spec.template.spec.containers[1].resources.limits.cpu",
                    ".resources.limits.cpu"
                ),
                (
                    "i",
                    "spec.template.spec.initContainers[0].resources.limits.cpu",
                    ".resources.limits.cpu"
                ),
            ]
        );
        let c = w.containers().next().expect("a container");
        let whole = Found::in_container(&w, &c, &[], String::new(), String::new());
        assert_eq!(whole.field_in_container(), "");
        let label = Found::in_object(
            "metadata.labels[\"team\"]".to_owned(),
            String::new(),
            String::new(),
        );
        assert_eq!(label.field_in_container(), "metadata.labels[\"team\"]");
        assert_eq!(label.naming("x").container.as_deref(), Some("x"));
    }
}
