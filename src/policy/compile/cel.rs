//! The `cel` rule at load: parses every expression, refuses what the interpreter cannot honour
//! (with the position inside the expression), works out which variables each expression reads,
//! and estimates what the rule can cost ([`super::super::cel_cost`]) so that a review never
//! pays more than the budget.

use kube_core::cel::cel::IdedExpr;
use kube_core::cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};
use kube_core::cel::cel::parser::Parser;

use super::super::cel_cost::{self, Cost};
use super::super::cel_reads::{self, CelReads};
use super::super::cel_text::literal_end;
use super::super::model::{CelNamedExpression, CelRule};
use super::super::{CEL_ROOTS as ROOTS, CelExpression, CelValidation, CompiledCel, CompiledRule};
use super::{Checker, FieldPath, cel_lower, fields};

/// The functions the interpreter knows: CEL's standard ones (`cel` crate) and the Kubernetes
/// libraries (kube-cel). Operators (`_+_`, `!_`, `@in`, ...) are the interpreter's own.
const FUNCTIONS: &[&str] = &[
    // CEL standard library (cel::Context::default).
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "optional.none",
    "optional.of",
    "optional.ofNonZeroValue",
    "value",
    "hasValue",
    "or",
    "orValue",
    "matches",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    // Kubernetes libraries (kube-cel): strings, lists, sets, regex, urls, ip/cidr, semver,
    // format, quantity, jsonpatch, math, base64.
    "add",
    "asApproximateFloat",
    "asInteger",
    "base64.decode",
    "base64.encode",
    "charAt",
    "cidr",
    "compareTo",
    "containsCIDR",
    "containsIP",
    "distinct",
    "family",
    "find",
    "findAll",
    "first",
    "flatten",
    "format",
    "format.byte",
    "format.date",
    "format.datetime",
    "format.dns1035Label",
    "format.dns1035LabelPrefix",
    "format.dns1123Label",
    "format.dns1123LabelPrefix",
    "format.dns1123Subdomain",
    "format.dns1123SubdomainPrefix",
    "format.labelValue",
    "format.named",
    "format.qualifiedName",
    "format.uri",
    "format.uuid",
    "getEscapedPath",
    "getHost",
    "getHostname",
    "getPort",
    "getQuery",
    "getScheme",
    "indexOf",
    "ip",
    "ip.isCanonical",
    "isCIDR",
    "isCIDRv4",
    "isCIDRv6",
    "isGlobalUnicast",
    "isGreaterThan",
    "isIP",
    "isIPv4",
    "isIPv6",
    "isInteger",
    "isLessThan",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isLoopback",
    "isQuantity",
    "isSemver",
    "isSorted",
    "isURL",
    "isUnspecified",
    "join",
    "jsonpatch.escapeKey",
    "last",
    "lastIndexOf",
    "lists.range",
    "lowerAscii",
    "major",
    "masked",
    "math.abs",
    "math.bitAnd",
    "math.bitNot",
    "math.bitOr",
    "math.bitShiftLeft",
    "math.bitShiftRight",
    "math.bitXor",
    "math.ceil",
    "math.floor",
    "math.greatest",
    "math.isFinite",
    "math.isInf",
    "math.isNaN",
    "math.least",
    "math.round",
    "math.sign",
    "math.sqrt",
    "math.trunc",
    "minor",
    "patch",
    "prefixLength",
    "quantity",
    "replace",
    "reverse",
    "semver",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "sign",
    "slice",
    "sort",
    "split",
    "strings.quote",
    "sub",
    "substring",
    "sum",
    "trim",
    "upperAscii",
    "url",
    "validate",
];

/// Namespaces of qualified function names (`lists.range`): `lists` there is no variable.
const NAMESPACES: [&str; 9] = [
    "optional",
    "base64",
    "format",
    "ip",
    "jsonpatch",
    "lists",
    "math",
    "sets",
    "strings",
];

