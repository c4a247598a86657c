//! `portcullis audit --cluster`: what runs, judged as file audit judges manifests, with the
//! cluster's namespace labels; what cannot be listed is reported and the rest goes on; as a
//! kubectl plugin too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e_support::objects::{container, deployment, pod};
use crate::e2e_support::portcullis::BINARY;
use crate::e2e_support::{
    Case, Kubectl, Portcullis, PortcullisOptions, ROOT, World, free_port, http, wait_for,
};

pub fn cases() -> Vec<Case> {
    vec![
        Case::shared(
            "audit_cluster_gives_the_verdicts_of_file_audit",
            audit_cluster_gives_the_verdicts_of_file_audit,
        ),
        Case::shared(
            "audit_cluster_reports_what_it_cannot_list_and_judges_the_rest",
            audit_cluster_reports_what_it_cannot_list_and_judges_the_rest,
        ),
        Case::shared(
            "audit_cluster_as_a_kubectl_plugin_in_all_namespaces",
            audit_cluster_as_a_kubectl_plugin_in_all_namespaces,
        ),
        Case::shared(
            "audit_cluster_lists_page_by_page",
            audit_cluster_lists_page_by_page,
        ),
        Case::shared(
            "in_a_pod_audit_and_serve_use_its_service_account",
            in_a_pod_audit_and_serve_use_its_service_account,
        ),
        Case::shared(
            "audit_cluster_takes_the_context_given",
            audit_cluster_takes_the_context_given,
        ),
        Case::shared(
            "audit_cluster_shows_progress_on_a_terminal_only",
            audit_cluster_shows_progress_on_a_terminal_only,
        ),
        Case::shared(
            "audit_cluster_reports_exceptions_that_matched_nothing",
            audit_cluster_reports_exceptions_that_matched_nothing,
        ),
        Case::shared(
            "audit_cluster_html_report_in_a_browser",
            audit_cluster_html_report_in_a_browser,
        )
        .requires(crate::browser_support::unavailable),
    ]
}

/// `audit --cluster -o html` opened in headless Chromium: the numbers the page shows are the
/// JSON report's of the same audit, grouped by the namespace's `team` label from the cluster;
/// filtering works; no network request, no error (tests/browser_support/report.rs).
fn audit_cluster_html_report_in_a_browser(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("audit-html");
    k.run(&["label", "namespace", &ns, "team=storefront"]).ok();
    let mut ok = container("app");
    ok["livenessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}});
    ok["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}});
    for (name, c) in [
        ("web", container("app")),
        ("api", container("app")),
        ("ok", ok),
    ] {
        let mut d = deployment(name, 1, c);
        d["metadata"]["namespace"] = json!(ns);
        k.with_object(&["create"], &d).ok();
    }
    let policies = w.portcullis().policy_dir().display().to_string();
    let kubeconfig = w.cluster.kubeconfig.display().to_string();
    let run = |format: &str, extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--cluster",
            "-n",
            &ns,
            "-o",
            format,
            "--policies",
            &policies,
            "--kubeconfig",
            &kubeconfig,
        ];
        args.extend(extra);
        let out = portcullis(w.cluster.dir(), &args, None, &[]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            text(&out.stderr)
        );
        out.stdout
    };
    let html = run("html", &["--group-by", "team"]);
    let json: Value = serde_json::from_slice(&run("json", &[])).expect("JSON report");
    let page = w.cluster.dir().join("audit-cluster-report.html");
    std::fs::write(&page, &html).expect("write the page");
    let checked = crate::browser_support::report::check_report(
        &page,
        &json,
        "cluster-audit",
        &crate::browser_support::report::Expect {
            groups: Some((
                "team",
                BTreeMap::from([(ns.clone(), "storefront".to_owned())]),
            )),
            baseline: None,
        },
    )
    .unwrap_or_else(|e| panic!("the cluster audit's page: {e}"));
    // The page names what it audited, and the workloads as the cluster's objects.
    let html = text(&html);
    assert!(
        html.contains(&format!("namespace {ns} of the cluster at")),
        "{html}"
    );
    assert_eq!(json["summary"]["judged"], 3, "{json}");
    println!(
        "cluster audit page: usable {:.0} ms after navigation start; screenshot {}",
        checked.usable_ms,
        checked.screenshot.display()
    );
}

