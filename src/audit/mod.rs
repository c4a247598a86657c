//! Offline auditing: read manifests ([`read`]), judge each object with the engine exactly as
//! the webhook would on CREATE ([`judge`]), and report the results as text or JSON ([`report`]).
//! [`stream`] does all three as the input is read, on every core, in input order.

pub mod read;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::sync::{Mutex, mpsc};

use serde_json::Value;

use crate::engine::{self, Decision, Effect, Finding, FindingKind, NamespaceLabels, Request, Skip};
use crate::policy::model::WorkloadKind;
use crate::policy::{PolicySet, Timestamp};
use read::{Entry, Input, Item, Location, Manifest, ReadError, Reader, Skipped};

/// The username offline audits give objects that carry a controller `ownerReference` (Pods
/// from `kubectl get pods -o yaml`, ReplicaSets, Jobs of a CronJob): such objects were
/// created by Kubernetes' controllers and are judged at their owner, as in the cluster.
/// Objects without a controller `ownerReference` are judged with no username at all.
pub const OFFLINE_CONTROLLER_USERNAME: &str = "system:kube-controller-manager";

/// The outcome for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// An `enforce` policy is violated: the apiserver would reject the object.
    Deny,
    /// Admitted with warnings (a `warn` policy found something).
    Warn,
    /// Admitted (possibly mutated; `audit`-mode findings are only recorded).
    Pass,
    /// A workload the engine did not judge (controller-owned, malformed, ...).
    Skipped,
    /// Not a Pod or pod controller: admitted untouched.
    NotAWorkload,
    /// The document could not be read as a Kubernetes object.
    Error,
}

impl Verdict {
    /// `deny`, `warn`, `pass`, `skipped`, `not-a-workload`, `error` (the JSON spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Deny => "deny",
            Verdict::Warn => "warn",
            Verdict::Pass => "pass",
            Verdict::Skipped => "skipped",
            Verdict::NotAWorkload => "not-a-workload",
            Verdict::Error => "error",
        }
    }

    /// Whether the verdict fails a CI run (exit code 1).
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Deny | Verdict::Error)
    }
}

/// One object and the engine's decision about it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Where it was read.
    pub location: Location,
    /// The object as read.
    pub object: Value,
    /// The engine's decision.
    pub decision: Decision,
    /// The verdict derived from the decision.
    pub verdict: Verdict,
}

impl Judged {
    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `kind` of the object.
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        metadata_str(&self.object, "namespace")
    }

    /// `metadata.name` (or `generateName` followed by `*`), if set.
    pub fn name(&self) -> Option<String> {
        metadata_str(&self.object, "name")
            .map(str::to_owned)
            .or_else(|| metadata_str(&self.object, "generateName").map(|g| format!("{g}*")))
    }

    /// How reports name the object: `Deployment demo/web`, `ClusterRole admin`.
    pub fn title(&self) -> String {
        let name = self.name().unwrap_or_else(|| "(unnamed)".to_owned());
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{name}", self.kind()),
            None => format!("{} {name}", self.kind()),
        }
    }

    /// The object with the decision's patch applied.
    pub fn admitted(&self) -> Result<Value, json_patch::PatchError> {
        let mut object = self.object.clone();
        self.decision.patch.apply(&mut object)?;
        Ok(object)
    }
}

/// One entry of an audit, in input order.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A judged object.
    Judged(Box<Judged>),
    /// An unreadable input.
    Error(ReadError),
}

/// Options for judging manifests.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// The namespace assumed for objects that name none (like `kubectl apply -n`).
    pub default_namespace: Option<String>,
    /// When every object is judged (exceptions in force, scheduled modes): the time the audit
    /// started, or `--at`.
    pub time: Timestamp,
    /// Labels of namespaces known besides the input (a cluster's, for `audit --cluster`), by
    /// name. `Namespace` objects in the input take precedence.
    pub namespace_labels: LabelsByNamespace,
}

impl JudgeOptions {
    /// Judging at `time`, with no default namespace.
    pub fn at(time: Timestamp) -> JudgeOptions {
        JudgeOptions {
            default_namespace: None,
            time,
            namespace_labels: LabelsByNamespace::new(),
        }
    }
}