/// Comprehension macros; called with three arguments they are the two-variable forms (except
/// `map`, whose three-argument form is filter-then-map).
const MACROS: [&str; 9] = [
    "all",
    "exists",
    "exists_one",
    "existsOne",
    "map",
    "filter",
    "transformList",
    "transformMap",
    "transformMapEntry",
];

/// Where in a policy an expression sits, for messages.
struct Site<'a> {
    path: FieldPath,
    text: &'a str,
}

/// The longest expression accepted, in characters. The parser recurses once per operator of
/// a chain (`a + a + ...`, `a.b.c...`): this bounds the chain so that parsing stays within a
/// 2 MiB stack (tokio's worker threads) even in a debug build (tests/cel_rules.rs proves it).
pub(crate) const MAX_EXPRESSION_CHARS: usize = 1_000;

/// The deepest nesting accepted in the text: brackets (`(`, `[`, `{`) and ternaries (`?`) open
/// at once. The parser spends its stack per level (about 170 KiB in a debug build), before its
/// own recursion limit can act, so the text is measured before it is parsed.
pub(crate) const MAX_NESTING: usize = 8;

/// The deepest expression tree accepted (checking, costing and evaluation recurse on it).
pub(crate) const MAX_TREE_DEPTH: usize = 50;

/// The deepest nesting of brackets and ternaries in `text` (outside string literals), and the
/// byte offset where it is first reached. A `?` after `.`, `[`, `{` or `,` is optional syntax,
/// not a ternary; a ternary stays open until its bracket closes or a `,` ends its element.
fn nesting(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    // Per open bracket, the ternaries open inside it (the outermost level is the first).
    let mut levels: Vec<usize> = vec![0];
    let (mut deepest, mut at) = (0, 0);
    let mut previous = b' ';
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' => {
                i = literal_end(bytes, i).unwrap_or(bytes.len());
                previous = b;
                continue;
            }
            b'(' | b'[' | b'{' => levels.push(0),
            b')' | b']' | b'}' if levels.len() > 1 => {
                levels.pop();
            }
            b',' => {
                if let Some(l) = levels.last_mut() {
                    *l = 0;
                }
            }
            b'?' if !matches!(previous, b'.' | b'[' | b'{' | b',') => {
                if let Some(l) = levels.last_mut() {
                    *l += 1;
                }
            }
            _ => {}
        }
        let depth = levels.len() - 1 + levels.iter().sum::<usize>();
        if depth > deepest {
            (deepest, at) = (depth, i);
        }
        if !b.is_ascii_whitespace() {
            previous = b;
        }
        i += 1;
    }
    (deepest, at)
}

/// Which bytes of `text` are outside string literals (plain, raw, triple-quoted).
fn outside_literals(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut out = vec![true; bytes.len()];
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\'' && b != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i = literal_end(bytes, i).unwrap_or(bytes.len());
        for o in out.iter_mut().take(i).skip(start) {
            *o = false;
        }
    }
    out
}

/// `text` with each run of logical nots (`!!x`, `! ! x`) reduced as cel-go's parser reduces
/// it: an even run to nothing, an odd run to one `!`. The interpreter's parser (cel 0.13)
/// makes one `!` of any run, so `!!true` would be `false`. The removed `!`s become spaces, so
/// that positions in the text stay the same.
fn collapse_negations(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let code = outside_literals(text);
    let is_not = |i: usize| {
        bytes.get(i) == Some(&b'!') && code.get(i) == Some(&true) && bytes.get(i + 1) != Some(&b'=')
    };
    let mut blank: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_not(i) {
            i += 1;
            continue;
        }
        let mut run = vec![i];
        let mut j = i + 1;
        loop {
            while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            if is_not(j) {
                run.push(j);
                j += 1;
            } else {
                break;
            }
        }
        if run.len() > 1 {
            let keep = run.len() % 2;
            blank.extend(&run[..run.len() - keep]);
        }
        i = j;
    }
    if blank.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = bytes.to_vec();
    for b in blank {
        out[b] = b' ';
    }
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| text.to_owned()))
}

