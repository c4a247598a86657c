//! The user's `cel` rules in a ValidatingAdmissionPolicy: each validation as written, with
//! Portcullis' extra variables made available exactly as the engine binds them
//! (`src/engine/cel.rs`, `cel_values.rs`), and the engine's words (`src/engine/message.rs`).
//!
//! A rule becomes one more entry of the policy object's `found` (see `validating.rs`):
//!
//! - `podSpec` is the policy object's `variables.spec` (the pod spec wherever the kind keeps
//!   it), `podMetadata` a variable of its own; `object`, `oldObject`, `request` and
//!   `namespaceObject` are the API server's own;
//! - the rule's variables that do not read `container` become variables of the policy object
//!   (`variables.celN_NAME`, rule `N` of the policy); those that do are written out where they
//!   are read, per container;
//! - the rule's `matchConditions` guard its findings (`MC ? findings : []`): a false one takes
//!   the rule out, an error fails the request, as in a policy of its own;
//! - `forEachContainer: true` runs the validations over `containers`, `initContainers` and
//!   `ephemeralContainers` in the engine's order, `container` bound to each (the name of the
//!   comprehension's variable), findings naming the container and its field;
//! - a false validation's message is its `messageExpression`'s string when that is a
//!   non-empty string on one line (trimmed), else `message`, else `failed expression: TEXT`;
//! - the UPDATE ratchet evaluates the rule again on the stored object, as the engine does (as a
//!   CREATE of it: `object` is `oldObject`, `oldObject` null, `request.operation` `CREATE`),
//!   keyed by rule, container and validation.
//!
//! What a policy object cannot say: an expression that fails at run time fails the whole
//! object (the API server's `expression '...' resulted in error` words, not the finding the
//! engine writes; both deny); the words of a messageExpression that fails (the engine falls
//! back to `message`).

use serde_json::{Value, json};

use super::cel;
use crate::policy::cel_text::{is_quote, literal_end};
use crate::policy::{CelExpression, CompiledCel, CompiledRule};

/// Which object the expressions read: the request's, or the stored one of an UPDATE (the
/// ratchet's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    New,
    Old,
}

/// Whether an exception in force covers a finding about a container (a CEL expression of the
/// container's name expression, `None` for the object).
pub(super) type Excepted<'a> = &'a dyn Fn(Option<&str>) -> String;

/// What a rule's findings need from its policy object (`validating.rs`).
pub(super) struct Scope<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The rule's index in the policy.
    pub index: usize,
    /// Appended to the names of the policy's own variables in an object several policies
    /// share (`_0`, `_1`, ...; empty for an object of its own).
    pub tag: &'a str,
    /// Whether violations the stored object had are left out (the UPDATE ratchet).
    pub ratchet: bool,
    /// When an exception in force names the rule: whether one covers a finding about the
    /// container (a CEL expression of the container's name expression, `None` for the object).
    pub excepted: Option<Excepted<'a>>,
}

/// A rule's findings: groups of texts (new side) or keys (old side), and when none of its
/// validations fails.
pub(super) struct Part {
    pub found: String,
    pub clean: String,
}

/// Why a rule cannot be exported, if it cannot: it stays with the webhook.
pub(super) fn unsupported(rule: &CompiledRule) -> Option<String> {
    let CompiledRule::Cel(r) = rule else {
        return None;
    };
    let mut texts: Vec<&str> = Vec::new();
    texts.extend(r.match_conditions.iter().map(|m| m.text.as_str()));
    texts.extend(r.variables.iter().map(|v| v.text.as_str()));
    for v in &r.validations {
        texts.push(v.check.text.as_str());
        if let Some(m) = &v.message_expression {
            texts.push(m.text.as_str());
        }
    }
    texts
        .into_iter()
        .find_map(|t| rewrite(t, &|_| None, &|_| Some(String::new())).err())
}

