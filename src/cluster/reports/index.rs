//! What the cluster's reports must say, decided without any I/O: the judged workloads of every
//! namespace, kept in memory, and from them the report each namespace must have (within the
//! budget and the limits) and the reports that must go. Deterministic: the policies, the
//! namespaces' labels and the time are passed in ([`Judge`]); the writer feeds it the watches'
//! events and writes what [`Index::plan`] says differs from what the API server has.
//!
//! Workloads are kept as compact JSON with a digest of their results, not the results (several
//! times an object's size): a report is built by judging its namespace's workloads again, which
//! takes microseconds each, and a policy change, a label change or the periodic pass judges them
//! again without listing the cluster again.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde_json::Value;

use super::content::{self, Limits, Summary, WorkloadRef, WorkloadResults};
use crate::audit;
use crate::engine::NamespaceLabels;
use crate::policy::model::WorkloadKind;
use crate::policy::{PolicySet, Timestamp};

/// A namespace's labels.
pub type Labels = BTreeMap<String, String>;

/// What a judgement reads besides the workload.
pub struct Judge<'a> {
    /// The policies in force.
    pub policies: &'a PolicySet,
    /// A namespace's labels; `None` while it is not known (not in the namespace cache yet, or
    /// deleted): its workloads get no results until it is.
    pub labels: &'a dyn Fn(&str) -> Option<Labels>,
    /// The time, which decides the exceptions in force and what schedules do.
    pub now: Timestamp,
}

impl Judge<'_> {
    /// The results of one workload (`None`: not judged here, e.g. controller-owned).
    fn results(
        &self,
        namespace: &str,
        object: &Value,
        labels: Option<&Labels>,
    ) -> Option<WorkloadResults> {
        if audit::has_controller_owner(object) {
            return None;
        }
        let results = match labels {
            Some(labels) => {
                let decision = audit::decide(
                    self.policies,
                    object,
                    Some(namespace),
                    NamespaceLabels::Known(labels),
                    self.now,
                );
                content::results_of(&decision)?
            }
            None => Vec::new(),
        };
        let str_of = |ptr: &str| {
            object
                .pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Some(WorkloadResults {
            workload: WorkloadRef {
                api_version: str_of("/apiVersion"),
                kind: str_of("/kind"),
                name: str_of("/metadata/name"),
                uid: str_of("/metadata/uid"),
            },
            results,
        })
    }
}

/// A judged workload: what it takes to judge it again, and what its results amount to.
struct Tracked {
    /// The object, compact (as the writer keeps it).
    json: Box<[u8]>,
    /// A hash of its results, to tell whether an event changed them.
    digest: u64,
    /// Its results by status.
    summary: Summary,
    /// The exceptions that excepted one of its findings.
    exceptions: Box<[String]>,
}

impl Tracked {
    fn digest(results: &WorkloadResults) -> u64 {
        let mut h = DefaultHasher::new();
        results.hash(&mut h);
        h.finish()
    }

    fn new(json: Box<[u8]>, results: &WorkloadResults) -> Tracked {
        let mut summary = Summary::default();
        summary.add(&results.results);
        let mut exceptions: Vec<String> = Vec::new();
        for name in results
            .results
            .iter()
            .filter_map(|r| r.properties.get(content::EXCEPTION_PROPERTY))
        {
            if !exceptions.contains(name) {
                exceptions.push(name.clone());
            }
        }
        Tracked {
            json,
            digest: Tracked::digest(results),
            summary,
            exceptions: exceptions.into_boxed_slice(),
        }
    }

    fn object(&self) -> Option<Value> {
        serde_json::from_slice(&self.json).ok()
    }
}

#[derive(Default)]
struct Namespace {
    /// Hash of the labels the workloads were judged with (`None`: not known).
    labels: Option<u64>,
    /// Judged workloads by kind and name.
    workloads: BTreeMap<(WorkloadKind, String), Tracked>,
}