/// The documented read-only role (deploy/rbac/audit.yaml) bound in `ns` to its service
/// account `auditor`.
fn grant_audit_role(k: &Kubectl, ns: &str) {
    let role = Path::new(ROOT).join("deploy/rbac/audit.yaml");
    k.run(&["apply", "-f", &role.display().to_string()]).ok();
    k.run(&["create", "serviceaccount", "auditor", "-n", ns])
        .ok();
    k.run(&[
        "create",
        "rolebinding",
        "auditor",
        "-n",
        ns,
        "--clusterrole=portcullis-audit",
        &format!("--serviceaccount={ns}:auditor"),
    ])
    .ok();
}

/// `portcullis audit --cluster -n NS -o json` with the suite's policies and kubeconfig.
fn audit_namespace_json(w: &World, ns: &str) -> Output {
    let policies = w.portcullis().policy_dir().display().to_string();
    let kubeconfig = w.cluster.kubeconfig.display().to_string();
    portcullis(
        w.cluster.dir(),
        &[
            "audit",
            "--cluster",
            "-n",
            ns,
            "-o",
            "json",
            "--policies",
            &policies,
            "--kubeconfig",
            &kubeconfig,
        ],
        None,
        &[],
    )
}

/// Runs `portcullis ARGS` with `stdin`, colour off, in `dir`.
pub fn portcullis(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(BINARY);
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run portcullis");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("portcullis finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every object of a JSON audit report by `Kind namespace/name`: its verdict and findings.
fn verdicts(report: &Value) -> BTreeMap<String, Value> {
    report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["verdict"] != "error")
        .map(|o| {
            let key = format!("{} {}/{}", o["kind"].as_str().unwrap_or(""),
                o["namespace"].as_str().unwrap_or(""), o["name"].as_str().unwrap_or(""));
            let findings: Vec<Value> = o["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| json!([f["policy"], f["rule"], f["effect"], f["container"], f["field"], f["message"]]))
                .collect();
            (key, json!({"verdict": o["verdict"], "skipReason": o["skipReason"], "findings": findings}))
        })
        .collect()
}

/// The issue's "done when": `audit --cluster` equals file audit of the same objects
/// (`kubectl get ... -o yaml | portcullis audit -`), verdicts, findings and exit code, with the
/// namespace's labels deciding a namespaceSelector in both.
fn audit_cluster_gives_the_verdicts_of_file_audit(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("audit-equal");
    let with_ns = |mut o: Value| {
        o["metadata"]["namespace"] = json!(ns);
        o
    };
    let mut owned = deployment("owned", 1, container("app"));
    owned["metadata"]["labels"]["owner"] = json!("team-a");
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "labels": {"owner": "team-a"}},
        "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [container("job")]}}}}}});
    for object in [
        deployment("web", 2, container("app")),
        owned,
        cron,
        pod("single", container("app")),
    ] {
        k.with_object(&["create"], &with_ns(object)).ok();
    }
    // Controllers' objects settle first (both audits must see the same ones).
    wait_for("the Deployments' Pods", Duration::from_secs(60), || {
        (k.list(&ns, "pods", None).len() == 4).then_some(())
    });
    // Labelled after the fact: running workloads the policy would now deny.
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();

    let cluster = audit_namespace_json(w, &ns);
    let dir = w.cluster.dir().to_path_buf();
    let policies = w.portcullis().policy_dir().display().to_string();
    let ns_yaml = k.run(&["get", "namespace", &ns, "-o", "yaml"]).ok();
    let objects = k
        .run(&["get", "pods,replicationcontrollers,deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs",
               "-n", &ns, "-o", "yaml"])
        .ok();
    let files = portcullis(
        &dir,
        &["audit", "-", "-o", "json", "--policies", &policies],
        Some(&format!("{ns_yaml}---\n{objects}")),
        &[],
    );
    assert_eq!(cluster.status.code(), Some(1), "{}", text(&cluster.stderr));
    assert_eq!(files.status.code(), cluster.status.code());
    let from_cluster: Value = serde_json::from_slice(&cluster.stdout).expect("JSON report");
    let from_files: Value = serde_json::from_slice(&files.stdout).expect("JSON report");
    let mut expected = verdicts(&from_files);
    // File audit also lists the Namespace itself (not a workload); the cluster audit does not.
    expected.remove(&format!("Namespace /{ns}"));
    let got = verdicts(&from_cluster);
    assert_eq!(got, expected);
    // What the cluster holds: 2 Deployments, their 2 ReplicaSets and 3 Pods, a bare Pod, a
    // CronJob (suspended: no Jobs).
    let count = |verdict: &str| got.values().filter(|v| v["verdict"] == verdict).count();
    assert_eq!(count("deny"), 2, "{got:#?}");
    assert_eq!(count("pass"), 2, "{got:#?}");
    assert_eq!(count("skipped"), 5, "{got:#?}");
    for denied in ["Deployment", "Pod"]
        .map(|k| format!("{k} {ns}/{}", if k == "Pod" { "single" } else { "web" }))
    {
        assert!(
            got[&denied]["findings"]
                .to_string()
                .contains("missing label owner"),
            "{denied}"
        );
    }
    assert_eq!(from_cluster["objects"][0]["file"], "<cluster>");
    assert!(text(&cluster.stderr).contains(&format!(
        "auditing namespace {ns} of the cluster at context"
    )));
}

