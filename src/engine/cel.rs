//! The `cel` rule: evaluates a platform team's CEL validations (compiled at load, see
//! `policy/compile/cel.rs`) against the review, as a ValidatingAdmissionPolicy would with
//! `failurePolicy: Fail`. The review's values are made once (`cel_values.rs`), when a CEL
//! rule first needs them; each rule then runs in its own scope.

use std::cell::Cell;
use std::sync::Once;

use kube_core::cel::cel::{Context as CelContext, ExecutionError, IdedExpr, Value};

use super::cel_values::{Val, empty_map, put, put_entry, take};
use super::rule::{Context, Found};
use crate::policy::{CelExpression, CompiledCel, variable_ident};
use crate::workload::ContainerRef;

/// The hint of a violation that is an error rather than a false validation.
const ERROR_HINT: &str = "the expression could not be evaluated on this object; Portcullis denies then, as the API server does with failurePolicy: Fail (fix the expression, or guard it with has() or ?.)";

/// A violation as [`judge`] reports it: the check's number, the message and the hint.
type Violation = (usize, String, String);

/// How many judged containers a `forEachContainer` rule remembers to compare the next ones
/// with: bounds the comparisons to this many per container, however many containers.
const REMEMBERED: usize = 8;

/// Judges the workload with a `cel` rule.
pub(super) fn check(rule: &CompiledCel, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let w = &ctx.workload;
    let size = ctx.cel.bind(w, &rule.reads);
    let spent = ctx.cel.spent.get();
    if let Err(why) = rule.cost.check(size, spent) {
        out.push(Found::in_object(
            String::new(),
            format!("the CEL rule was not evaluated: {why}"),
            "the rule's worst-case cost grows with the object's size; simplify it (docs/cel.md, \"Cost\")".to_owned(),
        ));
        return;
    }
    ctx.cel.spent.set(spent + rule.cost.steps.at(size));
    let slot = ctx.cel.bound.borrow();
    let Some(bound) = slot.as_ref() else {
        return;
    };
    if rule.for_each_container {
        let containers: Vec<ContainerRef<'_>> =
            w.containers().chain(w.ephemeral_containers()).collect();
        // The variables that are the same for every container, evaluated once, in a scope
        // above the containers' own.
        let mut rule_scope = bound.ctx.new_inner_scope();
        let mut shared = Variables::new(rule);
        if !containers.is_empty() {
            shared.ensure(&mut rule_scope, &rule.shared_variables);
        }
        // The outcomes of the containers judged so far, by position: a container whose value
        // is identical to one of theirs gets the same outcome without being judged again (the
        // same expressions on the same values; only the container named differs).
        let mut judged: Vec<(usize, Vec<Violation>)> = Vec::new();
        for (position, c) in containers.iter().enumerate() {
            let value = bound.take_container(position, c);
            let seen = judged
                .iter()
                .find(|(p, _)| bound.container_is(*p, value.as_ref()))
                .map(|(_, outcome)| outcome.clone());
            let (outcome, value) = match seen {
                Some(outcome) => (outcome, Some(value)),
                None => {
                    let mut scope = rule_scope.new_inner_scope();
                    put(&mut scope, "container", value);
                    let mut outcome = Vec::new();
                    judge(
                        &mut shared.clone(),
                        &mut scope,
                        &mut |part, message, hint| {
                            outcome.push((part, message, hint));
                        },
                    );
                    let value = take(&mut scope, "container");
                    if rule.identical_containers_once
                        && judged.len() < REMEMBERED
                        && value.is_some()
                    {
                        judged.push((position, outcome.clone()));
                    }
                    (outcome, value)
                }
            };
            for (part, message, hint) in outcome {
                out.push(Found::in_container(w, c, &[], message, hint).part(part));
            }
            if let Some(value) = value {
                bound.give_back(position, value);
            }
        }
    } else {
        judge(
            &mut Variables::new(rule),
            &mut bound.ctx.new_inner_scope(),
            &mut |part, message, hint| {
                out.push(Found::in_object(String::new(), message, hint).part(part));
            },
        );
    }
}

/// The variables of one scope, each evaluated at most once; those that gave a value are
/// bound in the scope: each to its own identifier, or in the map `variables`
/// ([`CompiledCel::variables_by_name`]).
#[derive(Clone)]
struct Variables<'r> {
    rule: &'r CompiledCel,
    /// Per variable: not yet evaluated, evaluated (`Ok`), or why it failed.
    values: Vec<Option<Result<(), String>>>,
}

impl<'r> Variables<'r> {
    /// None evaluated yet.
    fn new(rule: &'r CompiledCel) -> Self {
        Variables {
            rule,
            values: vec![None; rule.variables.len()],
        }
    }

    /// Evaluates the variables `needs` that are not yet, and binds them in `scope`.
    fn ensure(&mut self, scope: &mut CelContext<'_>, needs: &[usize]) {
        for &i in needs {
            if self.values.get(i).is_some_and(Option::is_some) {
                continue;
            }
            let Some(v) = self.rule.variables.get(i) else {
                continue;
            };
            let result = match resolve_owned(scope, &v.ast) {
                Ok(value) => {
                    // Later variables may read this one.
                    if self.rule.variables_by_name {
                        put(scope, &variable_ident(&v.name), value);
                    } else {
                        put_entry(scope, "variables", &v.name, value);
                    }
                    Ok(())
                }
                Err(failure) => {
                    // In map form the map is bound all the same, without this one; by name,
                    // its identifier stays unbound.
                    if !self.rule.variables_by_name {
                        let map = take(scope, "variables").unwrap_or_else(empty_map);
                        put(scope, "variables", map);
                    }
                    Err(match failure {
                        Failure::Error(e) => describe(&e),
                        Failure::Panic(why) => why,
                    })
                }
            };
            self.values[i] = Some(result);
        }
    }

