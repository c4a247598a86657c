//! What of the review a `cel` rule can observe, found at load from its expressions, so that a
//! review converts only that into CEL values (`engine::cel_values`): `object.spec.replicas`
//! needs the replicas, not the whole object.
//!
//! Conservative by construction: a value is cut down only where every use of it is a field
//! selection (`a.b`, `has(a.b)`, `a.?b`, `a['b']`), the iteration of a comprehension (each
//! item, with what the loop variable's uses need), or a value passed through unchanged
//! (`?:`, `orValue`, `optional.of`, `value()`); any other use (a function, an operator, a
//! comparison, a literal holding it, the whole `variables`) needs all of it. A field that is
//! selected is kept when present and absent when absent, so selections, `has()` and errors
//! answer as on the whole value.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kube_core::cel::cel::IdedExpr;
use kube_core::cel::cel::common::ast::{EntryExpr, Expr, LiteralValue};

use super::{CEL_ROOTS, CelExpression, CompiledCel};

/// What of a value an expression may observe. The empty need is the value's presence only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need {
    /// All of it.
    pub full: bool,
    /// Every item of a list, or every entry of a map (all the keys), each with this need.
    pub each: Option<Box<Need>>,
    /// These fields, when present, each with its need.
    pub fields: BTreeMap<String, Need>,
}

impl Need {
    /// All of the value.
    pub fn full() -> Need {
        Need {
            full: true,
            ..Need::default()
        }
    }

    fn field(name: &str, need: Need) -> Need {
        Need {
            fields: BTreeMap::from([(name.to_owned(), need)]),
            ..Need::default()
        }
    }

    fn each(need: Need) -> Need {
        Need {
            each: Some(Box::new(need)),
            ..Need::default()
        }
    }

    /// Adds what `other` needs.
    pub fn merge(&mut self, other: &Need) {
        if self.full {
            return;
        }
        if other.full {
            *self = Need::full();
            return;
        }
        if let Some(e) = &other.each {
            match &mut self.each {
                Some(mine) => mine.merge(e),
                None => self.each = Some(e.clone()),
            }
        }
        for (k, n) in &other.fields {
            self.fields.entry(k.clone()).or_default().merge(n);
        }
    }

    /// What is needed of the entry `key` of a map (or of every item, for a list's items):
    /// `None` when nothing, the entry then left out.
    pub fn child(&self, key: &str) -> Option<Cow<'_, Need>> {
        if self.full {
            return Some(Cow::Owned(Need::full()));
        }
        match (self.each.as_deref(), self.fields.get(key)) {
            (None, None) => None,
            (Some(e), None) => Some(Cow::Borrowed(e)),
            (None, Some(f)) => Some(Cow::Borrowed(f)),
            (Some(e), Some(f)) => {
                let mut both = e.clone();
                both.merge(f);
                Some(Cow::Owned(both))
            }
        }
    }

    /// What is needed of each item of a list (`None`: nothing).
    pub fn item(&self) -> Option<Cow<'_, Need>> {
        if self.full {
            return Some(Cow::Owned(Need::full()));
        }
        self.each.as_deref().map(Cow::Borrowed)
    }

    /// Whether a value made for `self` holds all that `other` needs.
    pub fn covers(&self, other: &Need) -> bool {
        if self.full {
            return true;
        }
        if other.full {
            return false;
        }
        let each = match (&self.each, &other.each) {
            (_, None) => true,
            (Some(mine), Some(theirs)) => mine.covers(theirs),
            (None, Some(_)) => false,
        };
        each && other
            .fields
            .iter()
            .all(|(k, n)| self.child(k).is_some_and(|mine| mine.covers(n)))
    }
}

/// What a rule (or a set of rules) observes of each root: [`CEL_ROOTS`], then `container`;
/// `None` for a root it never names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CelReads {
    pub roots: [Option<Need>; CEL_ROOTS.len()],
    pub container: Option<Need>,
}

impl CelReads {
    /// Adds what `other` reads.
    pub fn merge(&mut self, other: &CelReads) {
        for (mine, theirs) in self
            .roots
            .iter_mut()
            .chain(std::iter::once(&mut self.container))
            .zip(other.roots.iter().chain(std::iter::once(&other.container)))
        {
            if let Some(theirs) = theirs {
                mine.get_or_insert_with(Need::default).merge(theirs);
            }
        }
    }

    /// Which of [`CEL_ROOTS`] are named.
    pub fn named(&self) -> [bool; CEL_ROOTS.len()] {
        self.roots.each_ref().map(Option::is_some)
    }
}