/// An identity that may list Deployments in one namespace and nothing else: what it cannot
/// list is reported (exit 1), the Deployments are judged; the documented read-only role
/// (deploy/rbac/audit.yaml) is all an audit needs.
fn audit_cluster_reports_what_it_cannot_list_and_judges_the_rest(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("audit-rbac");
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 0, container("app")),
    )
    .ok();
    k.run(&["create", "serviceaccount", "limited", "-n", &ns])
        .ok();
    k.run(&[
        "create",
        "role",
        "list-deployments",
        "-n",
        &ns,
        "--verb=list",
        "--resource=deployments.apps",
    ])
    .ok();
    k.run(&[
        "create",
        "rolebinding",
        "limited",
        "-n",
        &ns,
        "--role=list-deployments",
        &format!("--serviceaccount={ns}:limited"),
    ])
    .ok();
    let limited = w.cluster.service_account_kubeconfig(
        &format!("{ns}-limited"),
        &ns,
        "limited",
        &w.cluster.server,
    );
    let dir = w.cluster.dir().to_path_buf();
    let policies = w.portcullis().policy_dir().display().to_string();
    let run = |kubeconfig: &PathBuf| {
        portcullis(
            &dir,
            &[
                "audit",
                "--cluster",
                "-n",
                &ns,
                "--policies",
                &policies,
                "--kubeconfig",
                &kubeconfig.display().to_string(),
            ],
            None,
            &[],
        )
    };
    let out = run(&limited);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("PASS Deployment {ns}/web (<cluster>)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "cannot list pods in namespace {ns}: 403 Forbidden"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("cannot list namespace {ns}: 403 Forbidden")),
        "{stdout}"
    );
    assert!(stdout.contains("cannot list cronjobs.batch"), "{stdout}");
    assert!(
        stdout.contains("result: FAIL (8 unreadable documents)"),
        "{stdout}"
    );

    // The documented role: read-only, everything an audit lists.
    grant_audit_role(k, &ns);
    let auditor = w.cluster.service_account_kubeconfig(
        &format!("{ns}-auditor"),
        &ns,
        "auditor",
        &w.cluster.server,
    );
    let out = run(&auditor);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("result: PASS"));
    // Read-only: it may not change anything.
    let can = k
        .run(&[
            "auth",
            "can-i",
            "--list",
            &format!("--as=system:serviceaccount:{ns}:auditor"),
            "-n",
            &ns,
        ])
        .ok();
    for line in can.lines().skip(1) {
        let verbs = line.split('[').nth(2).unwrap_or("");
        for write in ["create", "update", "patch", "delete"] {
            assert!(!verbs.contains(write), "{line}");
        }
    }
}

