//! The `cel` rule: evaluates a platform team's CEL validations (compiled at load, see
//! `policy/compile/cel.rs`) against the review, as a ValidatingAdmissionPolicy would with
//! `failurePolicy: Fail`. The review's values are made once (`cel_values.rs`), when a CEL
//! rule first needs them; each rule then runs in its own scope.

use std::cell::Cell;
use std::sync::Once;

use kube_core::cel::cel::{Context as CelContext, ExecutionError, IdedExpr, Value};

use super::cel_values::{Val, empty_map, put, put_entry, take};
use super::rule::{Context, Found};
use crate::policy::{CelExpression, CompiledCel};
use crate::workload::ContainerRef;

/// The hint of a violation that is an error rather than a false validation.
const ERROR_HINT: &str = "the expression could not be evaluated on this object; Portcullis denies then, as the API server does with failurePolicy: Fail (fix the expression, or guard it with has() or ?.)";

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
        for c in &containers {
            let mut scope = bound.ctx.new_inner_scope();
            put(&mut scope, "container", bound.take_container(c));
            judge(rule, &mut scope, &mut |part, message, hint| {
                out.push(Found::in_container(w, c, &[], message, hint).part(part));
            });
            if let Some(value) = take(&mut scope, "container") {
                bound.give_back(c, value);
            }
        }
    } else {
        judge(
            rule,
            &mut bound.ctx.new_inner_scope(),
            &mut |part, message, hint| {
                out.push(Found::in_object(String::new(), message, hint).part(part));
            },
        );
    }
}

/// The variables of one scope, each evaluated at most once; those that gave a value are
/// bound in the scope's `variables` map.
struct Variables<'r> {
    rule: &'r CompiledCel,
    /// Per variable: not yet evaluated, evaluated (`Ok`), or why it failed.
    values: Vec<Option<Result<(), String>>>,
}

impl Variables<'_> {
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
                    put_entry(scope, "variables", &v.name, value);
                    Ok(())
                }
                Err(failure) => {
                    // The map is bound all the same, without this one.
                    let map = take(scope, "variables").unwrap_or_else(empty_map);
                    put(scope, "variables", map);
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
    rule: &CompiledCel,
    scope: &mut CelContext<'_>,
    report: &mut dyn FnMut(usize, String, String),
) {
    let mut vars = Variables {
        rule,
        values: vec![None; rule.variables.len()],
    };
    // As the API server: every condition is evaluated; one that gives `false` skips the
    // rule, even when another failed; otherwise the first failure is the violation.
    let mut failed: Option<(usize, String)> = None;
    for (j, m) in rule.match_conditions.iter().enumerate() {
        let part = rule.validations.len() + j;
        let why = match run(&mut vars, scope, m) {
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
        let text = v.check.text.trim();
        match run(&mut vars, scope, &v.check) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let message = v
                    .message_expression
                    .as_ref()
                    .and_then(|m| match run(&mut vars, scope, m) {
                        Ok(Value::String(s)) if !s.trim().is_empty() && !s.contains('\n') => {
                            Some(s.trim().to_owned())
                        }
                        _ => None,
                    })
                    // The API server trims `message` as it does `messageExpression`'s value.
                    .or_else(|| v.message.as_ref().map(|m| m.trim().to_owned()))
                    .unwrap_or_else(|| format!("failed expression: {text}"));
                report(i, message, String::new());
            }
            Ok(other) => report(
                i,
                format!(
                    "expression '{text}' resulted in error: it gave {} rather than a bool",
                    type_name(&other)
                ),
                ERROR_HINT.to_owned(),
            ),
            Err(e) => report(
                i,
                format!("expression '{text}' resulted in error: {e}"),
                ERROR_HINT.to_owned(),
            ),
        }
    }
}

fn type_name(v: &Value) -> String {
    v.type_of().to_string()
}
