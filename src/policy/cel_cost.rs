//! What a `cel` rule can cost: a worst-case estimate over the expressions' syntax trees, as a
//! polynomial in the size `S` of what the review binds (the object, the old object, the
//! namespace): one unit per JSON value, plus one per 16 bytes of strings and keys. A list
//! has at most `S` elements; a string at most `16·S` bytes. The interpreter has no budget of its own, so:
//!
//! - at load, a rule is refused when its cost grows faster than `S^MAX_DEGREE`, when it
//!   makes lists of a length only known at run time (`lists.range(n)`), or when even an
//!   ordinary object ([`TYPICAL_SIZE`]) would exceed the budget;
//! - at run time, before a rule runs, its polynomial is evaluated at the review's actual `S`:
//!   a rule over the budget is not run, and is a violation (fail closed) saying so.
//!
//! The estimate is an upper bound of what the interpreter (`cel` 0.13: every iteration copies
//! its element and its accumulator, shallowly, as its lists, maps and strings are behind
//! `Arc`) does:
//! - a value read from the review is at most `S` in size, and so is each part of it;
//! - a comprehension over a list of size `r` runs at most `r` times; its body costs `g(s)`
//!   where `s` is the size of the element. `g` is a polynomial with non-negative coefficients,
//!   so convex, and the elements' sizes sum to at most `r`: the total is at most
//!   `r·g(0) + g(r)` (the worst case puts all the data in one element);
//! - each step copies the accumulator, one unit per element: for `map` and `filter` (whose
//!   accumulator grows to `n` elements) that is quadratic, as it is in the interpreter;
//! - `+` and the string and list functions cost the size of what they read and make;
//!   `matches` costs the product of the string's and the pattern's size plus the compilation
//!   of the pattern (the `regex` crate runs in linear time: no backtracking blow-up).

use kube_core::cel::cel::IdedExpr;
use kube_core::cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};

use super::{CelExpression, CompiledCel};

/// The highest power of `S` a rule's cost may grow with.
pub const MAX_DEGREE: usize = 4;
/// The cost a rule may have on one review (in the estimate's units: about one value visited
/// or copied, or 16 bytes of a string read or made). See BENCHMARKS.md "CEL rules" for what
/// a unit costs in time.
pub const BUDGET: f64 = 20_000_000.0;
/// The cost all the CEL rules may have together on one object: a rule that would take the
/// total past it is not run (a violation saying so).
pub const REVIEW_BUDGET: f64 = 3.0 * BUDGET;
/// The size of values a rule may make on one review (same units), bounding its memory.
pub const MEMORY_BUDGET: f64 = 8_000_000.0;
/// The size of an ordinary large object (in units: about a Deployment of 20 containers, or
/// 16 KiB of JSON): a rule over the budget there is refused at load.
pub const TYPICAL_SIZE: f64 = 2_000.0;
/// The hint of every cost refusal.
pub const HINT: &str = "iterate the data once (no comprehension over a list inside a comprehension over another list), declare shared values under `variables`, and use literal bounds; see docs/cel.md, \"Cost\"";

/// A polynomial in `S` with non-negative coefficients, `0[i]` the coefficient of `S^i`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Poly(pub [f64; MAX_DEGREE + 1]);

impl Poly {
    /// A constant.
    pub fn constant(c: f64) -> Poly {
        let mut p = [0.0; MAX_DEGREE + 1];
        p[0] = c;
        Poly(p)
    }

    /// `S`.
    pub fn s() -> Poly {
        let mut p = [0.0; MAX_DEGREE + 1];
        p[1] = 1.0;
        Poly(p)
    }

    /// The value at `s`.
    pub fn at(&self, s: f64) -> f64 {
        self.0.iter().rev().fold(0.0, |acc, c| acc * s + c)
    }

    fn plus(self, o: Poly) -> Poly {
        let mut p = self.0;
        for (a, b) in p.iter_mut().zip(o.0) {
            *a += b;
        }
        Poly(p)
    }

