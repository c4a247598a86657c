//! Lowering of a checked `cel` rule for the interpreter (cel 0.13): each expression is
//! rewritten into one that means the same and that the interpreter evaluates with fewer
//! copies. It runs after the checks, the reads and the cost estimate, which all see the
//! expressions as written (and `optional_selects`' rewrite); only the engine sees the lowered
//! form. The rewrites:
//!
//! - **`variables.NAME` becomes the identifier `variables.NAME`**, which the engine binds to
//!   the variable's value ([`variable_ident`]). No expression can spell that identifier (a dot
//!   is not part of a CEL identifier), so it cannot clash. The interpreter deep-copies a map's
//!   entry at every select: `variables.labels` inside `all(k, k in variables.labels)` copied
//!   the whole map once per element. An identifier is read by reference. A rule whose
//!   expressions test a variable with `has(variables.NAME)` keeps the `variables` map.
//! - **`(c ? optional.of(p) : optional.none()).orValue(d)` becomes `c ? p : d`** when `d` is
//!   a constant (a literal, or a list or map of them). That is what `x.?f.orValue(d)` is after
//!   `optional_selects`, without the optional value being made, converted for the call and
//!   unwrapped. `orValue` evaluates `d` either way; a constant cannot fail, so not evaluating
//!   it when `p` is there changes nothing.
//! - **A field of a value that is always a map is read by index** (`object.spec` becomes
//!   `object['spec']`; see [`ALWAYS_MAPS`]), and so is each step of a path whose fields an
//!   optional select's condition has tested (`tested_paths_indexed`): an index borrows the
//!   field's value where a select copies it.
//! - In a `forEachContainer` rule, the variables that read no `container` are marked to be
//!   evaluated once for all the containers (`shared_variables`), and a container whose value
//!   is identical to one judged before gets that one's outcome
//!   ([`CompiledCel::identical_containers_once`]).
//!
//! `tests/cel_lowering.rs` judges the corpus and the shipped policies with and without the
//! lowering and requires the same words.

use std::cell::Cell;

use kube_core::cel::cel::IdedExpr;
use kube_core::cel::cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue, SelectExpr};

use super::super::{CompiledCel, variable_ident};