/// The depth of the tree under `e`, counted without recursion.
fn tree_depth(e: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&IdedExpr, usize)> = vec![(e, 1)];
    while let Some((e, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        let mut children: Vec<&IdedExpr> = Vec::new();
        let mut push = |x| children.push(x);
        match &e.expr {
            Expr::Select(s) => push(&s.operand),
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    push(t);
                }
                c.args.iter().for_each(push);
            }
            Expr::Comprehension(c) => {
                for x in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    push(x);
                }
            }
            Expr::List(l) => l.elements.iter().for_each(push),
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        push(&me.key);
                        push(&me.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        push(&f.value);
                    }
                }
            }
            Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
        }
        stack.extend(children.into_iter().map(|x| (x, depth + 1)));
    }
    deepest
}

/// The line and column (1-based) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

const TOO_DEEP_HINT: &str = "split the expression: declare parts under `variables` and combine them (docs/cel.md, \"Refused at load\")";

/// Parses `text` (a VAP expression: optional syntax on) or reports where it fails. Text too
/// long or too deeply nested for the parser's stack is refused before it is parsed.
fn parse(c: &mut Checker, site: &Site<'_>) -> Option<IdedExpr> {
    let chars = site.text.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        c.error(
            site.path.clone(),
            format!("the expression is {chars} characters long; at most {MAX_EXPRESSION_CHARS} are accepted"),
            TOO_DEEP_HINT,
        );
        return None;
    }
    let (deepest, at) = nesting(site.text);
    if deepest > MAX_NESTING {
        c.error_at(
            site.path.clone(),
            Some(line_column(site.text, at)),
            format!("the expression nests {deepest} levels of brackets and ternaries; at most {MAX_NESTING} are accepted"),
            TOO_DEEP_HINT,
        );
        return None;
    }
    // The parser's own recursion limit can panic (`attempt to subtract with overflow` past 96
    // nested ternaries); the limits above keep it out of reach, and a panic is refused anyway.
    let text = collapse_negations(site.text);
    let Ok(parsed) =
        std::panic::catch_unwind(|| Parser::new().enable_optional_syntax(true).parse(&text))
    else {
        c.error(
            site.path.clone(),
            "the CEL parser failed on this expression",
            TOO_DEEP_HINT,
        );
        return None;
    };
    if let Ok(e) = &parsed {
        let depth = tree_depth(e);
        if depth > MAX_TREE_DEPTH {
            c.error(
                site.path.clone(),
                format!("the expression's tree is {depth} levels deep (long chains of operators nest too); at most {MAX_TREE_DEPTH} are accepted"),
                TOO_DEEP_HINT,
            );
            return None;
        }
    }
    match parsed {
        Ok(e) => Some(e),
        Err(errors) => {
            for e in errors.errors {
                c.error_at(
                    site.path.clone(),
                    Some((e.pos.0.max(1) as usize, e.pos.1.max(0) as usize + 1)),
                    format!("CEL syntax error: {}", e.msg),
                    "check the expression; CEL is the language of ValidatingAdmissionPolicy (docs/cel.md)",
                );
            }
            None
        }
    }
}

/// Whether `e` gives an optional (`a.?b`, `m[?k]`, `optional.of(x)`, `x.or(y)`, ...).
fn gives_optional(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Call(call) => match call.func_name.as_str() {
            "_?._" | "_[?_]" | "or" => true,
            "of" | "none" | "ofNonZeroValue" => matches!(
                call.target.as_deref().map(|t| &t.expr),
                Some(Expr::Ident(ns)) if ns == "optional"
            ),
            "_?_:_" => call.args.get(1).is_some_and(gives_optional),
            _ => false,
        },
        _ => false,
    }
}