    fn max(self, o: Poly) -> Poly {
        let mut p = self.0;
        for (a, b) in p.iter_mut().zip(o.0) {
            *a = a.max(b);
        }
        Poly(p)
    }

    /// The product, or `None` when its degree exceeds [`MAX_DEGREE`].
    fn times(self, o: Poly) -> Option<Poly> {
        let mut p = [0.0; MAX_DEGREE + 1];
        for (i, a) in self.0.iter().enumerate() {
            for (j, b) in o.0.iter().enumerate() {
                if *a == 0.0 || *b == 0.0 {
                    continue;
                }
                *p.get_mut(i + j)? += a * b;
            }
        }
        Some(Poly(p))
    }
}

/// What a rule can cost, as polynomials in `S`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Steps (values visited or copied, bytes read or made).
    pub steps: Poly,
    /// The size of the values it makes, at most (memory).
    pub memory: Poly,
}

impl Cost {
    /// Why the rule is refused at load, if it is: over the budget on an ordinary object.
    pub fn check_at_load(&self) -> Result<(), String> {
        self.check(TYPICAL_SIZE, 0.0).map_err(|why| {
            format!("the rule is too expensive: {why} on an ordinary object (about 16 KiB of JSON)")
        })
    }

    /// Why the rule may not run on an object of size `s` after rules that cost `spent`, if
    /// so.
    pub fn check(&self, s: f64, spent: f64) -> Result<(), String> {
        let steps = self.steps.at(s);
        if steps > BUDGET {
            return Err(format!(
                "its estimated cost is {steps:.0}, over the budget of {BUDGET:.0}"
            ));
        }
        if spent + steps > REVIEW_BUDGET {
            return Err(format!(
                "its estimated cost ({steps:.0}) would take the CEL rules of this object past their budget of {REVIEW_BUDGET:.0}"
            ));
        }
        let memory = self.memory.at(s);
        if memory > MEMORY_BUDGET {
            return Err(format!(
                "the values it makes may reach {memory:.0} units, over the memory budget of {MEMORY_BUDGET:.0}"
            ));
        }
        Ok(())
    }
}

/// Why an expression is refused at load, and where.
#[derive(Debug)]
pub struct Refusal {
    /// `variables`, `matchConditions` or `validations`.
    pub field: &'static str,
    /// The index in that list.
    pub index: usize,
    /// `expression` or `messageExpression`.
    pub key: &'static str,
    /// The expression's text, and what to point at in it.
    pub text: String,
    pub needle: String,
    /// What is wrong.
    pub message: String,
}

/// The estimate of one expression: its cost and the size of its value.
#[derive(Debug, Clone, Copy, Default)]
struct Est {
    cost: Poly,
    size: Poly,
    /// The largest value made along the way.
    peak: Poly,
}

/// Why an expression cannot be bounded: (what to point at, message).
type Unbounded = (String, String);

struct Estimator<'a> {
    /// Names bound to sizes: iteration variables, accumulators, `container`.
    bound: Vec<(String, Poly)>,
    /// The sizes of the rule's variables.
    variables: &'a [Poly],
    names: &'a [String],
}

fn too_deep(what: &str) -> Unbounded {
    (
        what.to_owned(),
        format!(
            "the rule's cost grows faster than the size of the object to the power {MAX_DEGREE} (comprehensions nested too deep)"
        ),
    )
}