/// The writes that bring the cluster's reports to what they must say.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Reports to apply (their content differs from the stored one, or none is stored), by
    /// namespace, in the budget's order.
    pub applies: Vec<(String, Value)>,
    /// Namespaces whose stored report must go (no results, or over the budget), by name.
    pub deletes: Vec<String>,
    /// Namespaces with results that get no report: over the budget.
    pub over_budget: usize,
    /// Results the reports' limits leave out, over every report.
    pub left_out: usize,
}

/// The judged workloads of the cluster, by namespace, and the reports they make.
pub struct Index {
    limits: Limits,
    budget: usize,
    namespaces: HashMap<String, Namespace>,
    /// Content hash of each report as last built, by namespace.
    built: HashMap<String, u64>,
    /// Results each report as last built left out (its limits).
    left_out: HashMap<String, usize>,
    /// Namespaces whose results changed since their report was last built.
    dirty: HashSet<String>,
}

impl Index {
    /// An empty index; reports get at most `limits` each, and at most `budget` namespaces get
    /// one.
    pub fn new(limits: Limits, budget: usize) -> Index {
        Index {
            limits,
            budget,
            namespaces: HashMap::new(),
            built: HashMap::new(),
            left_out: HashMap::new(),
            dirty: HashSet::new(),
        }
    }

    /// Judges a workload (as the writer keeps it: `apiVersion`, `kind`, no status) and keeps
    /// it; one not judged here (controller-owned) is forgotten.
    pub fn upsert(
        &mut self,
        judge: &Judge,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        object: &Value,
    ) {
        let labels = (judge.labels)(namespace);
        let Some(results) = judge.results(namespace, object, labels.as_ref()) else {
            self.remove(kind, namespace, name);
            return;
        };
        let json = serde_json::to_vec(object).unwrap_or_default();
        let tracked = Tracked::new(json.into_boxed_slice(), &results);
        let state = self.namespaces.entry(namespace.to_owned()).or_default();
        state.labels = labels.as_ref().map(hash_labels);
        let key = (kind, name.to_owned());
        let changed = state
            .workloads
            .get(&key)
            .is_none_or(|t| t.digest != tracked.digest);
        state.workloads.insert(key, tracked);
        if changed {
            self.dirty.insert(namespace.to_owned());
        }
    }

    /// Forgets a workload (deleted).
    pub fn remove(&mut self, kind: WorkloadKind, namespace: &str, name: &str) {
        if let Some(state) = self.namespaces.get_mut(namespace)
            && state.workloads.remove(&(kind, name.to_owned())).is_some()
        {
            self.dirty.insert(namespace.to_owned());
            if state.workloads.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
    }

    /// After a full list of `kind`: forgets its workloads that the list did not have.
    pub fn keep_only(&mut self, kind: WorkloadKind, listed: &HashSet<(String, String)>) {
        let gone: Vec<(String, String)> = self
            .namespaces
            .iter()
            .flat_map(|(ns, state)| {
                state
                    .workloads
                    .keys()
                    .filter(|(k, _)| *k == kind)
                    .map(move |(_, name)| (ns.clone(), name.clone()))
            })
            .filter(|key| !listed.contains(key))
            .collect();
        for (ns, name) in gone {
            self.remove(kind, &ns, &name);
        }
    }

    /// Every namespace with workloads, by name.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.namespaces.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// The namespaces whose labels differ from those their workloads were judged with, by name.
    pub fn relabelled(&self, judge: &Judge) -> Vec<String> {
        let mut changed: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(ns, state)| (judge.labels)(ns).as_ref().map(hash_labels) != state.labels)
            .map(|(ns, _)| ns.clone())
            .collect();
        changed.sort_unstable();
        changed
    }

