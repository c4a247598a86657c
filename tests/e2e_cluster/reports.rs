//! Policy reports in the cluster (`portcullis serve --reports`): they appear, stay within their
//! limits, change when a policy or a namespace's labels change, go when their workloads go,
//! stay untouched when nothing changes, and move to the new leader when the leader stops.
//! Each case starts its own report writers (Portcullis processes running as deploy/'s
//! ServiceAccount, not registered as webhooks), so their policies can differ from the
//! webhook's; they run alone, since reports cover the whole cluster.

use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e_support::objects::{container, deployment};
use crate::e2e_support::{Case, Portcullis, PortcullisOptions, World, http, wait_for};

use crate::{PROD_OWNER_POLICY, Suite};

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive(
            "reports_appear_within_their_limits_and_follow_policies_and_labels",
            reports_appear_within_their_limits_and_follow_policies_and_labels,
        ),
        Case::exclusive(
            "reports_are_not_written_again_when_nothing_changes",
            reports_are_not_written_again_when_nothing_changes,
        ),
        Case::exclusive(
            "reports_move_to_the_new_leader_when_the_leader_stops",
            reports_move_to_the_new_leader_when_the_leader_stops,
        ),
        Case::exclusive(
            "reports_stay_within_their_budget",
            reports_stay_within_their_budget,
        ),
        Case::exclusive(
            "reports_say_when_the_crds_are_missing_and_start_once_they_are_there",
            reports_say_when_the_crds_are_missing_and_start_once_they_are_there,
        ),
        Case::exclusive(
            "reports_tell_which_exceptions_matched_no_live_workload",
            reports_tell_which_exceptions_matched_no_live_workload,
        ),
    ]
}

/// A report writer process, stopped (SIGTERM) when dropped, also when a case fails.
struct Writer(Option<Portcullis>);

impl std::ops::Deref for Writer {
    type Target = Portcullis;
    fn deref(&self) -> &Portcullis {
        self.0.as_ref().expect("running")
    }
}

impl Writer {
    fn stop(mut self) {
        if let Some(p) = self.0.take() {
            p.stop();
        }
    }

    fn kill(mut self, w: &World) {
        if let Some(mut p) = self.0.take() {
            p.kill(&w.cluster);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.stop();
        }
    }
}

