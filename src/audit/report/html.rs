//! The HTML report (`portcullis audit -o html`): one self-contained page a platform team opens
//! to see where the cluster (or a set of manifests) stands: a summary, readiness per policy,
//! namespaces and teams worst first, policies and rules with their fixes, coming schedule
//! steps, exceptions, what changed since a baseline, and every finding by workload.
//!
//! Inline CSS and SVG only, no request to any address when opened, readable with JavaScript
//! off (filtering to what fails is CSS); a little inline script sorts tables and filters by
//! name. The page is rendered from [`Row`]s, the same judged data as every other report,
//! kept lean ([`Collector`] interns repeated text) and bounded: past [`BUDGET`] bytes the
//! findings of the remaining workloads are listed more briefly, then only counted, and the
//! page says so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::baseline::Baseline;
use super::position::FieldPositions;
use super::readiness::Readiness;
use super::row::{Row, finding_key};
use super::{RunContext, Summary};
use crate::audit::Verdict;
use crate::audit::read::Location;
use crate::engine::{Effect, FindingKind};
use crate::policy::model::Mode;
use crate::policy::{CompiledException, ExceptionInfo, Timestamp, load::Diagnostic, step_scope};

/// The size the page stays under, in bytes (the issue's 5 MB, with room for the closing
/// sections).
pub const BUDGET: usize = 4_800_000;

/// How many workloads a list in the schedule and baseline sections names before counting.
const LISTED: usize = 50;

/// An interned string: an index into [`Strings`]. 0 is the empty string (also "none").
type Sym = u32;

/// Text seen many times (policy names, field paths, messages, fixes), kept once.
#[derive(Debug)]
struct Strings {
    index: HashMap<Arc<str>, Sym>,
    list: Vec<Arc<str>>,
}

impl Default for Strings {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        Strings {
            index: HashMap::from([(empty.clone(), 0)]),
            list: vec![empty],
        }
    }
}

impl Strings {
    fn add(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = Sym::try_from(self.list.len()).unwrap_or(Sym::MAX);
        let s: Arc<str> = Arc::from(s);
        self.list.push(s.clone());
        self.index.insert(s, i);
        i
    }

    fn opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(0, |s| self.add(s))
    }

    fn get(&self, i: Sym) -> &str {
        self.list.get(i as usize).map_or("", |s| s)
    }
}

/// One violation or notice, interned.
#[derive(Debug, Clone)]
struct Found {
    policy: Sym,
    rule: Sym,
    notice: bool,
    effect: Effect,
    container: Sym,
    field: Sym,
    message: Sym,
    hint: Sym,
    exception: Sym,
    enforced_from: Option<Timestamp>,
    /// The field's line in the file, when the input is one.
    line: Option<u32>,
}

/// One object (workload, skipped object or unreadable document), interned.
#[derive(Debug)]
struct Object {
    kind: Sym,
    namespace: Sym,
    name: Box<str>,
    file: Sym,
    document: Option<u32>,
    item: Option<u32>,
    line: Option<u32>,
    verdict: Verdict,
    reason: Sym,
    mutated_by: Box<[Sym]>,
    mutations: u32,
    findings: Box<[Found]>,
    /// Violations of the policies that are `off` (measured for readiness only).
    off: Box<[Found]>,
}

impl Object {
    fn excepted(&self) -> bool {
        self.findings.iter().any(|f| f.exception != 0)
    }
}

/// What makes two workloads of a namespace one entry of the findings section: the same kind,
/// verdict, reason, mutations and findings (their lines relative to their document's start).
#[derive(Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    kind: Sym,
    verdict: Verdict,
    reason: Sym,
    mutations: u32,
    mutated_by: Box<[Sym]>,
    findings: Vec<FoundKey>,
}

/// A [`Found`] as [`GroupKey`] compares it.
type FoundKey = ([Sym; 7], bool, Effect, Option<i64>, Option<i64>);

impl GroupKey {
    fn of(o: &Object) -> GroupKey {
        GroupKey {
            kind: o.kind,
            verdict: o.verdict,
            reason: o.reason,
            mutations: o.mutations,
            mutated_by: o.mutated_by.clone(),
            findings: o
                .findings
                .iter()
                .map(|f| {
                    (
                        [
                            f.policy,
                            f.rule,
                            f.container,
                            f.field,
                            f.message,
                            f.hint,
                            f.exception,
                        ],
                        f.notice,
                        f.effect,
                        f.enforced_from.map(Timestamp::unix),
                        f.line.zip(o.line).map(|(l, s)| i64::from(l) - i64::from(s)),
                    )
                })
                .collect(),
        }
    }
}

/// A namespace of the findings section: its name, counts, entries (workloads with the same
/// findings together) and the names of the workloads that passed with no finding.
type NamespaceEntries<'o> = (String, Tally, Vec<Vec<&'o Object>>, Vec<String>);

/// Gathers the rows of an audit for the page.
#[derive(Debug, Default)]
pub(super) struct Collector {
    strings: Strings,
    objects: Vec<Object>,
    others: usize,
    /// Labels of the namespaces seen in the input.
    labels: HashMap<String, BTreeMap<String, String>>,
    exceptions: HashMap<String, Arc<ExceptionInfo>>,
}

impl Collector {
    /// Keeps what the page needs of one row; the fields' lines come from `positions`.
    pub(super) fn push(&mut self, row: Row, positions: &mut dyn FieldPositions) {
        if let (Some(labels), Some(name)) = (&row.namespace_labels, &row.name) {
            self.labels.insert(name.clone(), labels.clone());
        }
        if row.verdict == Verdict::NotAWorkload {
            self.others += 1;
            return;
        }
        let s = &mut self.strings;
        let mut intern = |f: &crate::engine::Finding| {
            if let Some(e) = &f.exception {
                self.exceptions
                    .entry(e.name.clone())
                    .or_insert_with(|| e.clone());
            }
            Found {
                policy: s.add(&f.policy),
                rule: s.add(f.rule),
                notice: f.kind == FindingKind::Notice,
                effect: f.effect,
                container: s.opt(f.container.as_deref()),
                field: s.add(&f.field),
                message: s.add(&f.message),
                hint: s.add(&f.hint),
                exception: s.opt(f.exception.as_ref().map(|e| e.name.as_str())),
                enforced_from: f.enforced_from,
                line: positions
                    .field_position(&row.location, &f.field)
                    .and_then(|p| u32::try_from(p.line).ok()),
            }
        };
        let findings = row.findings.iter().map(&mut intern).collect();
        let off = row.off_violations.iter().map(&mut intern).collect();
        let to32 = |n: Option<usize>| n.and_then(|n| u32::try_from(n).ok());
        let object = Object {
            kind: s.add(&row.kind),
            namespace: s.opt(row.namespace.as_deref()),
            name: row.name.as_deref().unwrap_or("(unnamed)").into(),
            file: s.add(&row.location.file),
            document: to32(row.location.document_index),
            item: to32(row.location.item_index),
            line: to32(row.location.line),
            verdict: row.verdict,
            reason: s.opt(row.reason.as_deref()),
            mutated_by: row.mutated_by.iter().map(|p| s.add(p)).collect(),
            mutations: u32::try_from(row.mutations).unwrap_or(u32::MAX),
            findings,
            off,
        };
        self.objects.push(object);
    }

    /// Renders the page.
    pub(super) fn render(
        &self,
        context: &RunContext,
        summary: &Summary,
        unused: &[(Arc<CompiledException>, Diagnostic)],
        readiness: &Readiness,
    ) -> String {
        Page::new(self, context, summary, unused, readiness).render()
    }
}