    /// Judges a namespace's workloads again (policies, labels or time changed).
    pub fn judge_namespace(&mut self, judge: &Judge, namespace: &str) {
        let labels = (judge.labels)(namespace);
        let Some(state) = self.namespaces.get_mut(namespace) else {
            return;
        };
        state.labels = labels.as_ref().map(hash_labels);
        let mut changed = false;
        state.workloads.retain(|_, tracked| {
            let fresh = tracked
                .object()
                .and_then(|object| judge.results(namespace, &object, labels.as_ref()));
            match fresh {
                Some(results) => {
                    if Tracked::digest(&results) != tracked.digest {
                        *tracked = Tracked::new(std::mem::take(&mut tracked.json), &results);
                        changed = true;
                    }
                    true
                }
                None => {
                    changed = true;
                    false
                }
            }
        });
        if state.workloads.is_empty() {
            self.namespaces.remove(namespace);
        }
        if changed {
            self.dirty.insert(namespace.to_owned());
        }
    }

    /// How many workloads are kept.
    pub fn workload_count(&self) -> usize {
        self.namespaces.values().map(|n| n.workloads.len()).sum()
    }

    /// The names of the exceptions that excepted a finding of some kept workload.
    pub fn exceptions_in_use(&self) -> HashSet<&str> {
        self.namespaces
            .values()
            .flat_map(|n| n.workloads.values())
            .flat_map(|t| t.exceptions.iter().map(String::as_str))
            .collect()
    }

    /// What to write, given the content hash of each report the API server has (by
    /// namespace): the reports whose content differs (only namespaces whose results changed,
    /// or whose stored report is not the one last built, are built again), and the reports of
    /// namespaces that must not have one.
    pub fn plan(&mut self, judge: &Judge, stored: &HashMap<String, u64>) -> Plan {
        let (wanted, over_budget) = self.wanted();
        let mut applies = Vec::new();
        for ns in &wanted {
            let rebuild = self.dirty.contains(ns) || !self.built.contains_key(ns);
            if !rebuild && stored.get(ns) == self.built.get(ns) {
                continue;
            }
            let (report, dropped) = self.build(judge, ns);
            let h = content::content_hash(&report);
            self.built.insert(ns.clone(), h);
            self.left_out.insert(ns.clone(), dropped);
            if stored.get(ns) != Some(&h) {
                applies.push((ns.clone(), report));
            }
        }
        self.dirty.clear();
        let wanted: HashSet<&String> = wanted.iter().collect();
        let mut deletes: Vec<String> = stored
            .keys()
            .filter(|ns| !wanted.contains(ns))
            .cloned()
            .collect();
        deletes.sort_unstable();
        self.built.retain(|ns, _| wanted.contains(ns));
        self.left_out.retain(|ns, _| wanted.contains(ns));
        Plan {
            applies,
            deletes,
            over_budget,
            left_out: self.left_out.values().sum(),
        }
    }

    /// A namespace's report was not written: the next plan builds it again.
    pub fn not_written(&mut self, namespace: &str) {
        self.built.remove(namespace);
    }

    /// No report was written (this replica no longer leads): the next plan builds them all
    /// again.
    pub fn none_written(&mut self) {
        self.built.clear();
    }

    /// Namespaces that get a report: those with results, failures first, then warnings, then
    /// by name, up to the budget; and how many are over it.
    fn wanted(&self) -> (Vec<String>, usize) {
        let summaries = self.namespaces.iter().map(|(ns, s)| {
            let mut summary = Summary::default();
            for t in s.workloads.values() {
                summary.merge(t.summary);
            }
            (ns.as_str(), summary)
        });
        within_budget(summaries, self.budget)
    }

    /// The report of a namespace, its workloads judged again now.
    fn build(&self, judge: &Judge, namespace: &str) -> (Value, usize) {
        let labels = (judge.labels)(namespace);
        let judged: Vec<WorkloadResults> = self
            .namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|s| s.workloads.values())
            .filter_map(Tracked::object)
            .filter_map(|object| judge.results(namespace, &object, labels.as_ref()))
            .collect();
        content::build_report(namespace, &judged, &self.limits)
    }
}