/// A report writer named `name` (its Pod name in the Lease), with `args`.
fn writer(w: &World, name: &str, args: &[&str]) -> Writer {
    let suite: &Suite = w.extra();
    let mut all = vec![
        "--kubeconfig".to_owned(),
        suite.portcullis_kubeconfig.display().to_string(),
        "--reports".to_owned(),
        "--reports-lease-duration".to_owned(),
        "4".to_owned(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let p = Portcullis::start(
        &w.cluster,
        PortcullisOptions {
            args: all,
            env: vec![
                ("POD_NAME".to_owned(), name.to_owned()),
                ("POD_NAMESPACE".to_owned(), "portcullis-system".to_owned()),
            ],
            policies: vec![(
                "prod-owner-label.yaml".to_owned(),
                PROD_OWNER_POLICY.to_owned(),
            )],
            ..PortcullisOptions::default()
        },
    )
    .expect("a report writer starts");
    Writer(Some(p))
}

/// The report of `namespace` (with its managedFields), if there is one.
fn report(w: &World, namespace: &str) -> Option<Value> {
    let out = w.kubectl().run(&[
        "get",
        "reports.openreports.io",
        "portcullis",
        "-n",
        namespace,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    if !out.success && out.stderr.contains("NotFound") {
        return None;
    }
    Some(out.json())
}

/// Waits until the report of `namespace` satisfies `ok`.
fn wait_report(w: &World, namespace: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(60), || {
        report(w, namespace).filter(|r| ok(r))
    })
}

fn summary(r: &Value, status: &str) -> u64 {
    r["summary"][status].as_u64().unwrap_or(0)
}

/// A Deployment that passes the default policies (so the webhook admits it), without `owner`.
fn app(w: &World, namespace: &str, name: &str, owner: Option<&str>) {
    let mut d = deployment(name, 0, container("app"));
    if let Some(o) = owner {
        d["metadata"]["labels"]["owner"] = json!(o);
    }
    w.kubectl()
        .with_object(&["create", "-n", namespace], &d)
        .ok();
}

/// The nice value of the leader's report writer thread (`portcullis-reports`, 15 characters
/// of it in `comm`), from /proc.
fn writer_thread_nice(p: &Writer) -> Option<i64> {
    let pid = p.pid()?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() != "portcullis-repo" {
            return None;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the parenthesised comm: state is field 3, nice field 19.
        let rest = stat.rsplit_once(") ")?.1;
        rest.split_whitespace().nth(16)?.parse().ok()
    })
}

fn leader(p: &Writer) -> bool {
    p.metric("portcullis_reports_leader", &[]) == 1.0
}

/// Writes of reports the apiserver has served (any verb but reads).
fn apiserver_report_writes(w: &World) -> f64 {
    let text = w.cluster.apiserver_metrics();
    ["APPLY", "PATCH", "CREATE", "UPDATE", "DELETE"]
        .iter()
        .map(|verb| {
            http::metric(
                &text,
                "apiserver_request_total",
                &[
                    ("resource", "reports"),
                    ("group", "openreports.io"),
                    ("verb", verb),
                ],
            )
        })
        .sum()
}

/// Reports appear with the failures first and at most `maxResults` results, the summary counts
/// them all; a policy change and a namespace label change rewrite them; a namespace whose
/// workloads are gone loses its report.
fn reports_appear_within_their_limits_and_follow_policies_and_labels(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("reports-limits");
    let other = w.namespace("reports-gone");
    for name in ["a", "b", "c"] {
        app(w, &ns, name, None);
    }
    app(w, &ns, "owned", Some("team-a"));
    app(w, &other, "lonely", None);
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    k.run(&["label", "namespace", &other, "env=prod"]).ok();

    let p = writer(w, "writer-limits", &["--reports-max-results", "2"]);
    let r = wait_report(w, &ns, "the report with 3 failures", |r| {
        summary(r, "fail") == 3
    });
    assert_eq!(r["source"], "portcullis");
    assert_eq!(
        r["configuration"],
        json!({"limits": {"maxResults": 2, "statusFilter": ["fail", "warn"]}})
    );
    assert_eq!(
        r["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "portcullis"
    );
    // 3 failures, 0 warnings; passes counted (every policy that found nothing), not listed.
    assert!(summary(&r, "pass") >= 4, "{r}");
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{r}");
    let uid = k.get(&ns, "deployment", "a").expect("a")["metadata"]["uid"].clone();
    assert_eq!(
        results[0],
        json!({
            "policy": "prod-owner-label",
            "rule": "requireLabels",
            "result": "fail",
            "message": "[prod-owner-label] missing label owner (metadata.labels[\"owner\"]); fix: add the label owner to metadata.labels",
            "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns, "name": "a", "uid": uid}],
            "properties": {"effect": "deny", "field": "metadata.labels[\"owner\"]", "mode": "enforce"},
        })
    );
    assert_eq!(results[1]["resources"][0]["name"], "b");
    assert!(p.metric("portcullis_reports_results_left_out", &[]) >= 1.0);
    // The writer's work takes CPU only when admission leaves some.
    assert_eq!(writer_thread_nice(&p), Some(19));
    let managers: Vec<&str> = r["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["portcullis"], "one field manager");

    // A policy change (enforce → warn) rewrites the reports.
    let file = p.policy_dir().join("prod-owner-label.yaml");
    std::fs::write(
        &file,
        PROD_OWNER_POLICY.replace("mode: enforce", "mode: warn"),
    )
    .expect("edit the policy");
    let r = wait_report(w, &ns, "warnings after the policy change", |r| {
        summary(r, "fail") == 0 && summary(r, "warn") == 3
    });
    assert_eq!(r["results"][0]["result"], "warn");
    assert_eq!(r["results"][0]["properties"]["mode"], "warn");

    // A namespace label change rewrites them too.
    k.run(&["label", "namespace", &ns, "env-"]).ok();
    wait_report(
        w,
        &ns,
        "no warnings once the namespace is no longer prod",
        |r| summary(r, "warn") == 0 && r["results"] == json!([]),
    );

    // Workloads gone, report gone, and the writer counts the delete. It counts it once the
    // apiserver's answer is in, on its own thread at nice 19: the report can be seen gone
    // before the count goes up (on a busy machine, seconds before), so the count is waited
    // for. (The stale reports earlier cases left were deleted, and counted, in the writer's
    // first write, over before the reports above were rewritten.)
    assert!(report(w, &other).is_some());
    let deletes = || {
        p.metric(
            "portcullis_reports_writes_total",
            &[("operation", "delete")],
        )
    };
    let before = deletes();
    k.run(&["delete", "deployment", "lonely", "-n", &other])
        .ok();
    wait_for(
        "the stale report to be deleted",
        Duration::from_secs(60),
        || report(w, &other).is_none().then_some(()),
    );
    wait_for(
        "the writer to count its delete",
        Duration::from_secs(30),
        || (deletes() > before).then_some(()),
    );
    p.stop();
}

/// Zero writes when nothing changes: workload events that change no verdict (a new
/// annotation, a scale) and periodic judgements of every workload write nothing, as counted by
/// Portcullis and by the apiserver.
fn reports_are_not_written_again_when_nothing_changes(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("reports-quiet");
    app(w, &ns, "web", None);
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    let p = writer(w, "writer-quiet", &["--reports-interval", "1"]);
    wait_report(w, &ns, "the report", |r| summary(r, "fail") == 1);
    let periodic = || p.metric("portcullis_reports_scans_total", &[("trigger", "periodic")]);
    // Settled: a periodic pass has run since the report was written.
    let first = periodic();
    wait_for("a periodic judgement", Duration::from_secs(30), || {
        (periodic() > first).then_some(())
    });
    let writes = || p.metric("portcullis_reports_writes_total", &[]);
    let (before, server_before) = (writes(), apiserver_report_writes(w));
    let events = p.metric("portcullis_reports_workload_events_total", &[]);

    k.run(&[
        "annotate",
        "deployment",
        "web",
        "-n",
        &ns,
        "example.com/note=unchanged-verdict",
    ])
    .ok();
    k.run(&["scale", "deployment", "web", "-n", &ns, "--replicas=1"])
        .ok();
    wait_for(
        "the writer to judge the changed workload",
        Duration::from_secs(30),
        || {
            (p.metric("portcullis_reports_workload_events_total", &[]) >= events + 2.0)
                .then_some(())
        },
    );
    let seen = periodic();
    wait_for(
        "three more periodic judgements",
        Duration::from_secs(30),
        || (periodic() >= seen + 3.0).then_some(()),
    );
    assert_eq!(
        writes(),
        before,
        "Portcullis wrote reports although nothing changed"
    );
    assert_eq!(
        apiserver_report_writes(w),
        server_before,
        "the apiserver saw report writes although nothing changed"
    );
    p.stop();
}

/// One writer among replicas: exactly one leads (the Lease names it); when it stops, the other
/// takes over and keeps the reports current; when that one is killed without releasing the
/// Lease, a third takes over once the Lease expires. The idle ones write nothing.
fn reports_move_to_the_new_leader_when_the_leader_stops(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("reports-leader");
    // Admitted before the namespace became prod; each step below deletes one of them.
    for name in ["one", "two", "three"] {
        app(w, &ns, name, None);
    }
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    let mut writers: Vec<(String, Writer)> = ["writer-a", "writer-b"]
        .iter()
        .map(|n| ((*n).to_owned(), writer(w, n, &[])))
        .collect();
    let leading = |writers: &[(String, Writer)]| -> Option<usize> {
        let leaders: Vec<usize> = writers
            .iter()
            .enumerate()
            .filter(|(_, (_, p))| leader(p))
            .map(|(i, _)| i)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    };
    let first = wait_for("one leader", Duration::from_secs(30), || leading(&writers));
    let holder = |k: &crate::e2e_support::Kubectl| {
        k.get("portcullis-system", "lease", "portcullis-reports")
            .map(|l| l["spec"]["holderIdentity"].clone())
    };
    assert_eq!(holder(k), Some(json!(writers[first].0)));
    wait_report(w, &ns, "the first report", |r| summary(r, "fail") == 3);
    let idle = 1 - first;
    assert_eq!(
        writers[idle]
            .1
            .metric("portcullis_reports_writes_total", &[]),
        0.0,
        "an idle replica writes nothing"
    );

    // The leader stops (SIGTERM: it releases the Lease).
    let (_, stopped) = writers.remove(first);
    stopped.stop();
    wait_for("the other replica to lead", Duration::from_secs(30), || {
        leader(&writers[0].1).then_some(())
    });
    k.run(&["delete", "deployment", "one", "-n", &ns]).ok();
    wait_report(w, &ns, "the new leader's report", |r| {
        summary(r, "fail") == 2
    });

    // The new leader is killed (no release): a third replica takes over when the Lease expires.
    writers.push(("writer-c".to_owned(), writer(w, "writer-c", &[])));
    assert!(!leader(&writers[1].1));
    let (_, killed) = writers.remove(0);
    killed.kill(w);
    wait_for("the third replica to lead", Duration::from_secs(30), || {
        leader(&writers[0].1).then_some(())
    });
    assert_eq!(holder(k), Some(json!("writer-c")));
    k.run(&["delete", "deployment", "two", "-n", &ns]).ok();
    wait_report(w, &ns, "the third leader's report", |r| {
        summary(r, "fail") == 1
    });
    for (_, p) in writers {
        p.stop();
    }
}

/// A budget of one report: the namespace with failures gets it, the one with passes only
/// does not (counted as over budget); when the failures move, the report moves.
fn reports_stay_within_their_budget(w: &World) {
    let k = w.kubectl();
    // First by name among the suite's namespaces (`e2e-aa...`), so that with failures it is
    // the one namespace the budget goes to, whatever other cases left behind.
    let failing = w.namespace("aa-budget-failing");
    let passing = w.namespace("budget-passing");
    app(w, &failing, "web", None);
    k.run(&["label", "namespace", &failing, "env=prod"]).ok();
    app(w, &passing, "web", None);
    let p = writer(w, "writer-budget", &["--reports-budget", "1"]);
    wait_report(w, &failing, "the failing namespace's report", |r| {
        summary(r, "fail") == 1
    });
    wait_for(
        "the passing namespace to be over budget",
        Duration::from_secs(30),
        || (p.metric("portcullis_reports_namespaces_over_budget", &[]) >= 1.0).then_some(()),
    );
    // Other namespaces of the suite hold workloads too (and earlier writers' reports): the
    // budget is one report in all.
    let reports = || {
        k.run(&["get", "reports.openreports.io", "-A", "-o", "name"])
            .ok()
            .lines()
            .count()
    };
    wait_for("one report in the cluster", Duration::from_secs(30), || {
        (reports() == 1).then_some(())
    });
    assert!(report(w, &passing).is_none());
    assert!(report(w, &failing).is_some());
    // The failures move: the report goes to a namespace with failures.
    k.run(&["label", "namespace", &passing, "env=prod"]).ok();
    k.run(&["label", "namespace", &failing, "env-"]).ok();
    wait_for("the budget to move", Duration::from_secs(60), || {
        (reports() == 1 && report(w, &failing).is_none()).then_some(())
    });
    p.stop();
}

/// Without the OpenReports CRDs, `--reports` says so at start-up (log and metric) and the
/// webhook works as ever; once they are installed, the leader writes.
fn reports_say_when_the_crds_are_missing_and_start_once_they_are_there(w: &World) {
    let k = w.kubectl();
    k.run(&[
        "delete",
        "crd",
        "reports.openreports.io",
        "clusterreports.openreports.io",
    ])
    .ok();
    let ns = w.namespace("reports-crds");
    app(w, &ns, "web", None);
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    let p = writer(w, "writer-crds", &[]);
    wait_for(
        "the missing CRDs to be reported",
        Duration::from_secs(30),
        || {
            p.log()
                .contains("the OpenReports CRDs are not installed")
                .then_some(())
        },
    );
    assert_eq!(p.metric("portcullis_reports_crds_installed", &[]), 0.0);
    assert!(p.ready(), "the webhook does not depend on the reports");
    crate::e2e_support::portcullis::install_report_crds(&w.cluster);
    wait_report(w, &ns, "the report once the CRDs exist", |r| {
        summary(r, "fail") == 1
    });
    assert_eq!(p.metric("portcullis_reports_crds_installed", &[]), 1.0);
    p.stop();
}

/// After each full judgement the leader tells which exceptions in force excepted no finding of
/// any live workload: a warning in its log and `portcullis_policy_exception_unused`, which
/// follows the workloads (an exception that excepts something again leaves it).
fn reports_tell_which_exceptions_matched_no_live_workload(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("reports-unused");
    app(w, &ns, "a", None);
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    let p = writer(w, "writer-unused", &["--reports-interval", "1"]);
    let exception = |name: &str, workload: &str| {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: PolicyException\nmetadata: {{name: {name}}}\nspec:\n  owner: team-{name}\n  reason: e2e\n  expires: 2099-01-01\n  policies: [{{name: prod-owner-label}}]\n  match: {{namespaces: [{ns}], names: [{workload}]}}\n"
        )
    };
    std::fs::write(
        p.policy_dir().join("exceptions.yaml"),
        format!(
            "{}---\n{}",
            exception("used", "a"),
            exception("unused", "b")
        ),
    )
    .expect("write the exceptions");
    let unused = |name: &str| {
        p.metric(
            "portcullis_policy_exception_unused",
            &[("exception", name), ("owner", &format!("team-{name}"))],
        )
    };
    wait_for(
        "the unused exception's metric",
        Duration::from_secs(60),
        || (unused("unused") == 1.0).then_some(()),
    );
    assert_eq!(unused("used"), 0.0, "{}", p.metrics());
    let r = wait_report(w, &ns, "the excepted finding", |r| summary(r, "skip") == 1);
    assert_eq!(summary(&r, "fail"), 0, "{r}");
    let log = p.log();
    assert!(
        log.contains("exception \\\"unused\\\" (owner team-unused, expires 2099-01-01) matched nothing among the")
            && log.contains("policy exception unused"),
        "{log}"
    );
    assert!(
        !log.contains("exception \\\"used\\\" (owner team-used"),
        "{log}"
    );

    // A workload it excepts appears (created while the namespace is not prod, or the webhook
    // would refuse it): at the next full judgement the exception is no longer unused.
    k.run(&["label", "namespace", &ns, "env-"]).ok();
    app(w, &ns, "b", None);
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();
    wait_for(
        "the metric to follow the workloads",
        Duration::from_secs(60),
        || (unused("unused") == 0.0).then_some(()),
    );
    wait_report(w, &ns, "both findings excepted", |r| {
        summary(r, "skip") == 2
    });
    p.stop();
}
