//! `PolicyException` documents: names, owner, reason, patterns and selectors checked; whether
//! the policies and rules named exist is left to the loader, which sees the whole set.

use std::sync::Arc;

use super::selection::{check_namespace_patterns, check_selector, matches_everything};
use super::{Checker, CompileError, FieldPath};
use crate::policy::model::{API_VERSION, EXCEPTION_KIND, ExceptionDocument, LabelSelector, Rule};
use crate::policy::names::{check_dns1123_label, check_name_pattern};
use crate::policy::{CompiledException, ExceptionInfo, Source};

/// Compiles one `PolicyException` document, checking what serde cannot (names, patterns,
/// selectors, required texts). Whether the policies and rules it names exist is checked by the
/// loader, which sees the whole set.
pub fn compile_exception(
    doc: ExceptionDocument,
    source: Source,
) -> Result<CompiledException, Vec<CompileError>> {
    let mut c = Checker::default();
    if doc.api_version != API_VERSION {
        c.error(
            FieldPath::keys(&["apiVersion"]),
            format!(
                "apiVersion is {:?}, expected {API_VERSION:?}",
                doc.api_version
            ),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if doc.kind != EXCEPTION_KIND {
        c.error(
            FieldPath::keys(&["kind"]),
            format!("kind is {:?}, expected {EXCEPTION_KIND:?}", doc.kind),
            format!("write `kind: {EXCEPTION_KIND}`"),
        );
    }
    if let Err(e) = check_dns1123_label(&doc.metadata.name) {
        c.error(
            FieldPath::keys(&["metadata", "name"]),
            format!("exception name {:?} {e}", doc.metadata.name),
            "exception names are DNS-1123 labels such as `legacy-batch-probes`: lowercase letters, digits and '-', at most 63 characters",
        );
    }
    let spec = &doc.spec;
    for (field, value, hint) in [
        (
            "owner",
            &spec.owner,
            "name who answers for the exception: a team, a person or an address",
        ),
        (
            "reason",
            &spec.reason,
            "say why the exception is needed, for whoever reviews it",
        ),
    ] {
        if value.trim().is_empty() {
            c.error(
                FieldPath::keys(&["spec", field]),
                format!("{field} is empty"),
                hint,
            );
        }
    }
    if spec.ticket.as_deref().is_some_and(|t| t.trim().is_empty()) {
        c.error(
            FieldPath::keys(&["spec", "ticket"]),
            "ticket is empty",
            "name the ticket tracking the fix, or leave `ticket` out",
        );
    }
    let ppath = FieldPath::keys(&["spec", "policies"]);
    if spec.policies.is_empty() {
        c.error(
            ppath.clone(),
            "the exception names no policy",
            "list the policies it excepts, e.g. `policies: [{name: require-probes}]`",
        );
    }
    for (i, p) in spec.policies.iter().enumerate() {
        if spec.policies[..i].iter().any(|q| q.name == p.name) {
            c.error(
                ppath.index(i).key("name"),
                format!("policy {:?} is listed twice", p.name),
                "list each policy once, with all its excepted rules",
            );
        }
        for (j, r) in p.rules.iter().enumerate() {
            if !Rule::TYPE_NAMES.contains(&r.as_str()) {
                c.error(
                    ppath.index(i).key("rules").index(j),
                    format!("unknown rule type {r:?}"),
                    format!("rule types: {}", Rule::TYPE_NAMES.join(", ")),
                );
            }
        }
    }
    let mpath = FieldPath::keys(&["spec", "match"]);
    let m = &spec.match_;
    check_namespace_patterns(&mut c, &mpath.key("namespaces"), &m.namespaces);
    for (field, patterns) in [("names", &m.names), ("containers", &m.containers)] {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(err) = check_name_pattern(p, field == "names") {
                c.error(
                    mpath.key(field).index(i),
                    format!("name pattern {p:?} {err}"),
                    "write names such as `web`, or patterns such as `web-*`",
                );
            }
        }
    }
    if let Some(sel) = &m.namespace_selector {
        check_selector(&mut c, &mpath.key("namespaceSelector"), sel);
    }
    if let Some(sel) = &m.object_selector {
        check_selector(&mut c, &mpath.key("objectSelector"), sel);
    }
    let narrows = |s: &Option<LabelSelector>| {
        s.as_ref()
            .is_some_and(|s| !s.match_labels.is_empty() || !s.match_expressions.is_empty())
    };
    let names_workloads = m.namespaces.iter().any(|p| !matches_everything(p))
        || m.names.iter().any(|p| !matches_everything(p))
        || narrows(&m.namespace_selector)
        || narrows(&m.object_selector);
    if !names_workloads {
        c.error(
            mpath,
            "the exception does not say which workloads it covers: it would except every workload",
            "set `namespaces`, `names`, `namespaceSelector` or `objectSelector` (not just `*`); to relax a policy everywhere, change its mode instead",
        );
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(CompiledException {
        info: Arc::new(ExceptionInfo {
            name: doc.metadata.name,
            owner: spec.owner.trim().to_owned(),
            reason: spec.reason.trim().to_owned(),
            expires: spec.expires,
            ticket: spec.ticket.as_deref().map(|t| t.trim().to_owned()),
        }),
        policies: doc.spec.policies,
        match_: doc.spec.match_,
        source,
    })
}