/// Judges every object read, as a CREATE. Namespace labels come from `Namespace` objects in
/// the same input; objects with a controller `ownerReference` are presented as created by
/// [`OFFLINE_CONTROLLER_USERNAME`].
pub fn judge(policies: &PolicySet, entries: Vec<Entry>, options: &JudgeOptions) -> Vec<Outcome> {
    let mut labels = HashMap::new();
    for entry in &entries {
        if let Entry::Object(m) = entry {
            add_namespace_labels(&mut labels, &m.object);
        }
    }
    entries
        .into_iter()
        .map(|entry| outcome(policies, entry, &labels, options))
        .collect()
}

fn outcome(
    policies: &PolicySet,
    entry: Entry,
    labels: &LabelsByNamespace,
    options: &JudgeOptions,
) -> Outcome {
    match entry {
        Entry::Error(e) => Outcome::Error(e),
        Entry::Object(m) => Outcome::Judged(Box::new(judge_one(policies, m, labels, options))),
    }
}

/// Labels of namespaces, by name.
pub type LabelsByNamespace = HashMap<String, BTreeMap<String, String>>;

/// What [`stream`] hands its sink, in input order.
#[derive(Debug)]
pub enum Streamed<T> {
    /// An outcome, as the `render` function made it.
    Outcome(T),
    /// A path the directory walk left out (a symbolic link loop).
    Skipped(Skipped),
}

/// Documents read ahead of the sink, at most: what bounds memory (each holds one document's
/// text or its rendered outcome).
const IN_FLIGHT: usize = 256;