/// How the roots of a rule's expressions are written on one side.
fn root(side: Side, name: &str) -> Option<&'static str> {
    Some(match (side, name) {
        (Side::New, "podSpec") => "variables.spec",
        (Side::New, "podMetadata") => "variables.celPodMetadata",
        (Side::Old, "podSpec") => "variables.oldSpec",
        (Side::Old, "podMetadata") => "variables.celOldPodMetadata",
        (Side::Old, "object") => "oldObject",
        (Side::Old, "oldObject") => "dyn(null)",
        (Side::Old, "request") => "variables.celOldRequest",
        _ => return None,
    })
}

/// The pod metadata of `root` wherever its kind keeps it (the Pod's own), null when absent.
fn pod_metadata(root: &str) -> String {
    let k = cel::KIND;
    let at = |holder: &str| format!("has({holder}.metadata) ? dyn({holder}.metadata) : dyn(null)");
    format!(
        "{k} == 'Pod' ? ({}) : {k} == 'CronJob' ? ({}) : ({})",
        at(root),
        at(&format!("{root}.spec.jobTemplate.spec.template")),
        at(&format!("{root}.spec.template"))
    )
}

/// The variables the CEL rules of a policy need on `side` (the old one only for the
/// ratchet), for `rules` (index in the policy, rule).
pub(super) fn variables(rules: &[(usize, &CompiledCel)], tag: &str, side: Side) -> Vec<Value> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    match side {
        Side::New => {
            out.push(json!({"name": "celPodMetadata", "expression": pod_metadata("object")}))
        }
        Side::Old => {
            out.push(json!({"name": "celOldPodMetadata", "expression": format!(
                "request.operation == 'UPDATE' && oldObject != null ? ({}) : dyn(null)",
                pod_metadata("oldObject")
            )}));
            // The request as the engine binds it for the stored object: a CREATE of it.
            out.push(json!({"name": "celOldRequest", "expression":
                "{'operation': dyn('CREATE'), 'kind': dyn(request.kind), 'name': dyn(request.name), 'namespace': dyn(request.namespace), 'userInfo': dyn(request.userInfo), 'dryRun': dyn(request.dryRun)}"}));
        }
    }
    for (index, rule) in rules {
        let dependent = per_container(rule);
        for (i, v) in rule.variables.iter().enumerate() {
            if dependent[i] {
                continue;
            }
            // Checked by `unsupported` before the rule is exported.
            if let Ok(e) = expression(*index, tag, rule, side, &v.text, &dependent) {
                out.push(
                    json!({"name": variable_name(*index, tag, side, &v.name), "expression": e}),
                );
            }
        }
    }
    out
}

/// A rule variable's name in the object: `cel` and the rule's index, the policy's tag (in an
/// object several policies share), then the name (identifiers start with a letter or `_`, so
/// no two index, tag and name give one text).
fn variable_name(index: usize, tag: &str, side: Side, name: &str) -> String {
    match side {
        Side::New => format!("cel{index}{tag}_{name}"),
        Side::Old => format!("cel{index}{tag}_old_{name}"),
    }
}

/// Which of the rule's variables read `container`, directly or through another variable:
/// those are written out per container.
fn per_container(rule: &CompiledCel) -> Vec<bool> {
    let mut out: Vec<bool> = Vec::with_capacity(rule.variables.len());
    for v in &rule.variables {
        let reads = reads_container(&v.text) || v.needs.iter().any(|&j| out.get(j) == Some(&true));
        out.push(reads);
    }
    out
}

fn reads_container(text: &str) -> bool {
    let found = std::cell::Cell::new(false);
    let _ = rewrite(
        text,
        &|name| {
            if name == "container" {
                found.set(true);
            }
            None
        },
        &|_| Some(String::new()),
    );
    found.get()
}

/// `text` of rule `index` as the policy object writes it on `side`: roots and variables
/// renamed, variables that read `container` written out.
fn expression(
    index: usize,
    tag: &str,
    rule: &CompiledCel,
    side: Side,
    text: &str,
    dependent: &[bool],
) -> Result<String, String> {
    rewrite(text, &|name| root(side, name).map(str::to_owned), &|name| {
        let i = rule.variables.iter().position(|v| v.name == name)?;
        if dependent[i] {
            expression(index, tag, rule, side, &rule.variables[i].text, dependent)
                .ok()
                .map(|e| format!("({e})"))
        } else {
            Some(format!(
                "variables.{}",
                variable_name(index, tag, side, name)
            ))
        }
    })
}