/// Rewrites each chain of optional selects `x.?f1.?f2...` (longest first) into
/// `has(x.f1) && has(x.f1.f2) && ... ? optional.of(x.f1.f2...) : optional.none()` (and, when
/// `x` is itself an optional, into `x.hasValue() ? <the same over x.value()> :
/// optional.none()`): the interpreter (cel 0.13) fails on `x.?f` when `x` has no `f`, and
/// gives an optional inside an optional for `x.?f.?g` when `f` has no `g`, where CEL gives
/// `optional.none()`. `x` is evaluated once per link; the cost estimate sees the rewrite.
fn optional_selects(e: &mut IdedExpr) {
    use kube_core::cel::cel::common::ast::{CallExpr, SelectExpr};
    match &mut e.expr {
        Expr::Call(call) if call.func_name == "_?._" && call.args.len() == 2 => {
            // The chain's fields, outermost last, and its base.
            let mut fields: Vec<String> = Vec::new();
            let mut base = e.clone();
            loop {
                match &base.expr {
                    Expr::Call(c) if c.func_name == "_?._" && c.args.len() == 2 => {
                        let Expr::Literal(LiteralValue::String(f)) = &c.args[1].expr else {
                            return;
                        };
                        fields.push(f.inner().to_owned());
                        let inner = c.args[0].clone();
                        base = inner;
                    }
                    _ => break,
                }
            }
            fields.reverse();
            optional_selects(&mut base);
            let id = e.id;
            let node = |expr| IdedExpr { id, expr };
            let call = |target: Option<IdedExpr>, name: &str, args: Vec<IdedExpr>| {
                node(Expr::Call(CallExpr {
                    func_name: name.to_owned(),
                    target: target.map(Box::new),
                    args,
                }))
            };
            let optional = || node(Expr::Ident("optional".to_owned()));
            let base_is_optional = gives_optional(&base);
            let root = if base_is_optional {
                call(Some(base.clone()), "value", vec![])
            } else {
                base.clone()
            };
            let mut path = root;
            let mut tests: Vec<IdedExpr> = Vec::new();
            for f in &fields {
                tests.push(node(Expr::Select(SelectExpr {
                    operand: Box::new(path.clone()),
                    field: f.clone(),
                    test: true,
                })));
                path = node(Expr::Select(SelectExpr {
                    operand: Box::new(path),
                    field: f.clone(),
                    test: false,
                }));
            }
            if base_is_optional {
                tests.insert(0, call(Some(base), "hasValue", vec![]));
            }
            let mut condition = tests.remove(0);
            for t in tests {
                condition = call(None, "_&&_", vec![condition, t]);
            }
            e.expr = Expr::Call(CallExpr {
                func_name: "_?_:_".to_owned(),
                target: None,
                args: vec![
                    condition,
                    call(Some(optional()), "of", vec![path]),
                    call(Some(optional()), "none", vec![]),
                ],
            });
        }
        Expr::Call(call) => {
            if let Some(t) = call.target.as_deref_mut() {
                optional_selects(t);
            }
            for a in &mut call.args {
                optional_selects(a);
            }
        }
        Expr::Select(s) => optional_selects(&mut s.operand),
        Expr::Comprehension(c) => {
            for x in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                optional_selects(x);
            }
        }
        Expr::List(l) => l.elements.iter_mut().for_each(optional_selects),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    optional_selects(&mut me.key);
                    optional_selects(&mut me.value);
                }
            }
        }
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) | Expr::Struct(_) => {}
    }
}

/// The 1-based (line, column) of the first occurrence of `needle` in `text`, for refusals
/// the parser does not locate (it keeps no position per node).
fn position_of(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// What an expression may name.
struct Scope<'a> {
    /// `container` is bound (the `forEachContainer` form).
    container: bool,
    /// The variables declared before this expression (a variable reads only earlier ones).
    variables: &'a [String],
}