thread_local! {
    /// On while [`unlowered`] runs.
    static UNLOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the `cel` rules it compiles left as checked: not lowered, their variables
/// in the `variables` map, each container judged on its own. For the test that proves the
/// lowering changes no verdict and no word (tests/cel_lowering.rs).
#[doc(hidden)]
pub fn unlowered<R>(f: impl FnOnce() -> R) -> R {
    let was = UNLOWERED.with(|u| u.replace(true));
    let result = f();
    UNLOWERED.with(|u| u.set(was));
    result
}

/// Lowers every expression of `rule`; `variables_by_name` says how its variables are bound.
/// `variable_reads` holds the variables each variable reads directly.
pub(super) fn lower(rule: &mut CompiledCel, variable_reads: &[Vec<usize>]) {
    if UNLOWERED.with(Cell::get) {
        return;
    }
    rule.identical_containers_once = true;
    let by_name = !rule
        .expressions()
        .any(|e| tests_a_variable(&e.ast, &mut Vec::new()));
    rule.variables_by_name = by_name;
    // Shared variables are bound in a scope above the containers' own: by name only (in map
    // form a container's `variables` map would hide the shared one).
    if by_name {
        rule.shared_variables = shared_variables(rule, variable_reads);
    }
    for e in rule.expressions_mut() {
        lower_expression(&mut e.ast, by_name, &mut Vec::new());
    }
}

/// The variables of a `forEachContainer` rule that are the same for every container: those
/// that read no `container`, directly or through other variables, and that a match condition
/// or a validation needs (a variable only a message expression reads is left to be evaluated
/// when a container fails). Evaluating them once rather than per container changes nothing
/// but the work: an expression's value depends only on what it reads, and a variable's error
/// is reported only where an expression that needs it is evaluated, as before.
fn shared_variables(rule: &CompiledCel, variable_reads: &[Vec<usize>]) -> Vec<usize> {
    if !rule.for_each_container {
        return Vec::new();
    }
    let mut per_container: Vec<bool> = Vec::with_capacity(rule.variables.len());
    for (i, v) in rule.variables.iter().enumerate() {
        let through = variable_reads
            .get(i)
            .into_iter()
            .flatten()
            .any(|&j| per_container.get(j).copied().unwrap_or(true));
        per_container.push(through || mentions(&v.ast, "container", &mut Vec::new()));
    }
    let mut shared: Vec<usize> = rule
        .match_conditions
        .iter()
        .chain(rule.validations.iter().map(|v| &v.check))
        .flat_map(|e| e.needs.iter().copied())
        .filter(|&i| per_container.get(i) == Some(&false))
        .collect();
    shared.sort_unstable();
    shared.dedup();
    shared
}

/// Whether `e` reads the identifier `name` (not a comprehension's own).
fn mentions(e: &IdedExpr, name: &str, bound: &mut Vec<String>) -> bool {
    is_free(e, name, bound)
        || children_any(e, bound, &mut |child, bound| mentions(child, name, bound))
}

/// Whether `e` holds `has(variables.NAME)` (with `variables` not a comprehension's own).
fn tests_a_variable(e: &IdedExpr, bound: &mut Vec<String>) -> bool {
    if let Expr::Select(s) = &e.expr
        && s.test
        && is_free(&s.operand, "variables", bound)
    {
        return true;
    }
    children_any(e, bound, &mut |child, bound| tests_a_variable(child, bound))
}

/// Whether `e` is the identifier `name`, not bound by an enclosing comprehension.
fn is_free(e: &IdedExpr, name: &str, bound: &[String]) -> bool {
    matches!(&e.expr, Expr::Ident(n) if n == name) && !bound.iter().any(|b| b == name)
}

/// Whether `f` holds for a child of `e`; `bound` holds the comprehension variables in scope.
fn children_any(
    e: &IdedExpr,
    bound: &mut Vec<String>,
    f: &mut dyn FnMut(&IdedExpr, &mut Vec<String>) -> bool,
) -> bool {
    match &e.expr {
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(&call.args)
            .any(|a| f(a, bound)),
        Expr::Select(s) => f(&s.operand, bound),
        Expr::List(l) => l.elements.iter().any(|x| f(x, bound)),
        Expr::Map(m) => m.entries.iter().any(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => f(&me.key, bound) || f(&me.value, bound),
            EntryExpr::StructField(_) => false,
        }),
        Expr::Comprehension(c) => {
            // The range and the initial value are outside the comprehension's scope.
            if f(&c.iter_range, bound) || f(&c.accu_init, bound) {
                return true;
            }
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.push(c.accu_var.clone());
            let any = [&c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .any(|x| f(x, bound));
            bound.truncate(depth);
            any
        }
        // Message literals are refused at load (`check_names`).
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) | Expr::Struct(_) => false,
    }
}

/// The variables the engine always binds to a map (`engine/cel_values.rs`: the object, the
/// request, and each container): a field of one is read by index (`object['spec']`), which
/// borrows the field's value, where a select copies it. On a map the two give the same value,
/// and the same error (`no such key`) when the field is missing; they differ only on other
/// values (a select gives `false`, an index an error), which these never are.
const ALWAYS_MAPS: [&str; 3] = ["object", "request", "container"];