    /// The first variable among `needs` that failed, and why.
    fn failed(&self, needs: &[usize]) -> Option<(&str, &str)> {
        needs.iter().find_map(|&i| match self.values.get(i) {
            Some(Some(Err(e))) => self
                .rule
                .variables
                .get(i)
                .map(|v| (v.name.as_str(), e.as_str())),
            _ => None,
        })
    }
}

/// An interpreter error in words.
fn describe(e: &ExecutionError) -> String {
    e.to_string()
}

/// Why an evaluation gave no value.
enum Failure {
    /// The interpreter's error.
    Error(ExecutionError),
    /// The interpreter panicked (e.g. `attempt to negate with overflow` in kube-cel's
    /// arithmetic): in words, so that the review fails closed instead of the process.
    Panic(String),
}

thread_local! {
    /// On while this thread evaluates a CEL expression: a panic then is the interpreter's,
    /// caught and turned into a finding, so the panic hook stays quiet about it.
    static EVALUATING: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing while [`EVALUATING`] is on
/// and hands every other panic to the hook it replaced (the default one prints it). Without
/// it each caught panic of the interpreter would print `thread panicked at ...` to stderr:
/// noise in the webhook's log for what is a finding.
fn quiet_while_evaluating() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EVALUATING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with a panic inside it caught, and not printed by the panic hook.
pub(crate) fn catch_quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    quiet_while_evaluating();
    let was = EVALUATING.with(|e| e.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    EVALUATING.with(|e| e.set(was));
    result
}

/// Evaluates `ast` in `scope`, a panic of the interpreter caught and turned into an error.
fn resolve(scope: &CelContext<'_>, ast: &IdedExpr) -> Result<Value, Failure> {
    caught(catch_quietly(|| scope.resolve(ast)))
}

/// Evaluates `ast` in `scope` to a value in the interpreter's own form (to be bound again
/// without a copy between the two forms), a panic caught as in [`resolve`].
fn resolve_owned(scope: &CelContext<'_>, ast: &IdedExpr) -> Result<Val, Failure> {
    caught(catch_quietly(|| {
        Value::resolve_val(ast, scope).map(std::borrow::Cow::into_owned)
    }))
}

/// The result of an evaluation run under [`catch_quietly`]: a panic in words.
fn caught<T>(outcome: std::thread::Result<Result<T, ExecutionError>>) -> Result<T, Failure> {
    match outcome {
        Ok(result) => result.map_err(Failure::Error),
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Failure::Panic(format!("the interpreter failed: {why}")))
        }
    }
}

/// Evaluates `e` in `scope` (its variables first).
fn run(
    vars: &mut Variables<'_>,
    scope: &mut CelContext<'_>,
    e: &CelExpression,
) -> Result<Value, String> {
    if !e.needs.is_empty() {
        vars.ensure(scope, &e.needs);
    }
    resolve(scope, &e.ast).map_err(|err| match (vars.failed(&e.needs), err) {
        (_, Failure::Panic(why)) => why,
        (Some((name, why)), Failure::Error(_)) => {
            format!("composited variable \"{name}\" fails to evaluate: {why}")
        }
        (None, Failure::Error(err)) => describe(&err),
    })
}

/// Runs the rule's match conditions and validations in `scope`, reporting each violation
/// as (check number, message, hint): validations are numbered from 0, match conditions
/// after them.
fn judge(
    vars: &mut Variables<'_>,
    scope: &mut CelContext<'_>,
    report: &mut dyn FnMut(usize, String, String),
) {
    let rule = vars.rule;
    // As the API server: every condition is evaluated; one that gives `false` skips the
    // rule, even when another failed; otherwise the first failure is the violation.
    let mut failed: Option<(usize, String)> = None;
    for (j, m) in rule.match_conditions.iter().enumerate() {
        let part = rule.validations.len() + j;
        let why = match run(vars, scope, m) {
            Ok(Value::Bool(true)) => continue,
            Ok(Value::Bool(false)) => return,
            Ok(other) => format!("it gave {} rather than a bool", type_name(&other)),
            Err(e) => e,
        };
        if failed.is_none() {
            failed = Some((
                part,
                format!("matchCondition '{}' resulted in error: {why}", m.name),
            ));
        }
    }
    if let Some((part, message)) = failed {
        report(part, message, ERROR_HINT.to_owned());
        return;
    }
    for (i, v) in rule.validations.iter().enumerate() {
        let text = || v.check.text.trim();
        match run(vars, scope, &v.check) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let message = v
                    .message_expression
                    .as_ref()
                    .and_then(|m| match run(vars, scope, m) {
                        Ok(Value::String(s)) if !s.trim().is_empty() && !s.contains('\n') => {
                            Some(s.trim().to_owned())
                        }
                        _ => None,
                    })
                    // The API server trims `message` as it does `messageExpression`'s value.
                    .or_else(|| v.message.as_ref().map(|m| m.trim().to_owned()))
                    .unwrap_or_else(|| format!("failed expression: {}", text()));
                report(i, message, String::new());
            }
            Ok(other) => report(
                i,
                format!(
                    "expression '{}' resulted in error: it gave {} rather than a bool",
                    text(),
                    type_name(&other)
                ),
                ERROR_HINT.to_owned(),
            ),
            Err(e) => report(
                i,
                format!("expression '{}' resulted in error: {e}", text()),
                ERROR_HINT.to_owned(),
            ),
        }
    }
}

fn type_name(v: &Value) -> String {
    v.type_of().to_string()
}