/// Checks every identifier and call of `e` against what the interpreter honours; returns the
/// variables it reads directly (indexes into `scope.variables`).
fn check_names(c: &mut Checker, site: &Site<'_>, scope: &Scope<'_>, e: &IdedExpr) -> Vec<usize> {
    let mut reads = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    walk(c, site, scope, e, &mut bound, &mut reads);
    reads.sort_unstable();
    reads.dedup();
    reads
}

fn refuse(c: &mut Checker, site: &Site<'_>, needle: &str, message: String, hint: &str) {
    c.error_at(
        site.path.clone(),
        position_of(site.text, needle),
        message,
        hint,
    );
}

fn walk(
    c: &mut Checker,
    site: &Site<'_>,
    scope: &Scope<'_>,
    e: &IdedExpr,
    bound: &mut Vec<String>,
    reads: &mut Vec<usize>,
) {
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => check_ident(c, site, scope, name, bound),
        Expr::Select(s) => {
            if let Expr::Ident(root) = &s.operand.expr
                && root == "variables"
                && !bound.iter().any(|b| b == "variables")
            {
                match scope.variables.iter().position(|v| *v == s.field) {
                    Some(i) => reads.push(i),
                    None => refuse(
                        c,
                        site,
                        &format!("variables.{}", s.field),
                        format!(
                            "unknown variable `variables.{}`{}",
                            s.field,
                            if scope.variables.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " (declared before this expression: {})",
                                    scope.variables.join(", ")
                                )
                            }
                        ),
                        "declare it under `variables` (a variable reads only the variables listed before it)",
                    ),
                }
                return;
            }
            walk(c, site, scope, &s.operand, bound, reads);
        }
        Expr::Call(call) => {
            let qualified = match call.target.as_deref().map(|t| &t.expr) {
                Some(Expr::Ident(ns))
                    if NAMESPACES.contains(&ns.as_str()) && !bound.contains(ns) =>
                {
                    Some(format!("{ns}.{}", call.func_name))
                }
                Some(Expr::Ident(ns)) if ns == "cel" && !bound.contains(ns) => {
                    refuse(
                        c,
                        site,
                        &format!("cel.{}", call.func_name),
                        format!(
                            "`cel.{}` is not supported by the interpreter",
                            call.func_name
                        ),
                        "declare the value under `variables` and read it as `variables.NAME`",
                    );
                    return;
                }
                _ => None,
            };
            let name = qualified.as_deref().unwrap_or(&call.func_name);
            let operator = name.starts_with(['_', '!', '-', '@']);
            if MACROS.contains(&name) && !(name == "map" && call.args.len() == 3) {
                refuse(
                    c,
                    site,
                    &format!("{name}("),
                    format!(
                        "`{name}` with {} arguments is not supported by the interpreter (two-variable comprehensions are not)",
                        call.args.len()
                    ),
                    "use the one-variable form, e.g. `list.all(x, ...)`; over a map, iterate its keys: `m.all(k, m[k] ...)`",
                );
            } else if !operator && !FUNCTIONS.contains(&name) {
                let close = FUNCTIONS
                    .iter()
                    .filter(|f| strsim::jaro_winkler(f, name) > 0.85)
                    .copied()
                    .collect::<Vec<_>>();
                refuse(
                    c,
                    site,
                    &format!("{}(", call.func_name),
                    format!("unknown function `{name}`"),
                    &if close.is_empty() {
                        "see docs/cel.md for the functions Portcullis knows".to_owned()
                    } else {
                        format!("did you mean {}?", close.join(" or "))
                    },
                );
            }
            if qualified.is_none()
                && let Some(t) = &call.target
            {
                walk(c, site, scope, t, bound, reads);
            }
            for a in &call.args {
                walk(c, site, scope, a, bound, reads);
            }
        }
        Expr::Comprehension(comp) => {
            walk(c, site, scope, &comp.iter_range, bound, reads);
            walk(c, site, scope, &comp.accu_init, bound, reads);
            bound.push(comp.iter_var.clone());
            bound.push(comp.accu_var.clone());
            if let Some(v2) = &comp.iter_var2 {
                bound.push(v2.clone());
            }
            walk(c, site, scope, &comp.loop_cond, bound, reads);
            walk(c, site, scope, &comp.loop_step, bound, reads);
            walk(c, site, scope, &comp.result, bound, reads);
            bound.truncate(bound.len() - 2 - usize::from(comp.iter_var2.is_some()));
        }
        Expr::List(l) => {
            for x in &l.elements {
                walk(c, site, scope, x, bound, reads);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    walk(c, site, scope, &me.key, bound, reads);
                    walk(c, site, scope, &me.value, bound, reads);
                }
            }
        }
        Expr::Struct(s) => refuse(
            c,
            site,
            &s.type_name,
            format!(
                "message construction (`{}{{...}}`) is not supported",
                s.type_name
            ),
            "build a map instead: `{'key': value}`",
        ),
    }
}