/// Lowers `e` in place: the tested paths before the children are lowered (they are matched
/// as `optional_selects` wrote them), the `orValue` after (it matches what they became).
fn lower_expression(e: &mut IdedExpr, variables_by_name: bool, bound: &mut Vec<String>) {
    if let Some(indexed) = tested_paths_indexed(e) {
        e.expr = indexed;
    }
    match &mut e.expr {
        Expr::Call(call) => {
            for a in call.target.as_deref_mut().into_iter().chain(&mut call.args) {
                lower_expression(a, variables_by_name, bound);
            }
        }
        Expr::Select(s) => {
            if variables_by_name && !s.test && is_free(&s.operand, "variables", bound) {
                e.expr = Expr::Ident(variable_ident(&s.field));
                return;
            }
            if !s.test && ALWAYS_MAPS.iter().any(|r| is_free(&s.operand, r, bound)) {
                e.expr = indexed(&s.operand, &[&s.field], e.id).expr;
                return;
            }
            lower_expression(&mut s.operand, variables_by_name, bound);
        }
        Expr::List(l) => {
            for x in &mut l.elements {
                lower_expression(x, variables_by_name, bound);
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    lower_expression(&mut me.key, variables_by_name, bound);
                    lower_expression(&mut me.value, variables_by_name, bound);
                }
            }
        }
        Expr::Comprehension(c) => {
            lower_expression(&mut c.iter_range, variables_by_name, bound);
            lower_expression(&mut c.accu_init, variables_by_name, bound);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.push(c.accu_var.clone());
            for x in [&mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                lower_expression(x, variables_by_name, bound);
            }
            bound.truncate(depth);
        }
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) | Expr::Struct(_) => {}
    }
    if let Some(fused) = or_value_of_optional(e) {
        e.expr = fused;
    }
}

/// For `g && has(x.f1) && has(x.f1.f2) && ... ? V : E` (the condition `optional_selects`
/// writes; `g` optional), the same with each path whose fields the condition has tested
/// read by index: `has(x['f1'].f2)`, and `V` likewise when it is the whole path `x.f1...fn`
/// or `optional.of` it. The interpreter copies a field's value at every select and borrows
/// it at an index; on a map that holds the key the two give the same value, and a path is
/// evaluated only after the tests before it were true (`&&` stops at the first false), so
/// every step of an indexed path is such a map.
fn tested_paths_indexed(e: &IdedExpr) -> Option<Expr> {
    let Expr::Call(choice) = &e.expr else {
        return None;
    };
    let [condition, then, otherwise] = choice.args.as_slice() else {
        return None;
    };
    if choice.func_name != "_?_:_" || choice.target.is_some() {
        return None;
    }
    let mut tests = conjuncts(condition);
    // The tests `has(P.f)` at the end, each path the one before it and its field.
    let first = tests.iter().position(|t| tested_select(t).is_some())?;
    let (base, field) = tested_select(tests[first])?;
    // `optional_selects` gives its nodes one id: compared with it, the paths match exactly.
    let id = tests[first].id;
    let mut fields = vec![field];
    for t in &tests[first + 1..] {
        let (operand, field) = tested_select(t)?;
        if *operand != path(base, &fields, id) {
            return None;
        }
        fields.push(field);
    }
    let mut new_tests: Vec<IdedExpr> = tests.drain(..first).cloned().collect();
    for (i, field) in fields.iter().enumerate() {
        let tested = tests[i];
        let Expr::Select(s) = &tested.expr else {
            return None;
        };
        let mut select = s.clone();
        *select.operand = indexed(base, &fields[..i], id);
        select.field = (*field).to_owned();
        new_tests.push(IdedExpr {
            id: tested.id,
            expr: Expr::Select(select),
        });
    }
    let whole = path(base, &fields, id);
    let then = if *then == whole {
        indexed(base, &fields, id)
    } else if let Expr::Call(of) = &then.expr
        && let Some([value]) = optional_call(then, "of")
        && *value == whole
    {
        let mut of = of.clone();
        of.args = vec![indexed(base, &fields, id)];
        IdedExpr {
            id: then.id,
            expr: Expr::Call(of),
        }
    } else {
        then.clone()
    };
    let mut condition = new_tests.remove(0);
    for t in new_tests {
        condition = IdedExpr {
            id: condition.id,
            expr: Expr::Call(CallExpr {
                func_name: "_&&_".to_owned(),
                target: None,
                args: vec![condition, t],
            }),
        };
    }
    Some(Expr::Call(CallExpr {
        func_name: "_?_:_".to_owned(),
        target: None,
        args: vec![condition, then, otherwise.clone()],
    }))
}