/// Reads `inputs`, judges every object as [`judge`] does, renders each outcome with `render`
/// and hands the results to `sink` in input order, as the input is read: memory holds at most
/// [`IN_FLIGHT`] documents, whatever the size of the input. Parsing, judging and rendering
/// run on every core (one reader thread, one worker per core; `sink` runs on the calling
/// thread).
///
/// Namespace labels come from the `Namespace` objects anywhere in the input, as with
/// [`judge`]: when a policy, schedule or exception selects namespaces by a label other than
/// the name ([`PolicySet::selects_namespaces_by_label`]), the input is read twice (standard
/// input is kept in a temporary file, or in memory if none can be made); otherwise the labels
/// cannot change a decision and are not looked for.
pub fn stream<T: Send>(
    inputs: &[Input],
    policies: &PolicySet,
    options: &JudgeOptions,
    render: &(dyn Fn(Outcome) -> T + Sync),
    sink: &mut dyn FnMut(Streamed<T>),
) {
    let mut stdin = None;
    let mut labels = LabelsByNamespace::new();
    if policies.selects_namespaces_by_label() {
        if inputs.contains(&Input::Stdin) {
            stdin = Some(spool_stdin());
        }
        let reader = Reader::new(inputs).with_stdin(stdin.as_ref().map(Spool::reopen));
        for item in reader {
            if let Item::Document(doc) = item
                && doc.mentions(b"Namespace")
            {
                for entry in doc.entries() {
                    if let Entry::Object(m) = entry {
                        add_namespace_labels(&mut labels, &m.object);
                    }
                }
            }
        }
    }
    let open = || Reader::new(inputs).with_stdin(stdin.as_ref().map(Spool::reopen));
    let work = |item: Item| -> Vec<Streamed<T>> {
        match item {
            Item::Skipped(s) => vec![Streamed::Skipped(s)],
            other => other
                .into_entries()
                .into_iter()
                .map(|entry| Streamed::Outcome(render(outcome(policies, entry, &labels, options))))
                .collect(),
        }
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if workers == 1 {
        for item in open() {
            work(item).into_iter().for_each(&mut *sink);
        }
        return;
    }
    let (jobs, job_queue) = mpsc::sync_channel::<(usize, Item)>(IN_FLIGHT);
    let job_queue = Mutex::new(job_queue);
    let (done, finished) = mpsc::channel::<(usize, std::thread::Result<Vec<Streamed<T>>>)>();
    // One permit per document between the reader and the sink: the reader blocks when
    // IN_FLIGHT documents are read and not yet handed to the sink.
    let (permits, permits_back) = mpsc::sync_channel::<()>(IN_FLIGHT);
    std::thread::scope(|scope| {
        // Owned by this closure, so that a panic re-raised below drops them and every thread
        // blocked on them ends.
        let (permits_back, finished) = (permits_back, finished);
        scope.spawn(move || {
            for (seq, item) in open().enumerate() {
                if permits.send(()).is_err() || jobs.send((seq, item)).is_err() {
                    return;
                }
            }
        });
        for _ in 0..workers {
            let done = done.clone();
            let (job_queue, work) = (&job_queue, &work);
            scope.spawn(move || {
                loop {
                    // The lock only guards taking the next job.
                    let next = match job_queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = next else { return };
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item)));
                    if done.send((seq, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done);
        // Outcomes arrive in any order; the sink gets them in input order.
        let mut next = 0;
        let mut waiting = BTreeMap::new();
        for (seq, result) in finished {
            waiting.insert(seq, result);
            while let Some(result) = waiting.remove(&next) {
                match result {
                    Ok(out) => out.into_iter().for_each(&mut *sink),
                    // A bug of ours: re-raised here, which closes the channels, so every
                    // thread ends.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                let _ = permits_back.recv();
                next += 1;
            }
        }
    });
}

/// Standard input kept for a second reading.
enum Spool {
    File(std::fs::File),
    Memory(std::sync::Arc<Vec<u8>>),
}

impl Spool {
    /// A reader of the kept input from its start.
    fn reopen(&self) -> Box<dyn std::io::BufRead + Send> {
        use std::io::Seek as _;
        match self {
            Spool::File(f) => match f.try_clone().and_then(|mut f| {
                f.rewind()?;
                Ok(f)
            }) {
                Ok(f) => Box::new(std::io::BufReader::with_capacity(64 * 1024, f)),
                Err(_) => Box::new(std::io::empty()),
            },
            Spool::Memory(bytes) => Box::new(std::io::Cursor::new(SharedBytes(bytes.clone()))),
        }
    }
}

/// Bytes shared between readings.
struct SharedBytes(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Copies standard input to an unnamed temporary file (in memory if none can be made).
fn spool_stdin() -> Spool {
    let mut stdin = std::io::stdin().lock();
    if let Ok(mut file) = tempfile::tempfile()
        && std::io::copy(&mut stdin, &mut file).is_ok()
    {
        return Spool::File(file);
    }
    let mut bytes = Vec::new();
    let _ = stdin.read_to_end(&mut bytes);
    Spool::Memory(std::sync::Arc::new(bytes))
}

fn judge_one(
    policies: &PolicySet,
    manifest: Manifest,
    namespace_labels: &LabelsByNamespace,
    options: &JudgeOptions,
) -> Judged {
    let Manifest { location, object } = manifest;
    let namespace = metadata_str(&object, "namespace").or(options.default_namespace.as_deref());
    let labels = namespace
        .and_then(|ns| {
            namespace_labels
                .get(ns)
                .or_else(|| options.namespace_labels.get(ns))
        })
        .map_or(NamespaceLabels::NameOnly, NamespaceLabels::Known);
    let decision = decide(
        policies,
        &object,
        options.default_namespace.as_deref(),
        labels,
        options.time,
    );
    let verdict = verdict_of(&object, &decision);
    Judged {
        location,
        object,
        decision,
        verdict,
    }
}

/// The engine's decision on one object as audits judge it: a CREATE of the object at `time`
/// (in `default_namespace` when it names none); an object with a controller `ownerReference`
/// is presented as created by [`OFFLINE_CONTROLLER_USERNAME`], so it is skipped as the
/// webhook skips it. `portcullis audit` (files and cluster) and the policy reports all judge
/// through here. Policies `off` at `time` are measured ([`engine::OffPolicies::Measure`]):
/// what they would deny is in [`Decision::off_violations`], and decides nothing.
pub fn decide(
    policies: &PolicySet,
    object: &Value,
    default_namespace: Option<&str>,
    namespace_labels: NamespaceLabels<'_>,
    time: Timestamp,
) -> Decision {
    let mut request = Request::create(object, time);
    if request.namespace.is_none() {
        request.namespace = default_namespace;
    }
    request.namespace_labels = namespace_labels;
    if has_controller_owner(object) {
        request.username = Some(OFFLINE_CONTROLLER_USERNAME);
    }
    // Policies that are `off` are judged too, for the reports' readiness figures only.
    engine::evaluate_with(policies, &request, engine::OffPolicies::Measure)
}

/// The verdict a decision amounts to.
fn verdict_of(object: &Value, decision: &Decision) -> Verdict {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    match &decision.skipped {
        Some(Skip::NotAWorkload) => return Verdict::NotAWorkload,
        Some(_) => return Verdict::Skipped,
        None => {}
    }
    if WorkloadKind::from_group_kind(group, kind).is_none() {
        return Verdict::NotAWorkload;
    }
    let denies = decision
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny);
    if !decision.allowed || denies {
        Verdict::Deny
    } else if decision.findings.iter().any(Finding::is_warning) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

fn metadata_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// Whether the object has an `ownerReference` with `controller: true`.
pub fn has_controller_owner(object: &Value) -> bool {
    object
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Records the labels of `o` when it is a `v1 Namespace` (a later one of the same name wins).
fn add_namespace_labels(out: &mut LabelsByNamespace, o: &Value) {
    if let Some((name, labels)) = namespace_labels_of(o) {
        out.insert(name, labels);
    }
}

/// The name and labels of `o` when it is a `v1 Namespace`, with the label
/// `kubernetes.io/metadata.name` Kubernetes sets on every namespace.
pub(crate) fn namespace_labels_of(o: &Value) -> Option<(String, BTreeMap<String, String>)> {
    if o.get("apiVersion").and_then(Value::as_str) != Some("v1")
        || o.get("kind").and_then(Value::as_str) != Some("Namespace")
    {
        return None;
    }
    let name = metadata_str(o, "name")?;
    let mut labels: BTreeMap<String, String> = o
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    labels
        .entry("kubernetes.io/metadata.name".to_owned())
        .or_insert_with(|| name.to_owned());
    Some((name.to_owned(), labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use read::read_str;

    #[test]
    fn namespace_labels_come_from_namespace_objects() {
        let entries = read_str(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels: {tier: gold}\n",
        );
        let mut labels = LabelsByNamespace::new();
        for entry in &entries {
            if let Entry::Object(m) = entry {
                add_namespace_labels(&mut labels, &m.object);
            }
        }
        assert_eq!(labels["prod"]["tier"], "gold");
        assert_eq!(labels["prod"]["kubernetes.io/metadata.name"], "prod");
    }

    #[test]
    fn streaming_gives_the_report_of_judging_everything_at_once() {
        let policies = crate::lint::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies"),
        )
        .expect("policies");
        let dir = tempfile::tempdir().expect("temp dir");
        // More documents than are ever in flight, of every sort, with the Namespace last.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
        let mut text = String::new();
        for _ in 0..40 {
            for f in [
                "apps/shop/web.yaml",
                "broken.yaml",
                "helm-rendered.yaml",
                "pods/owned-pods.yaml",
            ] {
                text.push_str("---\n");
                text.push_str(&std::fs::read_to_string(root.join(f)).expect("read"));
            }
        }
        text.push_str("---\n");
        text.push_str(&std::fs::read_to_string(root.join("00-namespaces.yaml")).expect("read"));
        let file = dir.path().join("all.yaml");
        std::fs::write(&file, text).expect("write");
        let inputs = [Input::Path(file), Input::Path(root)];
        let options = JudgeOptions::at(Timestamp::from_unix(1_767_225_600));
        for format in [
            report::Format::Text(report::Style { color: false }),
            report::Format::Json,
        ] {
            let at_once = judge(&policies, read::read_inputs(&inputs), &options);
            assert!(at_once.len() > IN_FLIGHT, "{}", at_once.len());
            let mut expected = report::ReportWriter::new(format, Vec::new()).expect("writer");
            for o in &at_once {
                expected.push(report::piece(format, o)).expect("push");
            }
            let mut streamed = report::ReportWriter::new(format, Vec::new()).expect("writer");
            stream(
                &inputs,
                &policies,
                &options,
                &|o| report::piece(format, &o),
                &mut |s| match s {
                    Streamed::Outcome(p) => streamed.push(p).expect("push"),
                    Streamed::Skipped(s) => panic!("{s}"),
                },
            );
            let (a, b) = (
                expected.finish().expect("end"),
                streamed.finish().expect("end"),
            );
            assert_eq!(a.0, b.0);
            assert!(a.1 == b.1, "the streamed report differs");
        }
    }

    /// The verdicts of streaming a Deployment in `shop` followed by the `Namespace` `shop`
    /// (labelled `tier: prod`), through `policies`, on 2026-01-01.
    fn stream_with_namespace_last(policies: &str) -> Vec<Option<Verdict>> {
        let policies =
            crate::lint::load_str(std::path::Path::new("p.yaml"), policies).expect("policies");
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("m.yaml");
        std::fs::write(
            &file,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: app:1}]\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tier: prod}}\n",
        )
        .expect("write");
        let inputs = [Input::Path(file)];
        let options = JudgeOptions::at(Timestamp::from_unix(1_767_225_600));
        let mut verdicts = Vec::new();
        stream(
            &inputs,
            &policies,
            &options,
            &|o| match o {
                Outcome::Judged(j) => Some(j.verdict),
                Outcome::Error(_) => None,
            },
            &mut |s| {
                if let Streamed::Outcome(v) = s {
                    verdicts.push(v);
                }
            },
        );
        verdicts
    }

    #[test]
    fn streaming_finds_namespace_labels_a_schedule_selects_by() {
        // Only a schedule step reads the namespace's labels; the Namespace comes last.
        let verdicts = stream_with_namespace_last(
            "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: probes}\nspec:\n  mode: warn\n  schedule:\n    - from: 2020-01-01\n      mode: enforce\n      namespaceSelector: {matchLabels: {tier: prod}}\n  rules:\n    - requireProbes: {}\n",
        );
        assert_eq!(verdicts, [Some(Verdict::Deny), Some(Verdict::NotAWorkload)]);
    }

    #[test]
    fn streaming_finds_namespace_labels_an_exception_selects_by() {
        // Only the exception reads the namespace's labels; the Namespace comes last.
        let verdicts = stream_with_namespace_last(
            "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: probes}\nspec:\n  mode: enforce\n  rules:\n    - requireProbes: {}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: PolicyException\nmetadata: {name: prod-probes}\nspec:\n  owner: team-shop\n  reason: r\n  expires: 2030-01-01\n  policies: [{name: probes}]\n  match: {namespaceSelector: {matchLabels: {tier: prod}}}\n",
        );
        // Excepted: not denied, but an excepted finding still warns.
        assert_eq!(verdicts, [Some(Verdict::Warn), Some(Verdict::NotAWorkload)]);
    }

    #[test]
    fn controller_owner_detection() {
        let owned: Value = serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "name": "x", "controller": true}]}});
        let not_controller: Value = serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "name": "x"}]}});
        assert!(has_controller_owner(&owned));
        assert!(!has_controller_owner(&not_controller));
        assert!(!has_controller_owner(&serde_json::json!({})));
    }

    #[test]
    fn legacy_api_groups_are_judged_like_apps() {
        let policies = crate::lint::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        )
        .expect("policies");
        let spec =
            "spec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: app:1}\n";
        for api_version in [
            "apps/v1",
            "apps/v1beta2",
            "apps/v1beta1",
            "extensions/v1beta1",
        ] {
            for kind in ["Deployment", "DaemonSet", "ReplicaSet"] {
                let text = format!(
                    "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: web, namespace: demo}}\n{spec}"
                );
                let outcomes = judge(
                    &policies,
                    read_str("legacy.yaml", &text),
                    &JudgeOptions::at(Timestamp::from_unix(1_767_225_600)),
                );
                let [Outcome::Judged(j)] = outcomes.as_slice() else {
                    panic!("one object: {outcomes:?}");
                };
                assert_eq!(j.verdict, Verdict::Deny, "{api_version} {kind}");
                assert!(
                    j.decision
                        .violations()
                        .any(|f| f.message == "no livenessProbe"),
                    "{api_version} {kind}: {:?}",
                    j.decision.findings
                );
            }
        }
        // Other kinds of the legacy group are not workloads.
        let ingress = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\n";
        let outcomes = judge(
            &policies,
            read_str("i.yaml", ingress),
            &JudgeOptions::at(Timestamp::from_unix(1_767_225_600)),
        );
        let [Outcome::Judged(j)] = outcomes.as_slice() else {
            panic!("one object");
        };
        assert_eq!(j.verdict, Verdict::NotAWorkload);
    }

    #[test]
    fn non_workloads_are_not_workloads_whatever_the_engine_says() {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "Service"});
        let decision = Decision {
            allowed: true,
            ..Decision::default()
        };
        assert_eq!(verdict_of(&object, &decision), Verdict::NotAWorkload);
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(verdict_of(&deployment, &decision), Verdict::Pass);
        let denied = Decision {
            allowed: false,
            ..Decision::default()
        };
        assert_eq!(verdict_of(&deployment, &denied), Verdict::Deny);
    }
}