fn check_ident(c: &mut Checker, site: &Site<'_>, scope: &Scope<'_>, name: &str, bound: &[String]) {
    if bound.iter().any(|b| b == name)
        || ROOTS.contains(&name)
        || (name == "container" && scope.container)
        || matches!(name, "null" | "true" | "false")
    {
        return;
    }
    let (message, hint) = match name {
        "params" => (
            "`params` is not supported: a Portcullis policy has no parameter resource".to_owned(),
            "write the values into the expression or into `variables`".to_owned(),
        ),
        "authorizer" => (
            "`authorizer` is not supported: Portcullis cannot ask the API server for authorization checks".to_owned(),
            "keep such checks in a ValidatingAdmissionPolicy".to_owned(),
        ),
        "container" => (
            "`container` is bound only in the per-container form".to_owned(),
            "set `forEachContainer: true`, or iterate `podSpec.containers`".to_owned(),
        ),
        "variables" => (
            "`variables` is read only as `variables.NAME`".to_owned(),
            "name one variable: `variables.NAME`".to_owned(),
        ),
        _ => (
            format!("unknown variable `{name}`"),
            format!(
                "the variables are {}, variables.NAME{} (docs/cel.md)",
                ROOTS.join(", "),
                if scope.container { ", container" } else { "" }
            ),
        ),
    };
    refuse(c, site, name, message, &hint);
}

/// Compiles one expression: parse, names, variables read (direct).
fn expression(
    c: &mut Checker,
    path: FieldPath,
    name: &str,
    text: &str,
    scope: &Scope<'_>,
) -> Option<(CelExpression, Vec<usize>)> {
    let site = Site { path, text };
    if text.trim().is_empty() {
        c.error(
            site.path,
            "the expression is empty",
            "write a CEL expression, e.g. `object.spec.replicas >= 2`",
        );
        return None;
    }
    let mut ast = parse(c, &site)?;
    let before = c.errors.len();
    for u in fields::unknown_fields(&ast, scope.container) {
        refuse(c, &site, &u.field, u.message, &u.hint);
    }
    optional_selects(&mut ast);
    let reads = check_names(c, &site, scope, &ast);
    (c.errors.len() == before).then(|| {
        (
            CelExpression {
                name: name.to_owned(),
                text: text.to_owned(),
                ast,
                needs: Vec::new(),
            },
            reads,
        )
    })
}

/// The variables an expression needs, with those its variables need, in declaration order.
fn closure(direct: &[usize], variable_reads: &[Vec<usize>]) -> Vec<usize> {
    let mut needs: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = direct.to_vec();
    while let Some(v) = stack.pop() {
        if !needs.contains(&v) {
            needs.push(v);
            stack.extend(variable_reads.get(v).into_iter().flatten().copied());
        }
    }
    needs.sort_unstable();
    needs
}