/// The operands of a chain of `&&`, left to right.
fn conjuncts(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(call)
            if call.func_name == "_&&_" && call.target.is_none() && call.args.len() == 2 =>
        {
            let mut left = conjuncts(&call.args[0]);
            left.extend(conjuncts(&call.args[1]));
            left
        }
        _ => vec![e],
    }
}

/// `(P, f)` for `has(P.f)`.
fn tested_select(e: &IdedExpr) -> Option<(&IdedExpr, &str)> {
    match &e.expr {
        Expr::Select(s) if s.test => Some((&s.operand, &s.field)),
        _ => None,
    }
}

/// `base.f1.f2...` as selects, the selects' id `id`.
fn path(base: &IdedExpr, fields: &[&str], id: u64) -> IdedExpr {
    fields.iter().fold(base.clone(), |operand, field| IdedExpr {
        id,
        expr: Expr::Select(SelectExpr {
            operand: Box::new(operand),
            field: (*field).to_owned(),
            test: false,
        }),
    })
}

/// `base['f1']['f2']...`, the new nodes' id `id`.
fn indexed(base: &IdedExpr, fields: &[&str], id: u64) -> IdedExpr {
    fields.iter().fold(base.clone(), |operand, field| IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: "_[_]".to_owned(),
            target: None,
            args: vec![
                operand,
                IdedExpr {
                    id,
                    expr: Expr::Literal(LiteralValue::String((*field).into())),
                },
            ],
        }),
    })
}

/// `c ? p : d` for `(c ? optional.of(p) : optional.none()).orValue(d)` with `d` a constant.
fn or_value_of_optional(e: &IdedExpr) -> Option<Expr> {
    let Expr::Call(or_value) = &e.expr else {
        return None;
    };
    if or_value.func_name != "orValue" || or_value.args.len() != 1 {
        return None;
    }
    let default = &or_value.args[0];
    if !is_constant(default) {
        return None;
    }
    let Expr::Call(choice) = &or_value.target.as_deref()?.expr else {
        return None;
    };
    let [condition, of, none] = choice.args.as_slice() else {
        return None;
    };
    if choice.func_name != "_?_:_" || choice.target.is_some() {
        return None;
    }
    let present = match optional_call(of, "of")? {
        [p] => p,
        _ => return None,
    };
    if !optional_call(none, "none")?.is_empty() {
        return None;
    }
    Some(Expr::Call(CallExpr {
        func_name: "_?_:_".to_owned(),
        target: None,
        args: vec![condition.clone(), present.clone(), default.clone()],
    }))
}

/// The arguments of `optional.NAME(...)`. The interpreter calls the function `optional.NAME`
/// whatever the identifier `optional` is bound to, so a comprehension's `optional` does not
/// change what this is.
fn optional_call<'e>(e: &'e IdedExpr, name: &str) -> Option<&'e [IdedExpr]> {
    match &e.expr {
        Expr::Call(call)
            if call.func_name == name
                && matches!(call.target.as_deref().map(|t| &t.expr), Some(Expr::Ident(ns)) if ns == "optional") =>
        {
            Some(&call.args)
        }
        _ => None,
    }
}

/// Whether evaluating `e` cannot fail: a literal, or a list or map of constants (map keys of
/// the types a map key may have, no optional entries).
fn is_constant(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(_) => true,
        Expr::List(l) => l.optional_indices.is_empty() && l.elements.iter().all(is_constant),
        Expr::Map(m) => m.entries.iter().all(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => {
                !me.optional
                    && matches!(
                        &me.key.expr,
                        Expr::Literal(
                            LiteralValue::String(_)
                                | LiteralValue::Int(_)
                                | LiteralValue::UInt(_)
                                | LiteralValue::Boolean(_)
                        )
                    )
                    && is_constant(&me.value)
            }
            EntryExpr::StructField(_) => false,
        }),
        _ => false,
    }
}