/// The namespaces that get a report, given each one's counts: those with results, failures
/// first, then warnings, then by name, at most `budget` of them; and how many were left out.
pub fn within_budget<'a>(
    summaries: impl IntoIterator<Item = (&'a str, Summary)>,
    budget: usize,
) -> (Vec<String>, usize) {
    // Three groups (with failures; with warnings; the rest), each by name.
    let mut ranked: Vec<(u8, &str)> = summaries
        .into_iter()
        .filter(|(_, s)| s.total() > 0)
        .map(|(ns, s)| {
            let group = if s.fail > 0 {
                0
            } else if s.warn > 0 {
                1
            } else {
                2
            };
            (group, ns)
        })
        .collect();
    ranked.sort_unstable();
    let over = ranked.len().saturating_sub(budget);
    let wanted = ranked
        .into_iter()
        .take(budget)
        .map(|(_, ns)| ns.to_owned())
        .collect();
    (wanted, over)
}

fn hash_labels(labels: &Labels) -> u64 {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::cluster::reports::Status;

    /// Probes are enforced in namespaces labelled `strict: "yes"`; resource requests are
    /// wanted (warn) everywhere.
    const POLICIES: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: probes}
spec:
  mode: enforce
  match:
    namespaceSelector: {matchLabels: {strict: "yes"}}
  rules:
    - requireProbes: {liveness: true, readiness: true}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: resources}
spec:
  mode: warn
  rules:
    - requireResources: {requests: [cpu, memory], limits: []}