fn check_names_unique(c: &mut Checker, path: &FieldPath, list: &[CelNamedExpression], what: &str) {
    for (i, v) in list.iter().enumerate() {
        if list[..i].iter().any(|w| w.name == v.name) {
            c.error(
                path.index(i).key("name"),
                format!("{what} {:?} is declared twice", v.name),
                format!("give each {what} its own name"),
            );
        }
        let valid = v
            .name
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && v.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if what == "variable" && !valid {
            c.error(
                path.index(i).key("name"),
                format!("variable name {:?} is not a CEL identifier", v.name),
                "use letters, digits and '_', starting with a letter",
            );
        }
    }
}

/// Compiles a `cel` rule at `path`.
pub(super) fn compile(c: &mut Checker, rule: &CelRule, path: &FieldPath) -> CompiledRule {
    if rule.validations.is_empty() {
        c.error(
            path.key("validations"),
            "the rule has no validation: it checks nothing",
            "add `validations: [{expression: \"...\"}]`, or delete the rule",
        );
    }
    check_names_unique(c, &path.key("variables"), &rule.variables, "variable");
    check_names_unique(
        c,
        &path.key("matchConditions"),
        &rule.match_conditions,
        "matchCondition",
    );
    let container = rule.for_each_container;
    let names: Vec<String> = rule.variables.iter().map(|v| v.name.clone()).collect();
    let mut variables = Vec::new();
    let mut variable_reads: Vec<Vec<usize>> = Vec::new();
    for (i, v) in rule.variables.iter().enumerate() {
        let scope = Scope {
            container,
            variables: &names[..i],
        };
        let p = path.key("variables").index(i).key("expression");
        match expression(c, p, &v.name, &v.expression, &scope) {
            Some((e, reads)) => {
                variables.push(e);
                variable_reads.push(reads);
            }
            None => variable_reads.push(Vec::new()),
        }
    }
    let all = Scope {
        container,
        variables: &names,
    };
    let with_needs = |e: Option<(CelExpression, Vec<usize>)>| {
        e.map(|(mut e, reads)| {
            e.needs = closure(&reads, &variable_reads);
            e
        })
    };
    let match_conditions: Vec<CelExpression> = rule
        .match_conditions
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let p = path.key("matchConditions").index(i).key("expression");
            let e = with_needs(expression(c, p.clone(), &m.name, &m.expression, &all))?;
            wants_type(c, p, &e.ast, "bool");
            Some(e)
        })
        .collect();
    let mut validations = Vec::new();
    for (i, v) in rule.validations.iter().enumerate() {
        let p = path.key("validations").index(i);
        let check = with_needs(expression(c, p.key("expression"), "", &v.expression, &all));
        let message_expression = v
            .message_expression
            .as_ref()
            .and_then(|m| with_needs(expression(c, p.key("messageExpression"), "", m, &all)));
        // The API server v1.32 accepts these three only (`Unauthorized` too is refused).
        if let Some(reason) = &v.reason
            && !matches!(
                reason.as_str(),
                "Forbidden" | "Invalid" | "RequestEntityTooLarge"
            )
        {
            c.error(
                p.key("reason"),
                format!("reason {reason:?} is not one a ValidatingAdmissionPolicy accepts"),
                "use Forbidden, Invalid or RequestEntityTooLarge",
            );
        }
        if let Some(check) = &check {
            wants_type(c, p.key("expression"), &check.ast, "bool");
        }
        if let Some(m) = &message_expression {
            wants_type(c, p.key("messageExpression"), &m.ast, "string");
        }
        if let Some(m) = &v.message
            && m.contains('\n')
        {
            c.error(
                p.key("message"),
                "the message has a line break",
                "write the message on one line (the API server refuses line breaks too)",
            );
        }
        if let Some(check) = check
            && (v.message_expression.is_none() || message_expression.is_some())
        {
            validations.push(CelValidation {
                check,
                message: v.message.clone(),
                message_expression,
                reason: v.reason.clone(),
            });
        }
    }
    let mut compiled = CompiledCel {
        for_each_container: container,
        match_conditions,
        variables,
        validations,
        cost: Cost::default(),
        reads: CelReads::default(),
        variables_by_name: false,
        shared_variables: Vec::new(),
        identical_containers_once: false,
    };
    compiled.reads = cel_reads::reads_of(&compiled);
    match cel_cost::estimate(&compiled) {
        Ok(cost) => {
            if let Err(why) = cost.check_at_load() {
                c.error(path.clone(), why, cel_cost::HINT);
            }
            compiled.cost = cost;
        }
        Err(refusal) => c.error_at(
            path.key(refusal.field)
                .index(refusal.index)
                .key(refusal.key),
            position_of(&refusal.text, &refusal.needle),
            refusal.message,
            cel_cost::HINT,
        ),
    }
    cel_lower::lower(&mut compiled, &variable_reads);
    CompiledRule::Cel(Box::new(compiled))
}