impl Estimator<'_> {
    fn size_of(&self, name: &str) -> Poly {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Poly::s(), |(_, s)| *s)
    }

    fn est(&mut self, e: &IdedExpr) -> Result<Est, Unbounded> {
        let one = Poly::constant(1.0);
        Ok(match &e.expr {
            Expr::Unspecified => Est::default(),
            Expr::Literal(l) => {
                let size = match l {
                    LiteralValue::String(s) => Poly::constant(s.len() as f64 / 16.0 + 1.0),
                    LiteralValue::Bytes(b) => Poly::constant(b.len() as f64 / 16.0 + 1.0),
                    _ => one,
                };
                Est {
                    cost: one,
                    size,
                    peak: size,
                }
            }
            Expr::Ident(name) => Est {
                cost: one,
                size: self.size_of(name),
                peak: Poly::default(),
            },
            Expr::Select(s) => {
                if let Expr::Ident(root) = &s.operand.expr
                    && root == "variables"
                    && let Some(i) = self.names.iter().position(|n| *n == s.field)
                {
                    let size = self.variables.get(i).copied().unwrap_or_default();
                    return Ok(Est {
                        cost: one,
                        size,
                        peak: Poly::default(),
                    });
                }
                let o = self.est(&s.operand)?;
                Est {
                    cost: o.cost.plus(one),
                    // A field's value may be copied out (`_?._` wraps it in an optional).
                    size: o.size,
                    peak: o.peak.max(o.size),
                }
            }
            Expr::List(l) => {
                let mut out = Est {
                    cost: one,
                    size: Poly::constant(l.elements.len() as f64 + 1.0),
                    peak: Poly::default(),
                };
                for x in &l.elements {
                    let x = self.est(x)?;
                    out.cost = out.cost.plus(x.cost).plus(x.size);
                    out.size = out.size.plus(x.size);
                    out.peak = out.peak.max(x.peak);
                }
                out.peak = out.peak.max(out.size);
                out
            }
            Expr::Map(m) => {
                let mut out = Est {
                    cost: one,
                    size: Poly::constant(m.entries.len() as f64 + 1.0),
                    peak: Poly::default(),
                };
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        for x in [&me.key, &me.value] {
                            let x = self.est(x)?;
                            out.cost = out.cost.plus(x.cost).plus(x.size);
                            out.size = out.size.plus(x.size);
                            out.peak = out.peak.max(x.peak);
                        }
                    }
                }
                out.peak = out.peak.max(out.size);
                out
            }
            Expr::Struct(_) => Est::default(),
            Expr::Call(call) => self.call(call)?,
            Expr::Comprehension(c) => {
                let range = self.est(&c.iter_range)?;
                let init = self.est(&c.accu_init)?;
                let n = range.size;
                // The step's value for an element of size `s` and an accumulator of size `a`.
                let step_size = |me: &mut Self, s: Poly, a: Poly| -> Result<Poly, Unbounded> {
                    me.bound.push((c.iter_var.clone(), s));
                    me.bound.push((c.accu_var.clone(), a));
                    let r = me.est(&c.loop_step);
                    me.bound.truncate(me.bound.len() - 2);
                    Ok(r?.size)
                };
                // A step that keeps the accumulator (`map`, `filter`: `@result + [x]`) grows
                // it by what it adds; one that replaces it (`all`, `exists`) does not.
                let g0 = step_size(self, Poly::default(), Poly::default())?;
                let gs = step_size(self, range.size, Poly::default())?;
                let keeps = step_size(self, Poly::default(), Poly::constant(1.0))? != g0;
                let accu = if keeps {
                    n.times(g0)
                        .ok_or_else(|| too_deep(&c.iter_var))?
                        .plus(gs)
                        .plus(init.size)
                } else {
                    gs.max(init.size)
                };
                // The interpreter's copies of the element and the accumulator are shallow
                // (its lists, maps and strings are behind `Arc`): one unit per element of
                // the copied list, which a kept accumulator has at most `n` of.
                let copies = if keeps {
                    n.plus(init.size).plus(Poly::constant(1.0))
                } else {
                    Poly::constant(2.0)
                };
                // One step: the condition, the step, and those copies.
                let step = |me: &mut Self, s: Poly| -> Result<Est, Unbounded> {
                    me.bound.push((c.iter_var.clone(), s));
                    me.bound.push((c.accu_var.clone(), accu));
                    let cond = me.est(&c.loop_cond);
                    let body = me.est(&c.loop_step);
                    me.bound.truncate(me.bound.len() - 2);
                    let (cond, body) = (cond?, body?);
                    Ok(Est {
                        cost: cond.cost.plus(body.cost).plus(copies),
                        size: body.size,
                        peak: cond.peak.max(body.peak),
                    })
                };
                let s0 = step(self, Poly::default())?;
                let ss = step(self, range.size)?;
                self.bound.push((c.accu_var.clone(), accu));
                let result = self.est(&c.result);
                self.bound.pop();
                let result = result?;
                let loops = n
                    .times(s0.cost)
                    .ok_or_else(|| too_deep(&c.iter_var))?
                    .plus(ss.cost);
                Est {
                    cost: range.cost.plus(init.cost).plus(loops).plus(result.cost),
                    size: result.size,
                    peak: range
                        .peak
                        .max(accu)
                        .max(s0.peak)
                        .max(ss.peak)
                        .max(result.peak),
                }
            }
        })
    }

    fn call(
        &mut self,
        call: &kube_core::cel::cel::common::ast::CallExpr,
    ) -> Result<Est, Unbounded> {
        let one = Poly::constant(1.0);
        let qualified = match call.target.as_deref().map(|t| &t.expr) {
            Some(Expr::Ident(ns)) if self.bound.iter().all(|(b, _)| b != ns) && ns_like(ns) => {
                Some(format!("{ns}.{}", call.func_name))
            }
            _ => None,
        };
        let name = qualified.as_deref().unwrap_or(&call.func_name);
        let mut args = Vec::with_capacity(call.args.len() + 1);
        if qualified.is_none()
            && let Some(t) = &call.target
        {
            args.push(self.est(t)?);
        }
        for a in &call.args {
            args.push(self.est(a)?);
        }
        let cost_of_args = args.iter().fold(one, |acc, a| acc.plus(a.cost));
        let peak_of_args = args.iter().fold(Poly::default(), |acc, a| acc.max(a.peak));
        let size = |i: usize| args.get(i).map_or(Poly::default(), |a| a.size);
        let all_sizes = args.iter().fold(Poly::default(), |acc, a| acc.plus(a.size));
        let (work, out) = match name {
            "_?_:_" => {
                // The condition and the larger branch.
                let (c, a, b) = (
                    args.first().copied().unwrap_or_default(),
                    args.get(1).copied().unwrap_or_default(),
                    args.get(2).copied().unwrap_or_default(),
                );
                return Ok(Est {
                    cost: c.cost.plus(a.cost.max(b.cost)).plus(one),
                    size: a.size.max(b.size),
                    peak: c.peak.max(a.peak).max(b.peak),
                });
            }
            "_&&_"
            | "_||_"
            | "!_"
            | "@not_strictly_false"
            | "-_"
            | "_*_"
            | "_/_"
            | "_%_"
            | "_-_" => (Poly::default(), one),
            "_+_" => (all_sizes, all_sizes),
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "@in" => (all_sizes, one),
            "_[_]" | "_[?_]" | "_?._" => (size(0), size(0)),
            "lists.range" => {
                let Some(Expr::Literal(LiteralValue::Int(n))) = call.args.first().map(|a| &a.expr)
                else {
                    return Err((
                        "lists.range".to_owned(),
                        "`lists.range` with a bound computed at run time can make a list of any length".to_owned(),
                    ));
                };
                let n = Poly::constant((**n).max(0) as f64 + 1.0);
                (n, n)
            }
            "matches" | "find" | "findAll" => {
                // Compiling the pattern, and running it over the string (linear in both).
                let (s, p) = (size(0), size(1));
                let run = s
                    .plus(one)
                    .times(p.plus(one))
                    .ok_or_else(|| too_deep(name))?;
                let compile = p
                    .times(Poly::constant(100.0))
                    .ok_or_else(|| too_deep(name))?;
                (run.plus(compile), s)
            }
            "replace" => {
                // `s.replace(old, new)`: every position of `s` may become `new`.
                // Bytes: (16·s)·(16·n), in units of 16 bytes.
                let grown = size(0)
                    .plus(one)
                    .times(size(2).plus(one))
                    .and_then(|p| p.times(Poly::constant(16.0)))
                    .ok_or_else(|| too_deep(name))?;
                (grown.plus(all_sizes), grown)
            }
            "sets.contains" | "sets.equivalent" | "sets.intersects" | "distinct" | "indexOf"
            | "lastIndexOf" | "sort" | "isSorted" => {
                let sq = size(0)
                    .plus(one)
                    .times(size(1).plus(size(0)).plus(one))
                    .ok_or_else(|| too_deep(name))?;
                (sq, all_sizes)
            }
            "string" | "format" | "strings.quote" => {
                let out = all_sizes
                    .times(Poly::constant(4.0))
                    .ok_or_else(|| too_deep(name))?;
                (out, out)
            }
            _ => (all_sizes, all_sizes),
        };
        Ok(Est {
            cost: cost_of_args.plus(work),
            size: out,
            peak: peak_of_args.max(out),
        })
    }
}