/// Counts of a namespace or a group of namespaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    workloads: usize,
    deny: usize,
    warn: usize,
    pass: usize,
    excepted: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, o: &Object) {
        match o.verdict {
            Verdict::Deny => self.deny += 1,
            Verdict::Warn => self.warn += 1,
            Verdict::Pass => self.pass += 1,
            Verdict::Skipped => {
                self.skipped += 1;
                return;
            }
            Verdict::NotAWorkload | Verdict::Error => return,
        }
        self.workloads += 1;
        if o.excepted() {
            self.excepted += 1;
        }
    }

    fn plus(&mut self, o: &Tally) {
        self.workloads += o.workloads;
        self.deny += o.deny;
        self.warn += o.warn;
        self.pass += o.pass;
        self.excepted += o.excepted;
        self.skipped += o.skipped;
    }

    /// Worst first: most denied, then most warned.
    fn badness(&self) -> (std::cmp::Reverse<usize>, std::cmp::Reverse<usize>) {
        (std::cmp::Reverse(self.deny), std::cmp::Reverse(self.warn))
    }
}

/// The page being rendered.
struct Page<'a> {
    c: &'a Collector,
    context: &'a RunContext,
    summary: &'a Summary,
    unused: &'a [(Arc<CompiledException>, Diagnostic)],
    /// Readiness per policy (the JSON report's).
    readiness: &'a Readiness,
    /// Namespaces (display names) worst first, with their counts.
    namespaces: Vec<(String, Tally)>,
    out: String,
    /// Fix texts by interned hint: their number in the page (`F3`).
    fix_numbers: HashMap<Sym, usize>,
}

/// Where the summary says what the findings section could not show.
const CUT_MARK: &str = "<!-- cut -->";

/// How the page names a namespace; workloads that set none and were given none with `-n`.
const NO_NAMESPACE: &str = "(no namespace)";