/// What `rule` observes of the review.
pub fn reads_of(rule: &CompiledCel) -> CelReads {
    let mut a = Analysis {
        reads: CelReads::default(),
        variables: vec![None; rule.variables.len()],
        names: rule.variables.iter().map(|v| v.name.as_str()).collect(),
        scopes: Vec::new(),
    };
    let whole = |a: &mut Analysis<'_>, e: &CelExpression| a.expr(&e.ast, Need::full());
    for m in &rule.match_conditions {
        whole(&mut a, m);
    }
    for v in &rule.validations {
        whole(&mut a, &v.check);
        if let Some(m) = &v.message_expression {
            whole(&mut a, m);
        }
    }
    // A variable reads only earlier ones: the last first, so each is walked with all its
    // readers' needs known.
    for (i, v) in rule.variables.iter().enumerate().rev() {
        if let Some(need) = a.variables[i].take() {
            a.expr(&v.ast, need);
        }
    }
    a.reads
}

/// The union of what `rules` observe.
pub fn union<'r>(rules: impl IntoIterator<Item = &'r CompiledCel>) -> CelReads {
    let mut all = CelReads::default();
    for r in rules {
        all.merge(&r.reads);
    }
    all
}

struct Analysis<'r> {
    reads: CelReads,
    /// What the rule's readers need of each variable (`variables.NAME`).
    variables: Vec<Option<Need>>,
    names: Vec<&'r str>,
    /// The comprehensions' variables in scope, innermost last, with what their uses need.
    scopes: Vec<(String, Need)>,
}