/// Rewrites the identifiers of a CEL expression: a root identifier (not selected with `.`,
/// not in a string literal) by `roots` when it gives a text, `variables.NAME` by `variables`
/// (an unknown name is an error); comments are dropped.
fn rewrite(
    text: &str,
    roots: &dyn Fn(&str) -> Option<String>,
    variables: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut after_dot = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if is_quote(c) {
            let Some(end) = literal_end(&chars, i) else {
                return Err("a string literal is not closed".to_owned());
            };
            out.extend(&chars[i..end]);
            i = end;
            after_dot = false;
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                out.push(chars[i]);
                i += 1;
            }
            after_dot = false;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if after_dot {
                out.push_str(&word);
            } else if word == "variables" {
                // `variables` . NAME
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if chars.get(j) != Some(&'.') {
                    return Err("`variables` is read other than as variables.NAME, which the export cannot rename".to_owned());
                }
                j += 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let name_start = j;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[name_start..j].iter().collect();
                match variables(&name) {
                    Some(to) => out.push_str(&to),
                    None => return Err(format!("variables.{name} is not a variable of the rule")),
                }
                i = j;
            } else {
                match roots(&word) {
                    Some(to) => out.push_str(&to),
                    None => out.push_str(&word),
                }
            }
            after_dot = false;
            continue;
        }
        out.push(c);
        if !c.is_whitespace() {
            after_dot = c == '.';
        }
        i += 1;
    }
    Ok(out)
}

/// The pod spec lists `forEachContainer` judges, in the engine's order
/// (`Workload::containers`, then `ephemeral_containers`).
const LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// One rule, rewritten for one side.
struct Written {
    conditions: Vec<String>,
    validations: Vec<String>,
    /// The message of each validation when it is false (new side).
    messages: Vec<String>,
}

fn written(ctx: &Scope<'_>, rule: &CompiledCel, side: Side) -> Result<Written, String> {
    let dependent = per_container(rule);
    let e = |x: &CelExpression| expression(ctx.index, ctx.tag, rule, side, &x.text, &dependent);
    let conditions = rule
        .match_conditions
        .iter()
        .map(e)
        .collect::<Result<_, _>>()?;
    let validations = rule
        .validations
        .iter()
        .map(|v| e(&v.check))
        .collect::<Result<_, _>>()?;
    let mut messages = Vec::new();
    for v in &rule.validations {
        // As the engine words it (`src/engine/cel.rs`, `judge`).
        let fallback = match &v.message {
            Some(m) => cel::string(m.trim()),
            None => cel::string(&format!("failed expression: {}", v.check.text.trim())),
        };
        messages.push(match &v.message_expression {
            Some(m) => format!(
                "[{}].map(m, m.trim() != '' && !m.contains('\\n') ? m.trim() : {fallback})[0]",
                e(m)?
            ),
            None => fallback,
        });
    }
    Ok(Written {
        conditions,
        validations,
        messages,
    })
}

/// `(MC) ? then : otherwise`, or `then` without match conditions. A ternary, so a condition
/// that fails is an error whatever the rest says, as a policy's own matchCondition is.
fn guarded(conditions: &[String], then: &str, otherwise: &str) -> String {
    if conditions.is_empty() {
        then.to_owned()
    } else {
        format!(
            "({}) ? ({then}) : {otherwise}",
            cel::and(&paren(conditions))
        )
    }
}

fn paren(terms: &[String]) -> Vec<String> {
    terms.iter().map(|t| format!("({t})")).collect()
}