/// `kubectl portcullis audit --cluster`, all namespaces, through kubectl's plugin mechanism
/// and `KUBECONFIG`.
fn audit_cluster_as_a_kubectl_plugin_in_all_namespaces(w: &World) {
    let ns = w.namespace("audit-plugin");
    w.kubectl()
        .with_object(
            &["create", "-n", &ns],
            &deployment("web", 0, container("app")),
        )
        .ok();
    let bin = w.cluster.dir().join("plugin-bin");
    std::fs::create_dir_all(&bin).expect("plugin dir");
    let link = bin.join("kubectl-portcullis");
    if !link.exists() {
        std::os::unix::fs::symlink(BINARY, &link).expect("symlink the plugin");
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let policies = w.portcullis().policy_dir().display().to_string();
    let mut cmd = Command::new("kubectl");
    cmd.args([
        "portcullis",
        "audit",
        "--cluster",
        "-o",
        "json",
        "--policies",
        &policies,
    ])
    .env("PATH", path)
    .env("KUBECONFIG", &w.cluster.kubeconfig)
    .env("NO_COLOR", "1");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run kubectl");
    let stderr = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(
        stderr.contains("auditing all namespaces of the cluster at context e2e of"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(
        report["summary"]["judged"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(report["errors"], json!([]));
    let listed = report["objects"].as_array().into_iter().flatten().any(|o| {
        o["kind"] == "Deployment" && o["namespace"] == json!(ns) && o["verdict"] == "pass"
    });
    assert!(listed, "{report}");
}

/// `--context` picks a context of the kubeconfig (`--kubeconfig` or `KUBECONFIG`) over its
/// current one: here the current context names a cluster nobody listens on (exit 3), `--context
/// e2e` the test cluster.
fn audit_cluster_takes_the_context_given(w: &World) {
    let ns = w.namespace("audit-context");
    w.kubectl()
        .with_object(
            &["create", "-n", &ns],
            &deployment("web", 0, container("app")),
        )
        .ok();
    let dir = w.cluster.dir().to_path_buf();
    let kubeconfig = dir.join("two-contexts.kubeconfig");
    std::fs::copy(&w.cluster.kubeconfig, &kubeconfig).expect("copy the kubeconfig");
    let nowhere = format!("--server=https://127.0.0.1:{}", free_port());
    for args in [
        vec!["set-cluster", "nowhere", nowhere.as_str()],
        vec!["set-context", "nowhere", "--cluster=nowhere", "--user=e2e"],
        vec!["use-context", "nowhere"],
    ] {
        let out = Command::new("kubectl")
            .arg("config")
            .args(&args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .expect("run kubectl config");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let path = kubeconfig.display().to_string();
    let policies = w.portcullis().policy_dir().display().to_string();
    let audit = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["audit", "--cluster", "-n", &ns, "--policies", &policies];
        args.extend_from_slice(extra);
        portcullis(&dir, &args, None, env)
    };
    let current = audit(&["--kubeconfig", &path], &[]);
    assert_eq!(current.status.code(), Some(3), "{}", text(&current.stderr));
    assert!(
        text(&current.stderr).contains(&format!(
            "error: cannot reach the cluster at context nowhere of {path}"
        )),
        "{}",
        text(&current.stderr)
    );
    assert_eq!(text(&current.stdout), "");
    for (extra, env) in [
        (
            vec!["--kubeconfig", path.as_str(), "--context", "e2e"],
            vec![],
        ),
        (
            vec!["--context", "e2e"],
            vec![("KUBECONFIG", path.as_str())],
        ),
    ] {
        let out = audit(&extra, &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{extra:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "auditing namespace {ns} of the cluster at context e2e of {path}"
            )),
            "{stderr}"
        );
        assert!(
            text(&out.stdout).contains(&format!("PASS Deployment {ns}/web (<cluster>)")),
            "{}",
            text(&out.stdout)
        );
    }
}

/// On a terminal, a progress line counts the objects listed and is cleared at the end; piped,
/// stderr has no such line. The terminal is a pseudo-terminal from util-linux' `script`.
fn audit_cluster_shows_progress_on_a_terminal_only(w: &World) {
    let ns = w.namespace("audit-progress");
    w.kubectl()
        .with_object(
            &["create", "-n", &ns],
            &deployment("web", 0, container("app")),
        )
        .ok();
    let dir = w.cluster.dir().to_path_buf();
    let policies = w.portcullis().policy_dir().display().to_string();
    let kubeconfig = w.cluster.kubeconfig.display().to_string();
    let args = [
        "audit",
        "--cluster",
        "-n",
        &ns,
        "--policies",
        &policies,
        "--kubeconfig",
        &kubeconfig,
    ];
    let piped = portcullis(&dir, &args, None, &[]);
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped.stderr));
    assert!(
        !text(&piped.stderr).contains("listed and judged"),
        "{}",
        text(&piped.stderr)
    );

    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(BINARY)
        .chain(args)
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux' script runs (apt-get install bsdutils)");
    let terminal = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{terminal}{}",
        text(&out.stderr)
    );
    // Shown in place (carriage return, erase line), rewritten as pages arrive, then erased
    // before the result.
    assert!(
        terminal.contains("\r\x1b[2Klisted and judged "),
        "no progress line: {terminal:?}"
    );
    let cleared = terminal.rfind("\r\x1b[2K").expect("shown");
    assert!(
        !terminal[cleared..].contains("listed and judged"),
        "the progress line is not cleared: {terminal:?}"
    );
    let result = terminal
        .find("result: PASS")
        .unwrap_or_else(|| panic!("{terminal:?}"));
    assert!(cleared < result, "{terminal:?}");
    assert!(terminal.contains(&format!("PASS Deployment {ns}/web (<cluster>)")));
}

/// More objects of a kind than one page holds (500): every one is listed and judged once.
fn audit_cluster_lists_page_by_page(w: &World) {
    let ns = w.namespace("audit-pages");
    const COUNT: usize = 501;
    // Suspended CronJobs: no controller works on them.
    let items: Vec<Value> = (0..COUNT)
        .map(|i| {
            json!({"apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": format!("job-{i:03}"), "namespace": ns},
                "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {
                    "template": {"spec": {"restartPolicy": "Never",
                        "containers": [container("job")]}}}}}})
        })
        .collect();
    w.kubectl()
        .with_object(
            &["create"],
            &json!({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        .ok();
    let lists = || {
        http::metric(
            &w.cluster.apiserver_metrics(),
            "apiserver_request_total",
            &[
                ("resource", "cronjobs"),
                ("verb", "LIST"),
                ("scope", "namespace"),
            ],
        )
    };
    let lists_before = lists();
    let out = audit_namespace_json(w, &ns);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let got = verdicts(&report);
    let cronjobs: Vec<&String> = got.keys().filter(|k| k.starts_with("CronJob ")).collect();
    assert_eq!(cronjobs.len(), COUNT, "each CronJob once");
    assert_eq!(
        report["objects"].as_array().map(Vec::len),
        Some(COUNT),
        "nothing listed twice"
    );
    assert!(lists() >= lists_before + 2.0, "listed in pages");
}

/// Runs `$PORTCULLIS_BIN` with the script's arguments as in a Pod: a service account's
/// `token`, `ca.crt` and `namespace` from `$SA_DIR` at their fixed path
/// (/var/run/secrets/kubernetes.io/serviceaccount), in a mount namespace of its own
/// (`unshare`, util-linux: the host's files are not touched), without `KUBECONFIG`.
const IN_A_POD: &str = r#"#!/bin/sh
unset KUBECONFIG
exec unshare --user --map-root-user --mount --propagation private sh -c '
  run=$(readlink -f /var/run) &&
  mount -t tmpfs none "$run" &&
  mkdir -p "$run/secrets/kubernetes.io/serviceaccount" &&
  cp "$0/token" "$0/ca.crt" "$0/namespace" "$run/secrets/kubernetes.io/serviceaccount/" &&
  exec "$PORTCULLIS_BIN" "$@"' "$SA_DIR" "$@"
"#;

/// The files of a Pod's service account `namespace/account`, in a directory of the cluster's.
fn service_account_files(w: &World, namespace: &str, account: &str) -> PathBuf {
    let dir = w.cluster.dir().join(format!("sa-{namespace}-{account}"));
    std::fs::create_dir_all(&dir).expect("service account dir");
    let token = w
        .kubectl()
        .run(&["create", "token", account, "-n", namespace, "--duration=1h"])
        .ok();
    std::fs::write(dir.join("token"), token.trim()).expect("token");
    std::fs::write(dir.join("ca.crt"), &w.cluster.ca.cert).expect("ca.crt");
    std::fs::write(dir.join("namespace"), namespace).expect("namespace");
    dir
}

/// In a Pod (no kubeconfig anywhere, `KUBERNETES_SERVICE_HOST` set, the service account's
/// files mounted), `audit --cluster` and `serve` use the Pod's service account: the audit
/// judges with the read-only role's grants, the webhook's namespace cache syncs with
/// deploy/'s grants and it turns ready.
fn in_a_pod_audit_and_serve_use_its_service_account(w: &World) {
    use std::os::unix::fs::PermissionsExt as _;
    let k = w.kubectl();
    let ns = w.namespace("audit-in-pod");
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 0, container("app")),
    )
    .ok();
    grant_audit_role(k, &ns);
    let dir = w.cluster.dir().to_path_buf();
    let wrapper = dir.join("in-a-pod.sh");
    if !wrapper.exists() {
        std::fs::write(&wrapper, IN_A_POD).expect("write the wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
    }
    let port = w.cluster.apiserver_port().to_string();
    let home = dir.join("home-without-kubeconfig");
    std::fs::create_dir_all(&home).expect("home");
    let policies = w.portcullis().policy_dir().display().to_string();
    let out = Command::new(&wrapper)
        .args(["audit", "--cluster", "-n", &ns, "--policies", &policies])
        .current_dir(&dir)
        .env("SA_DIR", service_account_files(w, &ns, "auditor"))
        .env("PORTCULLIS_BIN", BINARY)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the audit in a Pod's environment");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}{}", text(&out.stdout));
    assert!(
        stderr.contains(&format!(
            "auditing namespace {ns} of the cluster at in-cluster service account (https://127.0.0.1:{port}/)"
        )),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains(&format!("PASS Deployment {ns}/web (<cluster>)")),
        "{}",
        text(&out.stdout)
    );

    // The webhook: ready only once its namespace cache synced through the service account.
    let sa = service_account_files(w, "portcullis-system", "portcullis");
    let p = Portcullis::start(
        &w.cluster,
        PortcullisOptions {
            binary: Some(wrapper.clone()),
            env: vec![
                ("SA_DIR".to_owned(), sa.display().to_string()),
                ("PORTCULLIS_BIN".to_owned(), BINARY.to_owned()),
                ("KUBERNETES_SERVICE_HOST".to_owned(), "127.0.0.1".to_owned()),
                ("KUBERNETES_SERVICE_PORT".to_owned(), port.clone()),
            ],
            ..PortcullisOptions::default()
        },
    )
    .expect("portcullis serves in a Pod's environment");
    let log = p.log();
    assert!(
        log.contains(&format!(
            "\"cluster\":\"in-cluster service account (https://127.0.0.1:{port}/)\""
        )),
        "{log}"
    );
    assert!(log.contains("namespace cache synced"), "{log}");
    assert_eq!(p.metric("portcullis_namespace_cache_synced", &[]), 1.0);
    p.stop();
}

/// After listing, `audit --cluster` reports each exception in force that excepted no finding
/// of what it listed (JSON `unusedExceptions` and stderr; the text report), as file audit does.
fn audit_cluster_reports_exceptions_that_matched_nothing(w: &World) {
    let k = w.kubectl();
    let ns = w.namespace("audit-unused");
    let mut web = deployment("web", 0, container("app"));
    web["metadata"]["namespace"] = json!(ns);
    k.with_object(&["create"], &web).ok();
    // Labelled after the fact (the webhook would refuse `web` in a prod namespace).
    k.run(&["label", "namespace", &ns, "env=prod"]).ok();

    // The webhook's policies and two exceptions, in a directory of the case's own.
    let policies = w.cluster.dir().join("audit-unused-policies");
    copy_policy_dir(&w.portcullis().policy_dir(), &policies);
    let exception = |name: &str, workload: &str| {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: PolicyException\nmetadata: {{name: {name}}}\nspec:\n  owner: team-{name}\n  reason: e2e\n  expires: 2099-01-01\n  policies: [{{name: prod-owner-label}}]\n  match: {{namespaces: [{ns}], names: [{workload}]}}\n"
        )
    };
    std::fs::write(
        policies.join("exceptions.yaml"),
        format!(
            "{}---\n{}",
            exception("web-owner", "web"),
            exception("gone-owner", "gone")
        ),
    )
    .expect("write the exceptions");

    let dir = w.cluster.dir().to_path_buf();
    let kubeconfig = w.cluster.kubeconfig.display().to_string();
    let policies = policies.display().to_string();
    let args = |output: &'static str| {
        [
            "audit",
            "--cluster",
            "-n",
            &ns,
            "-o",
            output,
            "--policies",
            &policies,
            "--kubeconfig",
            &kubeconfig,
        ]
        .map(str::to_owned)
    };
    let json_args = args("json");
    let out = portcullis(&dir, &json_args.each_ref().map(String::as_str), None, &[]);
    let stderr = text(&out.stderr);
    // web's finding is excepted: nothing denied.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let unused = report["unusedExceptions"]
        .as_array()
        .expect("unusedExceptions");
    let names: Vec<&Value> = unused.iter().map(|e| &e["name"]).collect();
    assert_eq!(names, [&json!("gone-owner")], "{report:#}");
    assert_eq!(unused[0]["owner"], "team-gone-owner");
    let message = unused[0]["message"].as_str().expect("message");
    assert!(
        message.contains("matched nothing among the") && message.contains("objects audited"),
        "{message}"
    );
    assert!(stderr.contains(message), "{stderr}");
    let web = verdicts(&report)[&format!("Deployment {ns}/web")].clone();
    assert!(web.to_string().contains("excepted"), "{web}");

    let text_args = args("text");
    let out = portcullis(&dir, &text_args.each_ref().map(String::as_str), None, &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "warning: {policies}/exceptions.yaml:11: {message}"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\"web-owner\" (owner team-web-owner, expires"),
        "{stdout}"
    );
}

/// Copies the policy files of `from` (not its subdirectories) into a new directory `to`.
fn copy_policy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("policy dir");
    for entry in std::fs::read_dir(from).expect("read policies").flatten() {
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy a policy");
        }
    }
}