impl Analysis<'_> {
    /// Walks `e`, whose value is used as `need` says.
    fn expr(&mut self, e: &IdedExpr, need: Need) {
        match &e.expr {
            Expr::Ident(name) => self.ident(name, &need),
            Expr::Select(s) => {
                let inner = if s.test { Need::default() } else { need };
                if self.is_variables(&s.operand) {
                    self.variable(&s.field, &inner);
                } else {
                    self.expr(&s.operand, Need::field(&s.field, inner));
                }
            }
            Expr::Call(c) => {
                let literal = |i: usize| match c.args.get(i).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::String(s))) => Some(s.inner().to_owned()),
                    _ => None,
                };
                match (c.func_name.as_str(), &c.target, c.args.len()) {
                    ("_?._" | "_[_]" | "_[?_]", None, 2) => {
                        if let Some(field) = literal(1) {
                            if self.is_variables(&c.args[0]) {
                                self.variable(&field, &need);
                            } else {
                                self.expr(&c.args[0], Need::field(&field, need));
                            }
                        } else {
                            self.expr(&c.args[0], Need::each(need));
                            self.expr(&c.args[1], Need::full());
                        }
                    }
                    ("_?_:_", None, 3) => {
                        self.expr(&c.args[0], Need::full());
                        self.expr(&c.args[1], need.clone());
                        self.expr(&c.args[2], need);
                    }
                    ("orValue", Some(t), 1) => {
                        self.expr(t, need.clone());
                        self.expr(&c.args[0], need);
                    }
                    ("value", Some(t), 0) => self.expr(t, need),
                    ("hasValue", Some(t), 0) => self.expr(t, Need::default()),
                    ("optional.of", None, 1) => self.expr(&c.args[0], need),
                    _ => {
                        if let Some(t) = &c.target {
                            self.expr(t, Need::full());
                        }
                        for a in &c.args {
                            self.expr(a, Need::full());
                        }
                    }
                }
            }
            Expr::Comprehension(c) => {
                let vars: Vec<&String> = std::iter::once(&c.iter_var)
                    .chain(c.iter_var2.as_ref())
                    .chain(std::iter::once(&c.accu_var))
                    .collect();
                for v in &vars {
                    self.scopes.push(((*v).clone(), Need::default()));
                }
                for x in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.expr(x, Need::full());
                }
                let mut popped: Vec<(String, Need)> =
                    self.scopes.split_off(self.scopes.len() - vars.len());
                let item = if c.iter_var2.is_some() {
                    Need::full()
                } else {
                    popped.swap_remove(0).1
                };
                self.expr(&c.iter_range, Need::each(item));
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.expr(x, Need::full());
                }
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.expr(&me.key, Need::full());
                        self.expr(&me.value, Need::full());
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => self.expr(&f.value, Need::full()),
                        EntryExpr::MapEntry(me) => {
                            self.expr(&me.key, Need::full());
                            self.expr(&me.value, Need::full());
                        }
                    }
                }
            }
            Expr::Unspecified | Expr::Literal(_) => {}
        }
    }

    fn ident(&mut self, name: &str, need: &Need) {
        if let Some((_, n)) = self.scopes.iter_mut().rev().find(|(v, _)| v == name) {
            n.merge(need);
        } else if name == "variables" {
            // All of `variables`, as a whole: every variable, in full.
            for v in &mut self.variables {
                v.get_or_insert_with(Need::default).merge(&Need::full());
            }
        } else if name == "container" {
            self.reads
                .container
                .get_or_insert_with(Need::default)
                .merge(need);
        } else if let Some(i) = CEL_ROOTS.iter().position(|r| *r == name) {
            self.reads.roots[i]
                .get_or_insert_with(Need::default)
                .merge(need);
        }
    }

    /// Whether `e` is the rule's `variables` (not a comprehension variable of that name).
    fn is_variables(&self, e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Ident(n) if n == "variables")
            && !self.scopes.iter().any(|(v, _)| v == "variables")
    }

    fn variable(&mut self, name: &str, need: &Need) {
        if let Some(i) = self.names.iter().position(|n| *n == name) {
            self.variables[i]
                .get_or_insert_with(Need::default)
                .merge(need);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CelExpression, CelValidation};

    fn parsed(text: &str) -> CelExpression {
        let ast = kube_core::cel::cel::parser::Parser::new()
            .enable_optional_syntax(true)
            .parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        CelExpression {
            name: String::new(),
            text: text.to_owned(),
            ast,
            needs: Vec::new(),
        }
    }

    /// What a rule with these variables (name, expression) and one validation reads.
    fn reads(variables: &[(&str, &str)], expression: &str) -> CelReads {
        let rule = CompiledCel {
            variables_by_name: false,
            shared_variables: Vec::new(),
            identical_containers_once: false,
            for_each_container: false,
            match_conditions: Vec::new(),
            variables: variables
                .iter()
                .map(|(n, e)| CelExpression {
                    name: (*n).to_owned(),
                    ..parsed(e)
                })
                .collect(),
            validations: vec![CelValidation {
                check: parsed(expression),
                message: None,
                message_expression: None,
                reason: None,
            }],
            cost: Default::default(),
            reads: CelReads::default(),
        };
        reads_of(&rule)
    }

    fn root(r: &CelReads, name: &str) -> Option<Need> {
        r.roots[CEL_ROOTS.iter().position(|n| *n == name).expect("a root")].clone()
    }

    fn path(fields: &[&str], leaf: Need) -> Need {
        fields
            .iter()
            .rev()
            .fold(leaf, |need, f| Need::field(f, need))
    }

    #[test]
    fn a_selection_reads_its_path_only() {
        let r = reads(&[], "object.spec.replicas >= 1");
        assert_eq!(
            root(&r, "object"),
            Some(path(&["spec", "replicas"], Need::full()))
        );
        assert_eq!(root(&r, "podSpec"), None);
    }

    #[test]
    fn has_and_optional_selections_read_presence_and_pass_the_need_through() {
        let r = reads(&[], "has(podSpec.hostNetwork)");
        assert_eq!(
            root(&r, "podSpec"),
            Some(path(&["hostNetwork"], Need::default()))
        );
        let r = reads(&[], "podSpec.?securityContext.?runAsNonRoot.orValue(false)");
        assert_eq!(
            root(&r, "podSpec"),
            Some(path(&["securityContext", "runAsNonRoot"], Need::full()))
        );
    }

    #[test]
    fn a_comprehension_reads_each_item_as_its_variable_is_read() {
        let r = reads(&[], "podSpec.containers.all(c, c.image.startsWith('r/'))");
        assert_eq!(
            root(&r, "podSpec"),
            Some(path(
                &["containers"],
                Need::each(path(&["image"], Need::full()))
            ))
        );
        // A comprehension variable hides the root of its name.
        let r = reads(&[], "podSpec.containers.all(object, object.name != '')");
        assert_eq!(root(&r, "object"), None);
    }

    #[test]
    fn any_other_use_reads_the_whole_value() {
        for e in [
            "size(object.metadata) > 0",
            "object.metadata == {}",
            "'a' in object.metadata",
            "[object.metadata].size() == 1",
            "object.metadata.all(k, k != '')",
        ] {
            let r = reads(&[], e);
            let metadata = root(&r, "object").and_then(|o| o.fields.get("metadata").cloned());
            assert!(
                metadata.is_some_and(|m| m.full || m.each.is_some_and(|e| e.full)),
                "{e}: {r:?}"
            );
        }
    }

    #[test]
    fn a_variable_reads_what_its_readers_read_of_it() {
        let r = reads(&[("spec", "object.spec")], "variables.spec.replicas > 1");
        assert_eq!(
            root(&r, "object"),
            Some(path(&["spec", "replicas"], Need::full()))
        );
        let r = reads(&[("spec", "object.spec")], "size(variables) > 0");
        assert_eq!(root(&r, "object"), Some(path(&["spec"], Need::full())));
    }

    #[test]
    fn cover_and_merge_agree() {
        let a = path(&["spec", "replicas"], Need::full());
        let b = path(&["metadata"], Need::default());
        let mut both = a.clone();
        both.merge(&b);
        assert!(both.covers(&a) && both.covers(&b));
        assert!(!a.covers(&both));
        assert!(Need::full().covers(&both));
        assert!(Need::each(Need::full()).covers(&path(&["x", "y"], Need::default())));
    }
}