/// The findings of a `cel` rule (see the module's documentation): its groups of texts (new
/// side) or keys (old side), and when none of its validations fails.
pub(super) fn findings(ctx: &Scope<'_>, rule: &CompiledCel, side: Side) -> Result<Part, String> {
    let w = written(ctx, rule, side)?;
    let all_pass = cel::and(&paren(&w.validations));
    let container = rule.for_each_container.then_some("container.name");
    let entries: Vec<String> = (0..w.validations.len())
        .map(|i| entry(ctx, &w, i, side, container))
        .collect();
    let group = format!("[{}].filter(t, t != '')", entries.join(", "));
    if !rule.for_each_container {
        return Ok(Part {
            found: guarded(
                &w.conditions,
                &format!("[{group}].filter(g, size(g) > 0)"),
                "[]",
            ),
            clean: guarded(&w.conditions, &all_pass, "true"),
        });
    }
    let spec = match side {
        Side::New => "variables.spec",
        Side::Old => "variables.oldSpec",
    };
    let mut found = Vec::new();
    let mut clean = Vec::new();
    for list in LISTS {
        let items = format!("(has({spec}.{list}) ? {spec}.{list} : [])");
        let path = format!(
            "variables.specPath + '.{list}[' + string({items}.map(x, x.name).indexOf(container.name)) + ']'"
        );
        let keep = guarded(&w.conditions, &format!("!({all_pass})"), "false");
        found.push(format!(
            "{items}.filter(container, {keep}).map(container, {}).filter(g, size(g) > 0)",
            group.replace(PATH, &path)
        ));
        clean.push(format!(
            "{items}.all(container, {})",
            guarded(&w.conditions, &all_pass, "true")
        ));
    }
    Ok(Part {
        found: found.join(" + "),
        clean: cel::and(&clean),
    })
}

/// Where a container's field path goes in a text, filled in per list.
const PATH: &str = "\u{1}PATH\u{1}";

/// Validation `i`'s entry: its text (new side) or key (old side) when it is false and counts,
/// `''` otherwise.
fn entry(ctx: &Scope<'_>, w: &Written, i: usize, side: Side, container: Option<&str>) -> String {
    let fails = format!("!({})", w.validations[i]);
    let key = format!(
        "{} + {} + {}",
        cel::string(&format!("cel{}|", ctx.index)),
        container.map_or("''".to_owned(), |c| format!("{c} + ''")),
        cel::string(&format!("|{i}"))
    );
    match side {
        Side::Old => format!("({fails}) ? {key} : ''"),
        Side::New => {
            let mut terms = vec![fails];
            if let Some(excepted) = ctx.excepted {
                terms.push(format!("!({})", excepted(container)));
            }
            if ctx.ratchet {
                terms.push(format!("!variables.old{}.exists(g, ({key}) in g)", ctx.tag));
            }
            let mut text = vec![cel::string(&format!("[{}] ", ctx.policy))];
            if let Some(c) = container {
                text.push(format!("'container \"' + {c} + '\": '"));
            }
            text.push(format!("({})", w.messages[i]));
            if container.is_some() {
                text.push(format!("' (' + {PATH} + ')'"));
            }
            format!("({}) ? {} : ''", terms.join(" && "), text.join(" + "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(name: &str) -> Option<String> {
        match name {
            "podSpec" => Some("variables.spec".to_owned()),
            "object" => Some("oldObject".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn rewriting_renames_roots_and_variables_only() {
        let vars = |n: &str| (n == "x").then(|| "variables.cel0_x".to_owned());
        assert_eq!(
            rewrite(
                "podSpec.a + 'podSpec' + a.podSpec + r'\\' + podSpec_2 + variables . x + object.object // podSpec\n+ 1e3",
                &roots,
                &vars
            ),
            Ok("variables.spec.a + 'podSpec' + a.podSpec + r'\\' + podSpec_2 + variables.cel0_x + oldObject.object \n+ 1e3".to_owned())
        );
        assert!(rewrite("variables['x']", &roots, &vars).is_err());
        assert!(rewrite("variables.y", &roots, &vars).is_err());
        assert!(rewrite("'open", &roots, &vars).is_err());
    }
}