"#;

    fn policies() -> PolicySet {
        crate::lint::load_str(Path::new("index-test.yaml"), POLICIES).expect("test policies")
    }

    /// What a workload has: nothing (fails where probes are enforced, warns everywhere),
    /// probes only (warns), or everything (passes).
    #[derive(Clone, Copy)]
    enum Has {
        Nothing,
        Probes,
        Everything,
    }

    fn deployment(namespace: &str, name: &str, has: Has) -> Value {
        let probe = json!({"httpGet": {"path": "/", "port": 80}});
        let mut container = json!({"name": "app", "image": "nginx:1.27"});
        if matches!(has, Has::Probes | Has::Everything) {
            container["livenessProbe"] = probe.clone();
            container["readinessProbe"] = probe;
        }
        if matches!(has, Has::Everything) {
            container["resources"] = json!({"requests": {"cpu": "100m", "memory": "64Mi"}});
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
            "spec": {"template": {"spec": {"containers": [container]}}}
        })
    }

    /// The labels of the namespaces the cache knows: `strict` ones, and the others.
    struct Cluster {
        strict: Vec<&'static str>,
        plain: Vec<&'static str>,
    }

    impl Cluster {
        fn labels(&self, ns: &str) -> Option<Labels> {
            let name = ("kubernetes.io/metadata.name".to_owned(), ns.to_owned());
            if self.strict.contains(&ns) {
                Some([name, ("strict".to_owned(), "yes".to_owned())].into())
            } else if self.plain.contains(&ns) {
                Some([name].into())
            } else {
                None
            }
        }
    }

    const NOW: Timestamp = Timestamp::from_unix(1_767_225_600); // 2026-01-01

    /// Runs `f` with a judge of the test policies over `cluster`.
    fn with_judge<T>(cluster: &Cluster, f: impl FnOnce(&Judge) -> T) -> T {
        let set = policies();
        let labels = |ns: &str| cluster.labels(ns);
        f(&Judge {
            policies: &set,
            labels: &labels,
            now: NOW,
        })
    }

    fn index_of(cluster: &Cluster, limits: Limits, budget: usize, workloads: &[Value]) -> Index {
        let mut index = Index::new(limits, budget);
        with_judge(cluster, |judge| {
            for w in workloads {
                let ns = w["metadata"]["namespace"].as_str().expect("namespace");
                let name = w["metadata"]["name"].as_str().expect("name");
                index.upsert(judge, WorkloadKind::Deployment, ns, name, w);
            }
        });
        index
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn applied(plan: &Plan) -> Vec<&str> {
        plan.applies.iter().map(|(ns, _)| ns.as_str()).collect()
    }

    /// What the API server holds after the plan's writes: each report's content hash.
    fn stored_after(plan: &Plan, mut stored: HashMap<String, u64>) -> HashMap<String, u64> {
        for (ns, report) in &plan.applies {
            stored.insert(ns.clone(), content::content_hash(report));
        }
        for ns in &plan.deletes {
            stored.remove(ns);
        }
        stored
    }

    #[test]
    fn plans_follow_the_budget_the_limits_and_the_cluster() {
        struct Case {
            name: &'static str,
            workloads: Vec<Value>,
            budget: usize,
            max_results: usize,
            /// Namespaces with a report stored (of other content).
            stored: &'static [&'static str],
            applies: &'static [&'static str],
            deletes: &'static [&'static str],
            over_budget: usize,
        }
        let cluster = Cluster {
            strict: vec!["b-fails", "c-passes", "e-fails"],
            plain: vec!["a-warns", "d-warns"],
        };
        let all = || {
            vec![
                deployment("a-warns", "web", Has::Probes),
                deployment("b-fails", "web", Has::Nothing),
                deployment("c-passes", "web", Has::Everything),
                deployment("d-warns", "web", Has::Nothing),
                deployment("e-fails", "web", Has::Probes),
                deployment("e-fails", "api", Has::Nothing),
            ]
        };
        let cases = [
            Case {
                name: "failures first, then warnings, then passes, each by name",
                workloads: all(),
                budget: 10,
                max_results: 50,
                stored: &[],
                applies: &["b-fails", "e-fails", "a-warns", "d-warns", "c-passes"],
                deletes: &[],
                over_budget: 0,
            },
            Case {
                name: "the budget keeps the first and deletes the stored reports over it",
                workloads: all(),
                budget: 3,
                max_results: 50,
                stored: &["c-passes", "d-warns", "b-fails"],
                applies: &["b-fails", "e-fails", "a-warns"],
                deletes: &["c-passes", "d-warns"],
                over_budget: 2,
            },
            Case {
                name: "a budget of zero writes nothing and deletes every report",
                workloads: all(),
                budget: 0,
                max_results: 50,
                stored: &["a-warns", "e-fails"],
                applies: &[],
                deletes: &["a-warns", "e-fails"],
                over_budget: 5,
            },
            Case {
                name: "maxResults bounds each report",
                workloads: all(),
                budget: 10,
                max_results: 1,
                stored: &[],
                applies: &["b-fails", "e-fails", "a-warns", "d-warns", "c-passes"],
                deletes: &[],
                over_budget: 0,
            },
            Case {
                name: "a namespace the cache does not know (deleted, or not there yet) gets no report",
                workloads: vec![
                    deployment("gone", "web", Has::Nothing),
                    deployment("a-warns", "web", Has::Nothing),
                ],
                budget: 10,
                max_results: 50,
                stored: &["gone"],
                applies: &["a-warns"],
                deletes: &["gone"],
                over_budget: 0,
            },
            Case {
                name: "a stored report of a namespace without workloads is stale",
                workloads: vec![],
                budget: 10,
                max_results: 50,
                stored: &["empty", "a-warns"],
                applies: &[],
                deletes: &["a-warns", "empty"],
                over_budget: 0,
            },
            Case {
                name: "controller-owned workloads are judged at their owner, not here",
                workloads: vec![{
                    let mut owned = deployment("b-fails", "web-1", Has::Nothing);
                    owned["metadata"]["ownerReferences"] =
                        json!([{"kind": "ReplicaSet", "name": "web", "controller": true}]);
                    owned
                }],
                budget: 10,
                max_results: 50,
                stored: &[],
                applies: &[],
                deletes: &[],
                over_budget: 0,
            },
        ];
        for case in cases {
            let limits = Limits {
                max_results: case.max_results,
                statuses: vec![Status::Fail, Status::Warn],
            };
            let mut index = index_of(&cluster, limits, case.budget, &case.workloads);
            let stored: HashMap<String, u64> =
                case.stored.iter().map(|ns| ((*ns).to_owned(), 0)).collect();
            let plan = with_judge(&cluster, |judge| index.plan(judge, &stored));
            assert_eq!(applied(&plan), case.applies, "{}", case.name);
            assert_eq!(plan.deletes, case.deletes, "{}", case.name);
            assert_eq!(plan.over_budget, case.over_budget, "{}", case.name);
            // Every report lists its failures and warnings up to maxResults, and the plan
            // counts what the limits left out.
            let mut left_out = 0;
            for (ns, report) in &plan.applies {
                assert_eq!(report["metadata"]["namespace"], json!(ns), "{}", case.name);
                let summary = &report["summary"];
                let listable =
                    summary["fail"].as_u64().unwrap_or(0) + summary["warn"].as_u64().unwrap_or(0);
                let listed = report["results"].as_array().map_or(0, Vec::len) as u64;
                assert_eq!(
                    listed,
                    listable.min(case.max_results as u64),
                    "{}: {ns}",
                    case.name
                );
                left_out += listable - listed;
            }
            assert_eq!(plan.left_out as u64, left_out, "{}", case.name);
        }
    }

    #[test]
    fn what_the_api_server_has_is_not_written_again() {
        let cluster = Cluster {
            strict: vec!["shop"],
            plain: vec!["blog"],
        };
        let web = deployment("shop", "web", Has::Nothing);
        let mut index = index_of(
            &cluster,
            Limits::default(),
            10,
            &[web.clone(), deployment("blog", "web", Has::Probes)],
        );
        let plan = |index: &mut Index, stored: &HashMap<String, u64>| {
            with_judge(&cluster, |judge| index.plan(judge, stored))
        };
        let first = plan(&mut index, &HashMap::new());
        assert_eq!(applied(&first), ["shop", "blog"]);
        let stored = stored_after(&first, HashMap::new());
        assert_eq!(
            plan(&mut index, &stored),
            Plan::default(),
            "at rest: nothing to write"
        );
        // The same object again (a resync, a status change): same results, nothing to write.
        with_judge(&cluster, |judge| {
            index.upsert(judge, WorkloadKind::Deployment, "shop", "web", &web);
        });
        assert_eq!(plan(&mut index, &stored), Plan::default());
        // Judged again with nothing changed (the periodic pass): nothing to write.
        with_judge(&cluster, |judge| {
            for ns in index.namespaces() {
                index.judge_namespace(judge, &ns);
            }
        });
        assert_eq!(plan(&mut index, &stored), Plan::default());
        // Someone edits the stored report: written back, with the same content as before.
        let mut edited = stored.clone();
        edited.insert("blog".to_owned(), 7);
        let again = plan(&mut index, &edited);
        assert_eq!(applied(&again), ["blog"]);
        assert_eq!(again.applies, first.applies[1..]);
        // Built again with the same content as stored (a failed write, a new leader that has
        // built nothing yet): nothing to write.
        index.not_written("shop");
        assert_eq!(plan(&mut index, &stored), Plan::default());
        let mut fresh = index_of(
            &cluster,
            Limits::default(),
            10,
            &[web.clone(), deployment("blog", "web", Has::Probes)],
        );
        assert_eq!(plan(&mut fresh, &stored), Plan::default());
        // A write that failed is built and tried again, even if nothing changed.
        index.not_written("shop");
        assert_eq!(
            applied(&plan(&mut index, &HashMap::new())),
            ["shop", "blog"]
        );
        // A fixed workload changes its namespace's report only.
        with_judge(&cluster, |judge| {
            let fixed = deployment("shop", "web", Has::Everything);
            index.upsert(judge, WorkloadKind::Deployment, "shop", "web", &fixed);
        });
        let fixed = plan(&mut index, &stored);
        assert_eq!(applied(&fixed), ["shop"]);
        assert_eq!(fixed.applies[0].1["summary"]["fail"], 0);
    }

    #[test]
    fn deleted_workloads_and_namespaces_lose_their_report() {
        let mut cluster = Cluster {
            strict: vec!["shop"],
            plain: vec!["blog"],
        };
        let mut index = index_of(
            &cluster,
            Limits::default(),
            10,
            &[
                deployment("shop", "web", Has::Nothing),
                deployment("blog", "web", Has::Nothing),
                deployment("blog", "api", Has::Nothing),
            ],
        );
        let first = with_judge(&cluster, |judge| index.plan(judge, &HashMap::new()));
        let stored = stored_after(&first, HashMap::new());
        assert_eq!(stored.len(), 2);
        // The namespace is deleted: gone from the cache, its report is stale.
        cluster.strict.clear();
        let relabelled = with_judge(&cluster, |judge| index.relabelled(judge));
        assert_eq!(relabelled, ["shop"]);
        with_judge(&cluster, |judge| index.judge_namespace(judge, "shop"));
        let plan = with_judge(&cluster, |judge| index.plan(judge, &stored));
        assert!(plan.applies.is_empty());
        assert_eq!(plan.deletes, ["shop"]);
        let stored = stored_after(&plan, stored);
        // One workload deleted: the report changes; a relist without the other: none left.
        index.remove(WorkloadKind::Deployment, "blog", "api");
        let plan = with_judge(&cluster, |judge| index.plan(judge, &stored));
        assert_eq!(applied(&plan), ["blog"]);
        let stored = stored_after(&plan, stored);
        index.keep_only(WorkloadKind::Deployment, &HashSet::new());
        assert_eq!(index.workload_count(), 0);
        let plan = with_judge(&cluster, |judge| index.plan(judge, &stored));
        assert_eq!(plan.deletes, ["blog"]);
    }

    #[test]
    fn relabelled_namespaces_are_judged_again() {
        let mut cluster = Cluster {
            strict: vec![],
            plain: vec!["shop"],
        };
        let mut index = index_of(
            &cluster,
            Limits::default(),
            10,
            &[deployment("shop", "web", Has::Nothing)],
        );
        let first = with_judge(&cluster, |judge| index.plan(judge, &HashMap::new()));
        assert_eq!(first.applies[0].1["summary"]["fail"], 0);
        let stored = stored_after(&first, HashMap::new());
        assert!(with_judge(&cluster, |judge| index.relabelled(judge)).is_empty());
        cluster.strict.push("shop");
        for ns in with_judge(&cluster, |judge| index.relabelled(judge)) {
            with_judge(&cluster, |judge| index.judge_namespace(judge, &ns));
        }
        let plan = with_judge(&cluster, |judge| index.plan(judge, &stored));
        assert_eq!(applied(&plan), ["shop"]);
        assert!(plan.applies[0].1["summary"]["fail"].as_u64() > Some(0));
    }

    #[test]
    fn the_budget_goes_to_failures_then_warnings_then_names() {
        let counts = |fail, warn, pass| Summary {
            fail,
            warn,
            pass,
            ..Summary::default()
        };
        let namespaces = [
            ("a-passes", counts(0, 0, 3)),
            ("b-warns", counts(0, 2, 1)),
            ("c-fails", counts(1, 0, 0)),
            ("d-nothing", counts(0, 0, 0)),
            ("e-fails", counts(4, 1, 0)),
        ];
        let cases: [(usize, &[&str], usize); 4] = [
            (0, &[], 4),
            (2, &["c-fails", "e-fails"], 2),
            (3, &["c-fails", "e-fails", "b-warns"], 1),
            // Nothing to report (d-nothing): no report.
            (10, &["c-fails", "e-fails", "b-warns", "a-passes"], 0),
        ];
        for (budget, wanted, over) in cases {
            let (got, got_over) = within_budget(namespaces, budget);
            assert_eq!((got, got_over), (strings(wanted), over), "budget {budget}");
        }
        // The order the namespaces come in does not matter.
        let mut reversed = namespaces;
        reversed.reverse();
        assert_eq!(within_budget(reversed, 3), within_budget(namespaces, 3));
    }
}