impl<'a> Page<'a> {
    fn new(
        c: &'a Collector,
        context: &'a RunContext,
        summary: &'a Summary,
        unused: &'a [(Arc<CompiledException>, Diagnostic)],
        readiness: &'a Readiness,
    ) -> Page<'a> {
        let mut tallies: HashMap<String, Tally> = HashMap::new();
        for o in &c.objects {
            if matches!(o.verdict, Verdict::Error) {
                continue;
            }
            let ns = Page::namespace_of_in(c, context, o);
            tallies.entry(ns).or_default().add(o);
        }
        let mut namespaces: Vec<(String, Tally)> = tallies.into_iter().collect();
        namespaces.sort_by(|a, b| a.1.badness().cmp(&b.1.badness()).then(a.0.cmp(&b.0)));
        Page {
            c,
            context,
            summary,
            unused,
            readiness,
            namespaces,
            out: String::with_capacity(1 << 20),
            fix_numbers: HashMap::new(),
        }
    }

    fn namespace_of_in(c: &Collector, context: &RunContext, o: &Object) -> String {
        match (o.namespace, &context.default_namespace) {
            (0, Some(d)) => d.clone(),
            (0, None) => NO_NAMESPACE.to_owned(),
            (n, _) => c.strings.get(n).to_owned(),
        }
    }

    fn namespace_of(&self, o: &Object) -> String {
        Page::namespace_of_in(self.c, self.context, o)
    }

    fn s(&self, i: Sym) -> &'a str {
        self.c.strings.get(i)
    }

    fn workloads(&self) -> impl Iterator<Item = &'a Object> + 'a {
        self.c
            .objects
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Deny | Verdict::Warn | Verdict::Pass))
    }

    fn render(mut self) -> String {
        let cut = self.render_sections();
        let note = cut
            .map(|n| format!("<p class=\"note\"><a href=\"#cut\">{n}</a></p>\n"))
            .unwrap_or_default();
        self.out.replacen(CUT_MARK, &note, 1)
    }

    /// Renders every section; what the findings section could not show in full, if anything.
    fn render_sections(&mut self) -> Option<String> {
        self.head();
        self.summary_section();
        self.readiness_section();
        self.namespaces_section();
        self.groups_section();
        self.policies_section();
        self.schedules_section();
        self.exceptions_section();
        self.baseline_section();
        let cut = self.findings_section();
        self.tail();
        cut
    }

    fn head(&mut self) {
        let title = format!("Portcullis audit: {}", self.context.scope);
        let _ = write!(
            self.out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"portcullis {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            env!("CARGO_PKG_VERSION"),
            esc(&title)
        );
        let result = self.summary.result_line();
        let fails = self.summary.fails();
        let _ = write!(
            self.out,
            "<header>\n<h1>Portcullis audit report</h1>\n<p class=\"scope\">{} · judged as at <time datetime=\"{}\">{}</time> · policies from <code>{}</code></p>\n<p class=\"result {}\" id=\"result\">{}</p>\n",
            esc(&self.context.scope),
            self.context.time,
            self.context.time,
            esc(&self.context.policy_source),
            if fails { "fail" } else { "pass" },
            esc(&result)
        );
        self.out.push_str("<nav aria-label=\"Sections\"><a href=\"#summary\">Summary</a> <a href=\"#readiness\">Readiness</a> <a href=\"#namespaces\">Namespaces</a>");
        if self.context.group_by.is_some() {
            self.out.push_str(" <a href=\"#groups\">Groups</a>");
        }
        self.out.push_str(" <a href=\"#policies\">Policies and rules</a> <a href=\"#schedules\">Schedules</a> <a href=\"#exceptions\">Exceptions</a>");
        if self.context.baseline.is_some() {
            self.out
                .push_str(" <a href=\"#baseline\">Since the baseline</a>");
        }
        self.out
            .push_str(" <a href=\"#findings\">Findings</a></nav>\n");
        self.out.push_str("<p class=\"controls\"><label><input type=\"checkbox\" id=\"only-failing\"> Show only what fails (denied workloads, and the namespaces and groups that have them)</label></p>\n</header>\n<main>\n");
    }

    fn summary_section(&mut self) {
        let s = *self.summary;
        let excepted = self.workloads().filter(|o| o.excepted()).count();
        self.out.push_str("<section id=\"summary\" aria-labelledby=\"summary-h\">\n<h2 id=\"summary-h\">Summary</h2>\n<dl class=\"cards\">\n");
        let cards: [(&str, &str, usize, &str); 8] = [
            ("judged", "Workloads judged", s.judged, ""),
            ("denied", "Denied", s.denied, "deny"),
            ("warned", "Warned", s.warned, "warn"),
            ("passed", "Passed", s.passed, "pass"),
            ("excepted", "Excepted", excepted, "exc"),
            ("skipped", "Skipped", s.skipped, ""),
            ("other", "Not workloads", s.other, ""),
            (
                "errors",
                "Unreadable",
                s.errors,
                if s.errors > 0 { "deny" } else { "" },
            ),
        ];
        for (key, label, n, class) in cards {
            let _ = writeln!(
                self.out,
                "<div class=\"card {class}\"><dt>{label}</dt><dd data-count=\"{key}\">{}</dd></div>",
                thousands(n)
            );
        }
        self.out.push_str("</dl>\n<p class=\"dim legend\">Excepted: workloads with a finding an exception excepts (also counted by their verdict). Skipped: objects judged at their owner (a Deployment's ReplicaSets and Pods). Unreadable: documents that could not be read.</p>\n");
        if s.judged > 0 {
            self.out.push_str(&bar(&[
                ("denied", s.denied, "deny"),
                ("warned", s.warned, "warn"),
                ("passed", s.passed, "pass"),
            ]));
        }
        // Replaced by a note when the findings section cannot show everything.
        self.out.push_str(CUT_MARK);
        self.out.push_str("</section>\n");
    }

    fn readiness_section(&mut self) {
        self.out.push_str("<section id=\"readiness\" aria-labelledby=\"readiness-h\">\n<h2 id=\"readiness-h\">Readiness per policy</h2>\n<p>If the policy were <code>enforce</code> today, everywhere, these workloads would be denied: those with a violation of it that no exception covers (as judged at the audit's time; mutations of <code>enforce</code> policies applied first). Policies that are <code>off</code> are judged too, for this table only: they decide nothing.</p>\n");
        self.out.push_str("<table class=\"sortable\" id=\"readiness-table\">\n<thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Mode now</th><th scope=\"col\" class=\"n\">Workloads selected</th><th scope=\"col\" class=\"n\">Would be denied if enforced today</th><th scope=\"col\" class=\"n\">Excepted</th><th scope=\"col\">Ready</th></tr></thead>\n<tbody>\n");
        let mut policies = self.context.policies.policies.clone();
        // Policies that can deny first (most workloads they would deny first), then those
        // that only mutate.
        let readiness = self.readiness;
        policies.sort_by_cached_key(|p| {
            (
                p.rules.iter().all(|r| r.is_mutation()),
                std::cmp::Reverse(readiness.of(&p.name).would_deny),
            )
        });
        for p in &policies {
            let name = p.name.as_str();
            let r = readiness.of(name);
            let mutated = self
                .workloads()
                .filter(|o| o.mutated_by.iter().any(|&q| self.s(q) == name))
                .count();
            let modes = p.modes_at(self.context.time);
            let mode_text = modes
                .iter()
                .map(|(scope, m)| {
                    if scope == "*" && modes.len() == 1 {
                        m.as_str().to_owned()
                    } else {
                        format!("{} in {scope}", m.as_str())
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let validates = p.rules.iter().any(|r| !r.is_mutation());
            let _ = write!(
                self.out,
                "<tr data-policy=\"{}\" class=\"{}\"><th scope=\"row\"><a href=\"#policy-{}\">{}</a></th><td>{}</td>",
                esc(name),
                if r.would_deny > 0 { "fails" } else { "ok" },
                slug(name),
                esc(name),
                esc(&mode_text)
            );
            if !validates {
                let what = if p.strictest_mode() == Mode::Off {
                    "off: mutates nothing; never denies".to_owned()
                } else {
                    format!(
                        "mutates {} workload{}; never denies",
                        thousands(mutated),
                        plural(mutated)
                    )
                };
                let _ = writeln!(
                    self.out,
                    "<td class=\"n\">{}</td><td class=\"n\" data-would-deny=\"0\">0</td><td class=\"n\">-</td><td>{what}</td></tr>",
                    thousands(r.selected),
                );
                continue;
            }
            let ready = r.selected - r.would_deny;
            let pct = percent(ready, r.selected);
            let _ = writeln!(
                self.out,
                "<td class=\"n\">{}</td><td class=\"n\" data-would-deny=\"{}\">{}</td><td class=\"n\">{}</td><td><span class=\"meter\" role=\"img\" aria-label=\"{pct}% ready\"><span style=\"width:{pct}%\"></span></span> {pct}% ready ({} of {})</td></tr>",
                thousands(r.selected),
                r.would_deny,
                thousands(r.would_deny),
                thousands(r.excepted),
                thousands(ready),
                thousands(r.selected)
            );
        }
        self.out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn tally_table(&mut self, id: &str, first: &str, rows: &[(String, Tally, Option<String>)]) {
        let _ = write!(
            self.out,
            "<table class=\"sortable tally\" id=\"{id}\">\n<thead><tr><th scope=\"col\">{first}</th><th scope=\"col\" class=\"n\">Workloads</th><th scope=\"col\" class=\"n\">Deny</th><th scope=\"col\" class=\"n\">Warn</th><th scope=\"col\" class=\"n\">Pass</th><th scope=\"col\" class=\"n\">Excepted</th><th scope=\"col\" class=\"n\">Skipped</th><th scope=\"col\">Verdicts</th></tr></thead>\n<tbody>\n"
        );
        for (name, t, link) in rows {
            let fails = t.deny > 0;
            let label = match link {
                Some(href) => format!("<a href=\"{href}\">{}</a>", esc(name)),
                None => esc(name),
            };
            let _ = writeln!(
                self.out,
                "<tr class=\"{}\" data-name=\"{}\"><th scope=\"row\">{label}</th><td class=\"n\" data-k=\"workloads\">{}</td><td class=\"n\" data-k=\"deny\">{}</td><td class=\"n\" data-k=\"warn\">{}</td><td class=\"n\" data-k=\"pass\">{}</td><td class=\"n\" data-k=\"excepted\">{}</td><td class=\"n\" data-k=\"skipped\">{}</td><td>{}</td></tr>",
                if fails { "fails" } else { "ok" },
                esc(name),
                thousands(t.workloads),
                thousands(t.deny),
                thousands(t.warn),
                thousands(t.pass),
                thousands(t.excepted),
                thousands(t.skipped),
                bar(&[
                    ("deny", t.deny, "deny"),
                    ("warn", t.warn, "warn"),
                    ("pass", t.pass, "pass")
                ])
            );
        }
        self.out.push_str("</tbody>\n</table>\n");
    }

    fn namespaces_section(&mut self) {
        self.out.push_str("<section id=\"namespaces\" aria-labelledby=\"namespaces-h\">\n<h2 id=\"namespaces-h\">Namespaces</h2>\n<p>Worst first (most denied, then most warned). Excepted: workloads with a finding an exception excepts (they are also counted by their verdict). Skipped: objects judged at their owner.</p>\n");
        let rows: Vec<(String, Tally, Option<String>)> = self
            .namespaces
            .iter()
            .map(|(n, t)| (n.clone(), *t, Some(format!("#ns-{}", slug(n)))))
            .collect();
        self.tally_table("namespace-table", "Namespace", &rows);
        self.out.push_str("</section>\n");
    }

    /// The labels known of a namespace.
    fn labels_of(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.c
            .labels
            .get(namespace)
            .or_else(|| self.context.namespace_labels.get(namespace))
    }

    fn groups_section(&mut self) {
        let Some(label) = self.context.group_by.clone() else {
            return;
        };
        let missing = format!("(no {label} label)");
        let mut groups: BTreeMap<String, (Tally, Vec<String>)> = BTreeMap::new();
        for (ns, t) in &self.namespaces {
            let value = self
                .labels_of(ns)
                .and_then(|l| l.get(&label))
                .cloned()
                .unwrap_or_else(|| missing.clone());
            let g = groups.entry(value).or_default();
            g.0.plus(t);
            g.1.push(ns.clone());
        }
        let mut rows: Vec<(String, Tally, Option<String>)> = groups
            .iter()
            .map(|(v, (t, _))| (v.clone(), *t, None))
            .collect();
        rows.sort_by(|a, b| a.1.badness().cmp(&b.1.badness()).then(a.0.cmp(&b.0)));
        let _ = write!(
            self.out,
            "<section id=\"groups\" aria-labelledby=\"groups-h\">\n<h2 id=\"groups-h\">By namespace label <code>{}</code></h2>\n<p>Namespaces grouped by the value of their label <code>{}</code> (labels from the cluster, or from the <code>Namespace</code> objects in the input), worst first.</p>\n",
            esc(&label),
            esc(&label)
        );
        self.tally_table("group-table", &esc(&label), &rows);
        self.out
            .push_str("<details><summary>Which namespaces are in each group</summary>\n<ul>\n");
        for (v, (_, members)) in &groups {
            let _ = writeln!(
                self.out,
                "<li><b>{}</b>: {}</li>",
                esc(v),
                members
                    .iter()
                    .map(|m| format!("<a href=\"#ns-{}\">{}</a>", slug(m), esc(m)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        self.out.push_str("</ul>\n</details>\n</section>\n");
    }

    fn policies_section(&mut self) {
        self.out.push_str("<section id=\"policies\" aria-labelledby=\"policies-h\">\n<h2 id=\"policies-h\">Policies and rules</h2>\n<p>Per rule: what it requires, how many workloads violate it, and how to fix it (each fix is numbered; the findings below refer to it). The rules of policies that are <code>off</code> are judged too: what they would find, were they on.</p>\n");
        // (policy, rule) -> (workloads, findings, hint -> count)
        type RuleTally = (HashSet<usize>, usize, BTreeMap<Sym, usize>);
        let mut per_rule: HashMap<(Sym, Sym), RuleTally> = HashMap::new();
        for (i, o) in self.c.objects.iter().enumerate() {
            // The violations of `off` policies too: what they would find, were they on.
            for f in o.findings.iter().filter(|f| !f.notice).chain(o.off.iter()) {
                let t = per_rule.entry((f.policy, f.rule)).or_default();
                t.0.insert(i);
                t.1 += 1;
                *t.2.entry(f.hint).or_default() += 1;
            }
        }
        let mut next_fix = 1;
        let policies = self.context.policies.policies.clone();
        for p in &policies {
            let _ = writeln!(
                self.out,
                "<h3 id=\"policy-{}\">{} <span class=\"mode m-{}\">{}</span></h3>",
                slug(&p.name),
                esc(&p.name),
                p.mode.as_str(),
                esc(p.mode.as_str())
            );
            if let Some(d) = &p.description {
                let _ = writeln!(self.out, "<p>{}</p>", esc(d));
            }
            self.out.push_str("<table class=\"rules\">\n<thead><tr><th scope=\"col\">Rule</th><th scope=\"col\" class=\"n\">Workloads violating</th><th scope=\"col\" class=\"n\">Findings</th><th scope=\"col\">Fixes</th></tr></thead>\n<tbody>\n");
            let mut seen = HashSet::new();
            for r in &p.rules {
                let rule = r.type_name();
                if !seen.insert(rule) {
                    continue;
                }
                let about = code_spans(&esc(&super::sarif::rule_type_description(rule)));
                if r.is_mutation() {
                    let _ = writeln!(
                        self.out,
                        "<tr><th scope=\"row\"><code>{rule}</code></th><td class=\"n\">-</td><td class=\"n\">-</td><td><p class=\"about\">{about}</p>mutation: never denies</td></tr>"
                    );
                    continue;
                }
                let key = (
                    self.c
                        .strings
                        .index
                        .get(p.name.as_str())
                        .copied()
                        .unwrap_or(Sym::MAX),
                    self.c.strings.index.get(rule).copied().unwrap_or(Sym::MAX),
                );
                let (workloads, findings, hints) = per_rule
                    .get(&key)
                    .map(|t| (t.0.len(), t.1, t.2.clone()))
                    .unwrap_or_default();
                let mut hints: Vec<(Sym, usize)> = hints.into_iter().collect();
                hints.sort_by(|a, b| b.1.cmp(&a.1).then(self.s(a.0).cmp(self.s(b.0))));
                let mut fixes = String::new();
                for (hint, n) in &hints {
                    let number = next_fix;
                    next_fix += 1;
                    self.fix_numbers.insert(*hint, number);
                    let _ = write!(
                        fixes,
                        "<li id=\"fix-{number}\"><b>F{number}</b> {} <span class=\"dim\">({} finding{})</span></li>",
                        esc(self.s(*hint)),
                        thousands(*n),
                        plural(*n)
                    );
                }
                let fixes = if fixes.is_empty() {
                    "<span class=\"dim\">nothing to fix</span>".to_owned()
                } else {
                    format!("<ul class=\"fixes\">{fixes}</ul>")
                };
                let _ = writeln!(
                    self.out,
                    "<tr class=\"{}\"><th scope=\"row\"><code>{rule}</code></th><td class=\"n\" data-k=\"violating\">{}</td><td class=\"n\">{}</td><td><p class=\"about\">{about}</p>{fixes}</td></tr>",
                    if workloads > 0 { "fails" } else { "ok" },
                    thousands(workloads),
                    thousands(findings)
                );
            }
            self.out.push_str("</tbody>\n</table>\n");
        }
        self.out.push_str("</section>\n");
    }

    fn schedules_section(&mut self) {
        self.out.push_str("<section id=\"schedules\" aria-labelledby=\"schedules-h\">\n<h2 id=\"schedules-h\">Coming schedule steps</h2>\n");
        let time = self.context.time;
        let policies = self.context.policies.policies.clone();
        let mut any = false;
        for p in &policies {
            let coming: Vec<_> = p.schedule.iter().filter(|s| s.from > time).collect();
            if coming.is_empty() {
                continue;
            }
            any = true;
            let _ = writeln!(
                self.out,
                "<h3>{} <span class=\"dim\">(now {})</span></h3>\n<table class=\"schedule\">\n<thead><tr><th scope=\"col\">From</th><th scope=\"col\">Mode</th><th scope=\"col\">Namespaces</th><th scope=\"col\" class=\"n\">Workloads it will deny</th><th scope=\"col\">Which</th></tr></thead>\n<tbody>",
                esc(&p.name),
                esc(p.mode.as_str())
            );
            for step in coming {
                // Newly denied from this step: a violation whose first enforcing step here is
                // this one, not excepted past it.
                let mut denied: Vec<String> = Vec::new();
                let mut kept: usize = 0;
                if step.mode == Mode::Enforce {
                    for o in self.workloads() {
                        let mut hit = false;
                        let mut held = false;
                        // A policy `off` now is measured: its violations are in `off`.
                        for f in o.findings.iter().chain(o.off.iter()).filter(|f| {
                            !f.notice
                                && self.s(f.policy) == p.name
                                && f.enforced_from == Some(step.from)
                        }) {
                            let excepted_past = f.exception != 0
                                && self
                                    .c
                                    .exceptions
                                    .get(self.s(f.exception))
                                    .is_some_and(|e| e.expires > step.from);
                            if excepted_past {
                                held = true;
                            } else {
                                hit = true;
                            }
                        }
                        if hit {
                            denied.push(self.title_of(o));
                        } else if held {
                            kept += 1;
                        }
                    }
                }
                denied.sort();
                let days = days_between(time, step.from);
                let which = if step.mode != Mode::Enforce {
                    "<span class=\"dim\">does not enforce: denies nothing new</span>".to_owned()
                } else {
                    let mut w = list_capped(&denied);
                    if kept > 0 {
                        let _ = write!(
                            w,
                            " <span class=\"dim\">({} more excepted past that date)</span>",
                            thousands(kept)
                        );
                    }
                    w
                };
                let _ = writeln!(
                    self.out,
                    "<tr class=\"{}\" data-policy=\"{}\" data-from=\"{}\"><td><time datetime=\"{}\">{}</time> <span class=\"dim\">(in {})</span></td><td>{}</td><td><code>{}</code></td><td class=\"n\" data-k=\"denied\">{}</td><td>{which}</td></tr>",
                    if denied.is_empty() { "ok" } else { "fails" },
                    esc(&p.name),
                    step.from,
                    step.from,
                    step.from,
                    esc(&days),
                    step.mode.as_str(),
                    esc(&step_scope(step)),
                    thousands(denied.len())
                );
            }
            self.out.push_str("</tbody>\n</table>\n");
        }
        if !any {
            self.out
                .push_str("<p>No policy has a schedule step after the audit's time.</p>\n");
        }
        self.out.push_str("</section>\n");
    }

    fn title_of(&self, o: &Object) -> String {
        let ns = self.namespace_of(o);
        format!("{} {ns}/{}", self.s(o.kind), o.name)
    }

    fn exceptions_section(&mut self) {
        self.out.push_str("<section id=\"exceptions\" aria-labelledby=\"exceptions-h\">\n<h2 id=\"exceptions-h\">Exceptions</h2>\n");
        let set = &self.context.policies.exceptions;
        if set.is_empty() {
            self.out
                .push_str("<p>The policy set has no exceptions.</p>\n</section>\n");
            return;
        }
        let mut used: HashMap<&str, (HashSet<usize>, usize)> = HashMap::new();
        for (i, o) in self.c.objects.iter().enumerate() {
            for f in o.findings.iter().filter(|f| f.exception != 0) {
                let u = used.entry(self.s(f.exception)).or_default();
                u.0.insert(i);
                u.1 += 1;
            }
        }
        let unused: HashSet<&str> = self
            .unused
            .iter()
            .map(|(e, _)| e.info.name.as_str())
            .collect();
        self.out.push_str("<table class=\"sortable\" id=\"exception-table\">\n<thead><tr><th scope=\"col\">Exception</th><th scope=\"col\">Owner</th><th scope=\"col\">Reason</th><th scope=\"col\">Ticket</th><th scope=\"col\">Expires</th><th scope=\"col\" class=\"n\">Days left</th><th scope=\"col\" class=\"n\">Workloads</th><th scope=\"col\" class=\"n\">Findings</th><th scope=\"col\">Status</th></tr></thead>\n<tbody>\n");
        let time = self.context.time;
        for e in set.iter() {
            let info = &e.info;
            let (workloads, findings) = used
                .get(info.name.as_str())
                .map(|u| (u.0.len(), u.1))
                .unwrap_or_default();
            let in_force = e.in_force(time);
            let (status, class) = if !in_force {
                ("expired: no effect".to_owned(), "ok")
            } else if unused.contains(info.name.as_str()) {
                ("in force, matched nothing".to_owned(), "fails")
            } else {
                ("in force".to_owned(), "ok")
            };
            let left = (info.expires.unix() - time.unix()).div_euclid(86_400);
            let _ = writeln!(
                self.out,
                "<tr class=\"{class}\" data-exception=\"{}\"><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td><time datetime=\"{}\">{}</time></td><td class=\"n\" data-k=\"days\">{}</td><td class=\"n\" data-k=\"workloads\">{}</td><td class=\"n\" data-k=\"findings\">{}</td><td>{}</td></tr>",
                esc(&info.name),
                esc(&info.name),
                esc(&info.owner),
                esc(&info.reason),
                esc(info.ticket.as_deref().unwrap_or("-")),
                info.expires,
                info.expires,
                if in_force {
                    left.to_string()
                } else {
                    "-".to_owned()
                },
                thousands(workloads),
                thousands(findings),
                esc(&status)
            );
        }
        self.out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn baseline_section(&mut self) {
        let Some(baseline) = &self.context.baseline else {
            return;
        };
        let baseline: &Baseline = baseline;
        let mut now: HashMap<String, (String, String, usize, &Found)> = HashMap::new();
        for (i, o) in self.c.objects.iter().enumerate() {
            if !matches!(o.verdict, Verdict::Deny | Verdict::Warn | Verdict::Pass) {
                continue;
            }
            for f in o.findings.iter().filter(|f| !f.notice) {
                let ns = (o.namespace != 0).then(|| self.s(o.namespace));
                let key = finding_key(
                    self.s(o.kind),
                    ns,
                    Some(&o.name),
                    self.s(f.policy),
                    self.s(f.rule),
                    (f.container != 0).then(|| self.s(f.container)),
                    self.s(f.field),
                );
                now.insert(
                    key,
                    (self.namespace_of(o), self.s(f.policy).to_owned(), i, f),
                );
            }
        }
        // namespace -> (new, fixed); policy -> (new, fixed)
        let mut by_ns: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut by_policy: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut new_list = Vec::new();
        for (key, (ns, policy, i, f)) in &now {
            if !baseline.findings.contains_key(key) {
                by_ns.entry(ns.clone()).or_default().0 += 1;
                by_policy.entry(policy.clone()).or_default().0 += 1;
                let o = &self.c.objects[*i];
                new_list.push(format!(
                    "{}: [{}] {}{} ({})",
                    self.title_of(o),
                    policy,
                    if f.container != 0 {
                        format!("container \"{}\": ", self.s(f.container))
                    } else {
                        String::new()
                    },
                    self.s(f.message),
                    self.s(f.field)
                ));
            }
        }
        let mut fixed_list = Vec::new();
        for (key, b) in &baseline.findings {
            if !now.contains_key(key) {
                let ns = b
                    .namespace
                    .clone()
                    .or_else(|| self.context.default_namespace.clone())
                    .unwrap_or_else(|| NO_NAMESPACE.to_owned());
                by_ns.entry(ns).or_default().1 += 1;
                by_policy.entry(b.policy.clone()).or_default().1 += 1;
                fixed_list.push(format!(
                    "{}: [{}] {}{} ({})",
                    b.workload,
                    b.policy,
                    b.container
                        .as_ref()
                        .map(|c| format!("container \"{c}\": "))
                        .unwrap_or_default(),
                    b.message,
                    b.field
                ));
            }
        }
        new_list.sort();
        fixed_list.sort();
        let _ = write!(
            self.out,
            "<section id=\"baseline\" aria-labelledby=\"baseline-h\">\n<h2 id=\"baseline-h\">Since the baseline</h2>\n<p>Compared with <code>{}</code> ({} workloads judged then): <b data-count=\"new\">{}</b> new finding{}, <b data-count=\"fixed\">{}</b> fixed (or their workload gone). A finding is the same when its policy, rule, workload, container and field are.</p>\n",
            esc(&baseline.file),
            thousands(baseline.judged),
            thousands(new_list.len()),
            plural(new_list.len()),
            thousands(fixed_list.len())
        );
        for (id, first, rows) in [
            ("baseline-namespaces", "Namespace", &by_ns),
            ("baseline-policies", "Policy", &by_policy),
        ] {
            let _ = writeln!(
                self.out,
                "<table class=\"sortable\" id=\"{id}\">\n<thead><tr><th scope=\"col\">{first}</th><th scope=\"col\" class=\"n\">New</th><th scope=\"col\" class=\"n\">Fixed</th></tr></thead>\n<tbody>"
            );
            for (name, (n, f)) in rows {
                let _ = writeln!(
                    self.out,
                    "<tr class=\"{}\" data-name=\"{}\"><th scope=\"row\">{}</th><td class=\"n\" data-k=\"new\">{}</td><td class=\"n\" data-k=\"fixed\">{}</td></tr>",
                    if *n > 0 { "fails" } else { "ok" },
                    esc(name),
                    esc(name),
                    thousands(*n),
                    thousands(*f)
                );
            }
            self.out.push_str("</tbody>\n</table>\n");
        }
        for (title, list) in [("New findings", &new_list), ("Fixed findings", &fixed_list)] {
            let _ = writeln!(
                self.out,
                "<details><summary>{title} ({})</summary>\n<ul class=\"plain\">",
                thousands(list.len())
            );
            for item in list.iter().take(LISTED * 4) {
                let _ = writeln!(self.out, "<li>{}</li>", esc(item));
            }
            if list.len() > LISTED * 4 {
                let _ = writeln!(
                    self.out,
                    "<li class=\"note\">and {} more, not listed here to keep the page small (the JSON reports have them all)</li>",
                    thousands(list.len() - LISTED * 4)
                );
            }
            self.out.push_str("</ul>\n</details>\n");
        }
        self.out.push_str("</section>\n");
    }

    fn findings_section(&mut self) -> Option<String> {
        self.out.push_str("<section id=\"findings\" aria-labelledby=\"findings-h\">\n<h2 id=\"findings-h\">Findings by workload</h2>\n<p>By namespace, worst first; in each, denied workloads first. Each violation and notice: effect, policy, container, what is wrong, the field (and its line in the file), the fix. Workloads of a namespace with the same findings (same kind, verdict, findings at the same place in their document, mutations) are one entry that names them all. Mutations are counted (<code>portcullis mutate --diff</code> shows them).</p>\n");
        let mut by_ns: HashMap<String, Vec<&Object>> = HashMap::new();
        for o in &self.c.objects {
            if matches!(o.verdict, Verdict::Error) {
                continue;
            }
            by_ns.entry(self.namespace_of(o)).or_default().push(o);
        }
        let order = |v: Verdict| match v {
            Verdict::Deny => 0,
            Verdict::Warn => 1,
            Verdict::Pass => 2,
            _ => 3,
        };
        // Per namespace, worst first: its entries (workloads with the same findings together,
        // in the order of their first), and the workloads that passed with no finding.
        let mut sections: Vec<NamespaceEntries<'_>> = Vec::new();
        for (ns, t) in &self.namespaces {
            let Some(mut objects) = by_ns.remove(ns) else {
                continue;
            };
            objects.sort_by(|a, b| {
                order(a.verdict)
                    .cmp(&order(b.verdict))
                    .then(self.s(a.kind).cmp(self.s(b.kind)))
                    .then(a.name.cmp(&b.name))
            });
            let mut entries: Vec<Vec<&Object>> = Vec::new();
            let mut index: HashMap<GroupKey, usize> = HashMap::new();
            let mut quiet: Vec<String> = Vec::new();
            for o in objects {
                if o.findings.is_empty() && o.verdict == Verdict::Pass {
                    quiet.push(format!("{} {}", self.s(o.kind), o.name));
                    continue;
                }
                match index.entry(GroupKey::of(o)) {
                    std::collections::hash_map::Entry::Occupied(e) => entries[*e.get()].push(o),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(entries.len());
                        entries.push(vec![o]);
                    }
                }
            }
            sections.push((ns.clone(), *t, entries, quiet));
        }
        // Fix texts inline when the page has room for them; else by their number (F3).
        let mut estimate = self.out.len();
        let mut hints = 0;
        for (_, _, entries, quiet) in &sections {
            estimate += 120 + quiet.iter().map(|q| q.len() + 2).sum::<usize>();
            for entry in entries {
                estimate += 200 + entry.iter().map(|o| o.name.len() + 40).sum::<usize>();
                for f in entry[0].findings.iter() {
                    estimate += 110
                        + self.s(f.field).len()
                        + self.s(f.message).len()
                        + self.s(f.policy).len()
                        + self.s(f.container).len();
                    hints += self.s(f.hint).len();
                }
            }
        }
        let inline_fixes = estimate + hints < BUDGET;
        if !inline_fixes {
            self.out.push_str("<p class=\"note\">Each finding names its fix by number (F1, F2, ...): the texts are under <a href=\"#policies\">Policies and rules</a>, written once to keep the page small.</p>\n");
        }
        self.out.push_str("<p class=\"filter-box\" hidden><label>Filter workloads by name: <input type=\"search\" id=\"name-filter\" placeholder=\"e.g. shop/web\"></label></p>\n");
        let mut brief = 0usize;
        let mut counted = 0usize;
        for (ns, t, entries, quiet) in &sections {
            let _ = writeln!(
                self.out,
                "<section class=\"ns {}\" id=\"ns-{}\" aria-labelledby=\"ns-{}-h\">\n<h3 id=\"ns-{}-h\">{} <span class=\"dim\">({} denied, {} warned, {} passed)</span></h3>",
                if t.deny > 0 { "fails" } else { "ok" },
                slug(ns),
                slug(ns),
                slug(ns),
                esc(ns),
                thousands(t.deny),
                thousands(t.warn),
                thousands(t.pass)
            );
            for entry in entries {
                if self.out.len() > BUDGET {
                    counted += entry.len();
                    continue;
                }
                if self.out.len() > BUDGET * 9 / 10 {
                    brief += entry.len();
                    for o in entry {
                        self.brief_workload(o);
                    }
                    continue;
                }
                match entry.as_slice() {
                    [o] => self.workload(o, inline_fixes),
                    _ => self.group(entry, inline_fixes),
                }
            }
            if !quiet.is_empty() && self.out.len() <= BUDGET {
                let _ = writeln!(
                    self.out,
                    "<p class=\"quiet ok\">Passed with no findings ({}): {}</p>",
                    thousands(quiet.len()),
                    esc(&quiet.join(", "))
                );
            } else if !quiet.is_empty() {
                counted += quiet.len();
            }
            self.out.push_str("</section>\n");
        }
        let cut = (brief > 0 || counted > 0).then(|| {
            format!(
                "Not shown in full, to keep this page under 5 MB: workloads are listed worst namespace first, and past that size the findings of {} workload{} are only listed by name and count, and {} more workload{} only counted in the tables above. portcullis audit -o json has every finding; -n NAMESPACE makes a page per namespace.",
                thousands(brief),
                plural(brief),
                thousands(counted),
                plural(counted)
            )
        });
        if let Some(text) = &cut {
            let _ = writeln!(self.out, "<p class=\"note\" id=\"cut\">{}</p>", esc(text));
        }
        let errors: Vec<&Object> = self
            .c
            .objects
            .iter()
            .filter(|o| o.verdict == Verdict::Error)
            .collect();
        if !errors.is_empty() {
            self.out.push_str(
                "<h3 id=\"unreadable\">Unreadable documents</h3>\n<ul class=\"plain\">\n",
            );
            for o in errors {
                let _ = writeln!(
                    self.out,
                    "<li class=\"fails\"><span class=\"badge deny\">ERROR</span> <code>{}</code>: {}</li>",
                    esc(&self.where_(o)),
                    esc(self.s(o.reason))
                );
            }
            self.out.push_str("</ul>\n");
        }
        self.out.push_str("</section>\n");
        cut
    }

    /// `file#2.items[0], line 14`, or nothing for the cluster.
    fn where_(&self, o: &Object) -> String {
        let location = Location {
            file: self.s(o.file).to_owned(),
            document_index: o.document.map(|d| d as usize),
            item_index: o.item.map(|i| i as usize),
            line: o.line.map(|l| l as usize),
        };
        let mut w = location.to_string();
        if let Some(l) = o.line {
            let _ = write!(w, ", line {l}");
        }
        w
    }

    fn badge(v: Verdict) -> (&'static str, &'static str) {
        match v {
            Verdict::Deny => ("DENY", "deny"),
            Verdict::Warn => ("WARN", "warn"),
            Verdict::Pass => ("PASS", "pass"),
            Verdict::Skipped => ("SKIPPED", "skip"),
            Verdict::NotAWorkload => ("OTHER", "skip"),
            Verdict::Error => ("ERROR", "deny"),
        }
    }

    fn brief_workload(&mut self, o: &Object) {
        let (text, class) = Page::badge(o.verdict);
        let _ = writeln!(
            self.out,
            "<p class=\"w {class}\" data-name=\"{}\"><span class=\"badge {class}\">{text}</span> {} {} <span class=\"dim\">({} finding{})</span></p>",
            esc(&self.title_of(o)),
            esc(self.s(o.kind)),
            esc(&o.name),
            o.findings.len(),
            plural(o.findings.len())
        );
    }

    fn workload(&mut self, o: &Object, inline_fixes: bool) {
        let (text, class) = Page::badge(o.verdict);
        let from_file = !self.s(o.file).starts_with('<');
        let _ = write!(
            self.out,
            "<article class=\"w {class}\" data-name=\"{}\" data-verdict={}><h4><b class=\"badge {class}\">{text}</b> {} {}",
            esc(&self.title_of(o)),
            o.verdict.as_str(),
            esc(self.s(o.kind)),
            esc(&o.name)
        );
        if from_file {
            let _ = write!(self.out, " <small>{}</small>", esc(&self.where_(o)));
        }
        self.out.push_str("</h4>\n");
        self.entry_body(o, inline_fixes, false);
    }

    /// Workloads of one namespace with the same findings: one entry naming them all, the
    /// findings once (their lines as lines of each document, when read from files).
    fn group(&mut self, members: &[&Object], inline_fixes: bool) {
        let Some(&o) = members.first() else {
            return;
        };
        let (text, class) = Page::badge(o.verdict);
        let kind = self.s(o.kind);
        let _ = write!(
            self.out,
            "<article class=\"w {class} group\" data-name=\"{} {}/\" data-verdict={} data-workloads={}><h4><b class=\"badge {class}\">{text}</b> {} {kind} workloads with the same findings</h4>\n<ul class=\"members\">",
            esc(kind),
            esc(&self.namespace_of(o)),
            o.verdict.as_str(),
            members.len(),
            thousands(members.len()),
        );
        for m in members {
            let _ = write!(self.out, "<li>{}", esc(&m.name));
            if !self.s(m.file).starts_with('<') {
                let _ = write!(self.out, " <small>{}</small>", esc(&self.where_(m)));
            }
            self.out.push_str("</li>");
        }
        self.out.push_str("</ul>\n");
        self.entry_body(o, inline_fixes, true);
    }

    /// What follows an entry's heading, for one workload or a group (`grouped`: each of its
    /// workloads): why it was not judged, its findings, its mutations; then the entry's end.
    fn entry_body(&mut self, o: &Object, inline_fixes: bool, grouped: bool) {
        if o.reason != 0 {
            let _ = writeln!(self.out, "<p class=\"dim\">{}</p>", esc(self.s(o.reason)));
        }
        self.findings_list(o, inline_fixes, grouped);
        if o.mutations > 0 {
            let _ = writeln!(
                self.out,
                "<p class=dim>{} mutation{}{}: {}</p>",
                o.mutations,
                plural(o.mutations as usize),
                if grouped { " each" } else { "" },
                esc(&o
                    .mutated_by
                    .iter()
                    .map(|&p| self.s(p))
                    .collect::<Vec<_>>()
                    .join(", "))
            );
        }
        self.out.push_str("</article>\n");
    }

    /// The violations and notices of `o` (of each workload of its group, when `grouped`).
    fn findings_list(&mut self, o: &Object, inline_fixes: bool, grouped: bool) {
        if !o.findings.is_empty() {
            self.out.push_str("<ul class=findings>\n");
            for f in o.findings.iter() {
                let (effect, eclass) = if f.notice {
                    ("note", "note")
                } else {
                    match f.effect {
                        Effect::Deny | Effect::Apply => ("deny", "deny"),
                        Effect::Warn => ("warn", "warn"),
                        Effect::Audit => ("audit", "audit"),
                        Effect::Excepted => ("excepted", "exc"),
                    }
                };
                let _ = write!(
                    self.out,
                    "<li class={eclass}><b class=e>{effect}</b> {}",
                    esc(self.s(f.policy))
                );
                if f.container != 0 {
                    let _ = write!(self.out, " · <b>{}</b>", esc(self.s(f.container)));
                }
                let _ = write!(
                    self.out,
                    ": {} <code>{}</code>",
                    esc(self.s(f.message)),
                    esc(self.s(f.field))
                );
                match (f.line, o.line) {
                    (Some(line), Some(start)) if grouped => {
                        let _ = write!(
                            self.out,
                            " <span class=\"dim\">line {} of each document</span>",
                            i64::from(line) - i64::from(start) + 1
                        );
                    }
                    (Some(line), _) if !grouped => {
                        let _ = write!(self.out, " <span class=\"dim\">line {line}</span>");
                    }
                    _ => {}
                }
                if f.hint != 0 {
                    let number = self.fix_numbers.get(&f.hint).copied();
                    match (inline_fixes, number) {
                        (true, Some(n)) => {
                            let _ = write!(
                                self.out,
                                "<br><span class=\"fix\">fix: {} <a href=\"#fix-{n}\">F{n}</a></span>",
                                esc(self.s(f.hint))
                            );
                        }
                        (true, None) => {
                            let _ = write!(
                                self.out,
                                "<br><span class=\"fix\">fix: {}</span>",
                                esc(self.s(f.hint))
                            );
                        }
                        (false, Some(n)) => {
                            let _ = write!(self.out, " <a href=#fix-{n}>F{n}</a>");
                        }
                        (false, None) => {
                            let _ = write!(self.out, " fix: {}", esc(self.s(f.hint)));
                        }
                    }
                }
                if f.exception != 0 {
                    let name = self.s(f.exception);
                    if let Some(e) = self.c.exceptions.get(name) {
                        let _ = write!(
                            self.out,
                            "<br><span class=\"dim\">exception {} (owner {}, expires {}): {}</span>",
                            esc(&e.name),
                            esc(&e.owner),
                            e.expires,
                            esc(&e.reason)
                        );
                    }
                } else if let Some(from) = f.enforced_from {
                    let _ = write!(
                        self.out,
                        "<br><span class=\"dim\">denied from {from} (the policy's schedule enforces it then)</span>"
                    );
                }
                self.out.push_str("</li>\n");
            }
            self.out.push_str("</ul>\n");
        }
    }

    fn tail(&mut self) {
        let _ = write!(
            self.out,
            "</main>\n<footer><p>Generated by Portcullis {} from the same judgement as <code>portcullis audit -o json</code>. This page loads nothing from any network address.</p></footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with its `backquoted` parts as `<code>`.
fn code_spans(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len() + 16);
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// An id-safe form of a name (namespace and policy names are already DNS labels; anything
/// else is hex-escaped so that two names never share an id).
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: usize, whole: usize) -> usize {
    (part * 100).checked_div(whole).unwrap_or(100)
}

/// `in 45 days`, `in 10 hours`.
fn days_between(from: Timestamp, to: Timestamp) -> String {
    let secs = to.unix() - from.unix();
    if secs >= 2 * 86_400 {
        format!("{} days", secs / 86_400)
    } else {
        let hours = secs / 3600;
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    }
}

/// Names, the first [`LISTED`], then how many more.
fn list_capped(names: &[String]) -> String {
    if names.is_empty() {
        return "<span class=\"dim\">none</span>".to_owned();
    }
    let mut out = esc(&names
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", "));
    if names.len() > LISTED {
        let _ = write!(out, " and {} more", thousands(names.len() - LISTED));
    }
    out
}

/// A horizontal bar of parts (inline SVG), with its numbers as text for whoever cannot see it.
fn bar(parts: &[(&str, usize, &str)]) -> String {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let label = parts
        .iter()
        .map(|(name, n, _)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    if total == 0 {
        return String::new();
    }
    let mut svg = format!(
        "<svg class=\"bar\" viewBox=\"0 0 100 4\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(&label),
        esc(&label)
    );
    let mut x = 0.0f64;
    for (_, n, class) in parts {
        if *n == 0 {
            continue;
        }
        let w = *n as f64 * 100.0 / total as f64;
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"4\"/>"
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

/// The page's style: system fonts only, colours always paired with text.
const CSS: &str = r##"
:root{--deny:#b42318;--deny-bg:#fef3f2;--warn:#b54708;--warn-bg:#fffaeb;--pass:#067647;--pass-bg:#ecfdf3;--exc:#5925dc;--exc-bg:#f4f3ff;--dim:#5d6b82;--line:#d0d5dd;--bg:#f8f9fb;--ink:#101828}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:18px 32px 10px}
main{padding:8px 32px 32px;max-width:1400px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:28px 0 10px;padding-top:6px}
h3{font-size:16px;margin:18px 0 8px}
h4{font-size:14px;margin:0 0 4px;font-weight:600}
code{font:12.5px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;padding:1px 4px;border-radius:3px;word-break:break-all}
a{color:#1849a9}
.scope,.dim{color:var(--dim)}
.result{display:inline-block;font-weight:700;padding:3px 10px;border-radius:4px;margin:6px 0}
.result.fail{background:var(--deny-bg);color:var(--deny);border:1px solid var(--deny)}
.result.pass{background:var(--pass-bg);color:var(--pass);border:1px solid var(--pass)}
nav a{margin-right:12px;font-size:14px}
.controls{margin:8px 0 0;font-size:14px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 12px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:128px}
.legend{font-size:13px;margin:0 0 10px}
.card dt{font-size:13px;color:var(--dim)}
.card dd{margin:0;font-size:26px;font-weight:700}
.card.deny dd{color:var(--deny)}.card.warn dd{color:var(--warn)}.card.pass dd{color:var(--pass)}.card.exc dd{color:var(--exc)}
svg.bar{display:block;width:100%;max-width:640px;height:14px;border-radius:3px;background:#eaecf0}
td svg.bar{width:160px;height:10px}
rect.deny{fill:var(--deny)}rect.warn{fill:#f79009}rect.pass{fill:#12b76a}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);margin:6px 0 12px;font-size:14px}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eaecf0;vertical-align:top}
thead th{background:#f2f4f7;font-size:13px;white-space:nowrap}
thead th button{all:unset;cursor:pointer}
thead th button::after{content:" \2195";color:var(--dim)}
.n{text-align:right;font-variant-numeric:tabular-nums}
tr.fails th[scope=row]{border-left:3px solid var(--deny)}
.meter{display:inline-block;width:90px;height:8px;background:#eaecf0;border-radius:4px;vertical-align:middle;overflow:hidden}
.meter span{display:block;height:100%;background:#12b76a}
.mode{font-size:12px;font-weight:600;padding:1px 6px;border-radius:3px;background:#eef1f5}
.m-enforce{color:var(--deny)}.m-warn{color:var(--warn)}
.about{margin:0 0 4px;color:var(--dim);font-size:13px}
table.rules th code{white-space:nowrap}
.fixes{margin:0;padding-left:0;list-style:none}.fixes li{margin:2px 0}
.badge{display:inline-block;font-size:11px;font-weight:700;padding:1px 6px;border-radius:3px;letter-spacing:.03em}
.badge.deny{background:var(--deny-bg);color:var(--deny);border:1px solid var(--deny)}
.badge.warn{background:var(--warn-bg);color:var(--warn);border:1px solid var(--warn)}
.badge.pass{background:var(--pass-bg);color:var(--pass);border:1px solid var(--pass)}
.badge.skip{background:#f2f4f7;color:var(--dim);border:1px solid var(--line)}
section.ns{content-visibility:auto;contain-intrinsic-size:auto 600px}
article.w{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:8px 0}
article.w.deny{border-left:4px solid var(--deny)}article.w.warn{border-left:4px solid var(--warn)}article.w.pass{border-left:4px solid var(--pass)}
ul.findings{margin:4px 0;padding-left:18px;font-size:14px}
ul.findings li{margin:3px 0}
li .e{font-size:12px;text-transform:uppercase;margin-right:4px}
li.deny .e{color:var(--deny)}li.warn .e{color:var(--warn)}li.exc .e{color:var(--exc)}li.audit .e,li.note .e{color:var(--dim)}
.fix{color:#344054}
.note{background:var(--warn-bg);border:1px solid #fedf89;padding:6px 10px;border-radius:4px}
ul.plain{padding-left:18px}
p.w{margin:2px 0;font-size:13px}
ul.members{list-style:none;margin:2px 0 6px;padding:0;font-size:13px;display:flex;flex-wrap:wrap;gap:2px 14px;max-height:9.5em;overflow:auto}
body:has(#only-failing:checked) .ok{display:none}
body:has(#only-failing:checked) article.w:not(.deny),body:has(#only-failing:checked) p.w:not(.deny){display:none}
.hidden-by-filter{display:none}
footer{padding:12px 32px;color:var(--dim);font-size:13px}
@media print{.controls,nav{display:none}section.ns{content-visibility:visible}}
"##;

/// The page's script: sortable tables and a filter by name. Progressive: without it, the page
/// shows everything, and the "only what fails" switch works through CSS.
const SCRIPT: &str = r##"
"use strict";
(function () {
  function num(td) {
    var t = td.textContent.replace(/,/g, "").trim();
    var n = parseFloat(t);
    return isNaN(n) ? null : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = th.textContent;
      b.title = "Sort by " + th.textContent;
      th.textContent = "";
      th.appendChild(b);
      var desc = true;
      b.addEventListener("click", function () {
        desc = !desc;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (x, y) {
          var a = x.cells[col], c = y.cells[col];
          var na = num(a), nc = num(c);
          var r = (na !== null && nc !== null) ? na - nc : a.textContent.localeCompare(c.textContent);
          return desc ? -r : r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      });
    });
  });
  var box = document.querySelector(".filter-box");
  var input = document.getElementById("name-filter");
  if (box && input) {
    box.hidden = false;
    var items = document.querySelectorAll("#findings .w, #namespace-table tbody tr");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      items.forEach(function (el) {
        var name = (el.getAttribute("data-name") || "").toLowerCase();
        if (!el.classList.contains("group")) {
          el.classList.toggle("hidden-by-filter", q !== "" && name.indexOf(q) < 0);
          return;
        }
        // A group: "Kind namespace/" and its members' names.
        var any = false;
        el.querySelectorAll(".members > li").forEach(function (li) {
          var hit = q === "" || (name + li.firstChild.textContent.toLowerCase()).indexOf(q) >= 0;
          li.classList.toggle("hidden-by-filter", !hit);
          any = any || hit;
        });
        el.classList.toggle("hidden-by-filter", !any);
      });
    });
  }
  document.documentElement.setAttribute("data-ready", "true");
  if (window.performance && performance.mark) { performance.mark("portcullis-usable"); }
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(slug("team-a"), "team-a");
        assert_ne!(slug("a.b"), slug("a_b"));
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(
            code_spans("a `b` c `d`"),
            "a <code>b</code> c <code>d</code>"
        );
    }
}