/// Whether `ns` names a function namespace rather than a variable.
fn ns_like(ns: &str) -> bool {
    matches!(
        ns,
        "optional"
            | "base64"
            | "format"
            | "ip"
            | "jsonpatch"
            | "lists"
            | "math"
            | "sets"
            | "strings"
    )
}

/// Estimates a compiled rule. The rule's variables are each paid once; in the
/// per-container form everything runs once per container, with the container's size bound
/// the same way as a comprehension's element.
pub fn estimate(rule: &CompiledCel) -> Result<Cost, Refusal> {
    let names: Vec<String> = rule.variables.iter().map(|v| v.name.clone()).collect();
    // Every expression, with where it sits.
    let mut located: Vec<(&'static str, usize, &'static str, &CelExpression)> = Vec::new();
    for (i, m) in rule.match_conditions.iter().enumerate() {
        located.push(("matchConditions", i, "expression", m));
    }
    for (i, v) in rule.validations.iter().enumerate() {
        located.push(("validations", i, "expression", &v.check));
        if let Some(m) = &v.message_expression {
            located.push(("validations", i, "messageExpression", m));
        }
    }
    let run = |container: Poly| -> Result<Est, Refusal> {
        let mut sizes: Vec<Poly> = Vec::new();
        let mut total = Est::default();
        let refusal =
            |field, index, key, e: &CelExpression, (needle, message): Unbounded| Refusal {
                field,
                index,
                key,
                text: e.text.clone(),
                needle,
                message,
            };
        for (i, v) in rule.variables.iter().enumerate() {
            let mut est = Estimator {
                bound: vec![("container".to_owned(), container)],
                variables: &sizes,
                names: &names[..i],
            };
            let e = est
                .est(&v.ast)
                .map_err(|u| refusal("variables", i, "expression", v, u))?;
            sizes.push(e.size);
            total.cost = total.cost.plus(e.cost);
            // Variables are kept for the whole rule.
            total.size = total.size.plus(e.size);
            total.peak = total.peak.max(e.peak);
        }
        for (field, index, key, e) in &located {
            let mut est = Estimator {
                bound: vec![("container".to_owned(), container)],
                variables: &sizes,
                names: &names,
            };
            let x = est
                .est(&e.ast)
                .map_err(|u| refusal(field, *index, key, e, u))?;
            total.cost = total.cost.plus(x.cost);
            total.peak = total.peak.max(x.peak);
        }
        total.peak = total.peak.plus(total.size);
        Ok(total)
    };
    let (steps, memory) = if rule.for_each_container {
        let small = run(Poly::default())?;
        let large = run(Poly::s())?;
        let steps = Poly::s().times(small.cost).map(|p| p.plus(large.cost));
        (steps, large.peak)
    } else {
        let once = run(Poly::s())?;
        (Some(once.cost), once.peak)
    };
    let Some(steps) = steps else {
        let first = located
            .first()
            .map(|(_, _, _, e)| e.text.clone())
            .unwrap_or_default();
        return Err(Refusal {
            field: "validations",
            index: 0,
            key: "expression",
            text: first,
            needle: String::new(),
            message: too_deep("").1,
        });
    };
    Ok(Cost { steps, memory })
}