/// The type `e` certainly gives, whatever the object: known from its outermost operator or
/// literal alone (`'x'`, `1 + 2`, `[...]`, `a == b`, `size(x)`); `None` when it depends on
/// what it reads. The API server's type checker refuses a matchCondition or validation that
/// is not a bool, and a messageExpression that is not a string, when the policy is created;
/// this finds the cases a load can see without a schema.
fn static_type(e: &IdedExpr) -> Option<&'static str> {
    match &e.expr {
        Expr::Literal(l) => Some(match l {
            LiteralValue::Int(_) => "int",
            LiteralValue::UInt(_) => "uint",
            LiteralValue::Double(_) => "double",
            LiteralValue::String(_) => "string",
            LiteralValue::Bytes(_) => "bytes",
            LiteralValue::Boolean(_) => "bool",
            LiteralValue::Null => "null",
        }),
        Expr::List(_) => Some("list"),
        Expr::Map(_) => Some("map"),
        Expr::Call(call) => match call.func_name.as_str() {
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "_&&_" | "_||_" | "!_" | "@in" => {
                Some("bool")
            }
            // Arithmetic other than `+` never gives a bool or a string (numbers, durations,
            // timestamps); `+` gives what its operands are when one is certain.
            "_-_" | "_*_" | "_/_" | "_%_" | "-_" => Some("a number"),
            "_+_" => call.args.iter().find_map(static_type).map(|t| match t {
                "int" | "uint" | "double" => "a number",
                other => other,
            }),
            "size" => Some("int"),
            "_?_:_" => {
                let (a, b) = (call.args.get(1)?, call.args.get(2)?);
                static_type(a).filter(|t| static_type(b) == Some(t))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Refuses `e` at `path` when it certainly gives another type than `want` ([`static_type`]).
fn wants_type(c: &mut Checker, path: FieldPath, e: &IdedExpr, want: &str) {
    if let Some(t) = static_type(e)
        && t != want
    {
        c.error_at(
            path,
            Some((1, 1)),
            format!("the expression gives {t}, not a {want}"),
            format!("a ValidatingAdmissionPolicy refuses it when it is created; write an expression that gives a {want}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_logical_nots_are_reduced_as_cel_go_reduces_them() {
        for (text, want) in [
            ("!!true", "  true"),
            ("! !x", "   x"),
            ("!!!x", "  !x"),
            ("!!!!x", "    x"),
            ("!x", "!x"),
            ("!(!x)", "!(!x)"),
            ("a != b && !!c", "a != b &&   c"),
            ("'!!' == r\"!!\" && !!x", "'!!' == r\"!!\" &&   x"),
        ] {
            assert_eq!(collapse_negations(text), want, "{text}");
        }
    }
}
