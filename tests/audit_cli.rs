//! `portcullis audit` and `portcullis mutate` run as real processes over tests/manifests/,
//! judged by tests/policies/.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(rel: &str) -> String {
    root()
        .join("tests/manifests")
        .join(rel)
        .display()
        .to_string()
}

fn policies() -> String {
    root().join("tests/policies").display().to_string()
}

/// Runs the binary with `args` (and stdin), colour off, from the repository root.
fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(root())
        .env_remove("PORTCULLIS_POLICIES")
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the binary runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("stdin accepts the input");
    }
    child.wait_with_output().expect("the binary finishes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn audit_json(paths: &[&str]) -> (Value, i32) {
    let p = policies();
    let mut args = vec!["audit", "--policies", &p, "--output", "json"];
    args.extend_from_slice(paths);
    let out = run(&args, None);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}\n{}", stdout(&out), stderr(&out)));
    (json, out.status.code().expect("exit code"))
}

/// The object of that kind and name in a JSON report.
fn object<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} in report"))
}

/// `effect policy container field` of every violation.
fn violations(o: &Value) -> Vec<String> {
    o["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .filter(|f| f["kind"] == "violation")
        .map(|f| {
            format!(
                "{} {} {} {}",
                f["effect"].as_str().unwrap_or(""),
                f["policy"].as_str().unwrap_or(""),
                f["container"].as_str().unwrap_or("-"),
                f["field"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn whole_directory_verdicts_per_object_and_container() {
    let dir = manifest("");
    let (r, code) = audit_json(&[&dir]);
    assert_eq!(code, 1, "denials and the broken document fail the run");
    assert_eq!(r["schemaVersion"], 1);

    let verdict = |kind: &str, name: &str| object(&r, kind, name)["verdict"].clone();
    for (kind, name, expected) in [
        ("Deployment", "web", "pass"),
        ("Deployment", "api", "deny"),
        ("Deployment", "worker", "deny"),
        ("Deployment", "frontend", "deny"),
        ("Deployment", "cache", "pass"),
        ("Deployment", "chart-app", "warn"),
        ("Deployment", "redis", "pass"),
        ("StatefulSet", "db", "deny"),
        ("DaemonSet", "node-agent", "pass"),
        ("CronJob", "nightly", "pass"),
        ("Job", "reindex", "deny"),
        ("Pod", "debug", "deny"),
        ("Pod", "web-7d9c6b8f4-2xkqp", "skipped"),
        ("Service", "web", "not-a-workload"),
        ("ConfigMap", "shop-config", "not-a-workload"),
        ("Namespace", "legacy", "not-a-workload"),
    ] {
        assert_eq!(verdict(kind, name), expected, "{kind} {name}");
    }

    // Missing probes only.
    assert_eq!(
        violations(object(&r, "Deployment", "api")),
        [
            "deny require-probes api spec.template.spec.containers[0].livenessProbe",
            "deny require-probes api spec.template.spec.containers[0].readinessProbe",
        ]
    );
    // Requests but no limits.
    assert_eq!(
        violations(object(&r, "Deployment", "worker")),
        [
            "deny require-resources worker spec.template.spec.containers[0].resources.limits.cpu",
            "deny require-resources worker spec.template.spec.containers[0].resources.limits.memory",
        ]
    );
    // Multi-container: the compliant container has no finding; the init container is judged
    // for resources but not probes; the :latest image only warns.
    let frontend = violations(object(&r, "Deployment", "frontend"));
    assert!(
        !frontend.iter().any(|v| v.contains(" app ")),
        "{frontend:?}"
    );
    assert!(
        frontend.contains(
            &"deny require-probes metrics-exporter spec.template.spec.containers[1].livenessProbe"
                .into()
        )
    );
    assert!(frontend.contains(
        &"deny require-resources metrics-exporter spec.template.spec.containers[1].resources.limits.memory".into()
    ));
    assert!(
        !frontend
            .iter()
            .any(|v| v.contains("require-probes migrate")),
        "{frontend:?}"
    );
    assert!(frontend.contains(
        &"deny require-resources migrate spec.template.spec.initContainers[0].resources.requests.cpu".into()
    ));
    assert!(frontend.contains(
        &"warn pinned-images metrics-exporter spec.template.spec.containers[1].image".into()
    ));
    // StatefulSet: only the readiness probe is missing.
    assert_eq!(
        violations(object(&r, "StatefulSet", "db")),
        ["deny require-probes postgres spec.template.spec.containers[0].readinessProbe"]
    );
    // Namespace labels from the Namespace object exempt the DaemonSet from require-resources.
    assert!(violations(object(&r, "DaemonSet", "node-agent")).is_empty());
    // Jobs are exempt from probes, not from resources.
    let job = violations(object(&r, "Job", "reindex"));
    assert_eq!(job.len(), 4, "{job:?}");
    assert!(job.iter().all(|v| v.contains("require-resources")));
    // Controller-owned Pods from `kubectl get pods -o yaml` are judged at their owner.
    let owned = object(&r, "Pod", "web-7d9c6b8f4-2xkqp");
    assert_eq!(
        owned["skipReason"],
        "controller-owned: judged at its owner ReplicaSet web-7d9c6b8f4"
    );
    assert_eq!(owned["itemIndex"], 0);
    assert_eq!(owned["findings"], serde_json::json!([]));
    // helm output: warn-mode and audit-mode findings do not deny.
    let chart = violations(object(&r, "Deployment", "chart-app"));
    assert_eq!(
        chart,
        [
            "warn pinned-images chart-app spec.template.spec.containers[0].image",
            "audit no-default-namespace - metadata.namespace",
        ]
    );

    let s = &r["summary"];
    assert_eq!(s["objects"], 22);
    assert_eq!(s["judged"], 12);
    assert_eq!(s["denied"], 6);
    assert_eq!(s["warned"], 1);
    assert_eq!(s["passed"], 5);
    assert_eq!(s["skipped"], 2);
    assert_eq!(s["other"], 8);
    assert_eq!(s["errors"], 1);
}

#[test]
fn json_schema_fields() {
    let (r, _) = audit_json(&[&manifest("apps/shop/api.yaml")]);
    let o = &r["objects"][0];
    for key in [
        "file",
        "documentIndex",
        "itemIndex",
        "line",
        "apiVersion",
        "kind",
        "namespace",
        "name",
        "verdict",
        "skipReason",
        "error",
        "policies",
        "findings",
        "patch",
    ] {
        assert!(o.get(key).is_some(), "objects[].{key}");
    }
    assert!(
        o["file"]
            .as_str()
            .expect("file")
            .ends_with("apps/shop/api.yaml")
    );
    assert_eq!(o["documentIndex"], 1);
    assert_eq!(
        o["line"], 2,
        "the document starts after the leading comment"
    );
    assert_eq!(o["apiVersion"], "apps/v1");
    assert_eq!(o["namespace"], "shop");
    let f = o["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "violation")
        .expect("a violation");
    for key in [
        "policy",
        "rule",
        "kind",
        "mode",
        "effect",
        "container",
        "field",
        "message",
        "hint",
    ] {
        assert!(f.get(key).is_some(), "findings[].{key}");
    }
    assert_eq!(f["rule"], "requireProbes");
    assert_eq!(f["mode"], "enforce");
    assert!(!f["hint"].as_str().expect("hint").is_empty());
    // Mutations: applied, and in the patch.
    let applied: Vec<&Value> = o["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "mutation")
        .collect();
    assert!(applied.iter().all(|f| f["effect"] == "apply"));
    let patch = o["patch"].as_array().expect("patch is an array");
    assert!(patch.iter().any(|op| op["op"] == "add"
        && op["path"] == "/metadata/labels/app.kubernetes.io~1managed-by"
        && op["value"] == "portcullis"));
    for key in [
        "objects", "judged", "denied", "warned", "passed", "skipped", "other", "errors", "mutated",
    ] {
        assert!(r["summary"].get(key).is_some(), "summary.{key}");
    }
    assert_eq!(r["errors"], serde_json::json!([]));
}

#[test]
fn broken_document_is_reported_with_file_index_and_line_and_the_rest_is_judged() {
    let p = policies();
    let broken = manifest("broken.yaml");
    let out = run(&["audit", "--policies", &p, &broken], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("ERROR unreadable document (") && text.contains("broken.yaml#2, line 14)"),
        "{text}"
    );
    // The merge conflict's first marker, in file lines.
    assert!(
        text.contains("at line 14 column 1"),
        "file lines in the parser message: {text}"
    );
    assert!(text.contains("PASS Deployment shop/cache ("), "{text}");
    assert!(text.contains("broken.yaml#3)"), "{text}");
    assert!(
        text.contains(
            "2 objects: 1 workload judged (0 denied, 0 warned, 1 passed), 0 skipped, 1 other, 1 unreadable document"
        ),
        "{text}"
    );
    assert!(
        text.contains("result: FAIL (1 unreadable document)"),
        "{text}"
    );

    let (r, code) = audit_json(&[&broken]);
    assert_eq!(code, 1);
    assert_eq!(r["objects"][1]["verdict"], "error");
    assert_eq!(r["objects"][1]["documentIndex"], 2);
    assert_eq!(r["errors"][0]["documentIndex"], 2);
    assert_eq!(r["errors"][0]["line"], 14);
    assert!(
        r["errors"][0]["file"]
            .as_str()
            .expect("file")
            .ends_with("broken.yaml")
    );
}

#[test]
fn text_report_groups_findings_under_each_workload() {
    let p = policies();
    let out = run(
        &[
            "audit",
            "--policies",
            &p,
            &manifest("apps/shop/worker.yaml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "NO_COLOR and a pipe: no colour");
    let expected_head = format!(
        "DENY Deployment shop/worker ({}#1)\n  deny  require-resources (requireResources) container \"worker\": no cpu limit\n        field: spec.template.spec.containers[0].resources.limits.cpu\n        fix:   ",
        manifest("apps/shop/worker.yaml")
    );
    assert!(text.starts_with(&expected_head), "{text}");
    assert!(text.contains("  apply inject-logging-sidecar container \"log-shipper\": inject native sidecar container log-shipper"), "{text}");
    assert!(text.contains("  patch: 7 JSON Patch operations"), "{text}");
    assert!(text.ends_with("result: FAIL (1 denied)\n"), "{text}");

    let coloured = run(
        &[
            "audit",
            "--policies",
            &p,
            "--color",
            "always",
            &manifest("apps/shop/worker.yaml"),
        ],
        None,
    );
    assert!(stdout(&coloured).contains("\x1b[1;31mDENY\x1b[0m"));
}

#[test]
fn exit_codes() {
    let p = policies();
    // Compliant: 0, with warn-mode findings: still 0.
    let ok = run(
        &["audit", "--policies", &p, &manifest("apps/shop/web.yaml")],
        None,
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).ends_with("result: PASS\n"));
    let warn = run(
        &["audit", "--policies", &p, &manifest("helm-rendered.yaml")],
        None,
    );
    assert_eq!(warn.status.code(), Some(0), "{}", stdout(&warn));
    // Denied: 1.
    let deny = run(
        &["audit", "--policies", &p, &manifest("pods/bare-pod.yaml")],
        None,
    );
    assert_eq!(deny.status.code(), Some(1));
    // Missing file: reported, 1.
    let missing = run(&["audit", "--policies", &p, "no/such/file.yaml"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stdout(&missing).contains("no/such/file.yaml"),
        "{}",
        stdout(&missing)
    );
    // Usage error (no input): 2.
    let usage = run(&["audit", "--policies", &p], None);
    assert_eq!(usage.status.code(), Some(2));
    // Unreadable policy directory: 2, with the diagnostics.
    let bad = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        bad.path().join("p.yaml"),
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: x}\nspec:\n  mode: enforce\n  rules:\n    - requireProbes: {livenes: true}\n",
    )
    .expect("write policy");
    let bad_dir = bad.path().display().to_string();
    let out = run(
        &[
            "audit",
            "--policies",
            &bad_dir,
            &manifest("apps/shop/web.yaml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("cannot load policies"), "{err}");
    assert!(
        err.contains("p.yaml:"),
        "diagnostic with file and line: {err}"
    );
    let none = run(
        &[
            "audit",
            "--policies",
            "/no/such/dir",
            &manifest("apps/shop/web.yaml"),
        ],
        None,
    );
    assert_eq!(none.status.code(), Some(2));
}

#[test]
fn default_policies_dir_comes_from_the_environment() {
    let out = Command::new(BIN)
        .args(["audit", "-o", "json", &manifest("apps/shop/api.yaml")])
        .env("PORTCULLIS_POLICIES", policies())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["objects"][0]["verdict"], "deny");
}

#[test]
fn stdin_and_kubectl_style_filename_flags() {
    let p = policies();
    let text = std::fs::read_to_string(manifest("apps/shop/worker.yaml")).expect("read");
    let out = run(&["audit", "--policies", &p, "-o", "json", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["objects"][0]["file"], "<stdin>");
    assert_eq!(r["objects"][0]["name"], "worker");
    assert_eq!(r["objects"][0]["verdict"], "deny");

    // `kubectl portcullis audit -f a -f b` (repeatable, mixed with --filename).
    let out = run(
        &[
            "audit",
            "--policies",
            &p,
            "-o",
            "json",
            "-f",
            &manifest("apps/shop/web.yaml"),
            "--filename",
            &manifest("redis.json"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = r["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["web", "web", "redis"]);
}

#[test]
fn namespace_labels_apply_whatever_comes_first_even_on_stdin() {
    // The workload comes before its Namespace, whose label exempts it from require-resources.
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: old, namespace: legacy}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27.3\n        livenessProbe: {tcpSocket: {port: 80}}\n        readinessProbe: {tcpSocket: {port: 80}}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {portcullis.dev/resources: exempt}\n";
    let p = policies();
    let out = run(&["audit", "--policies", &p, "-o", "json", "-"], Some(text));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let o = object(&r, "Deployment", "old");
    assert!(
        !violations(o)
            .iter()
            .any(|v| v.contains("require-resources")),
        "{:?}",
        violations(o)
    );
    assert!(
        !o["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .any(|p| p == "require-resources")
    );
}

#[test]
fn symlink_loops_are_reported_and_each_file_read_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    std::fs::copy(manifest("apps/shop/web.yaml"), d.join("web.yaml")).expect("copy");
    std::os::unix::fs::symlink(".", d.join("a")).expect("symlink");
    std::os::unix::fs::symlink(".", d.join("b")).expect("symlink");
    std::os::unix::fs::symlink("web.yaml", d.join("z.yaml")).expect("symlink");
    let p = policies();
    let dir_arg = d.display().to_string();
    let out = run(&["audit", "--policies", &p, "-o", "json", &dir_arg], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        r["summary"]["objects"], 2,
        "web.yaml holds 2 objects, read once"
    );
    let err = stderr(&out);
    for link in ["a", "b"] {
        assert!(
            err.contains(&format!(
                "warning: skipped {}: a symbolic link loop (it leads back to {dir_arg}, which contains it)",
                d.join(link).display()
            )),
            "{err}"
        );
    }
}

#[test]
fn works_as_a_kubectl_plugin_through_a_symlink() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("kubectl-portcullis");
    std::os::unix::fs::symlink(BIN, &plugin).expect("symlink");
    let out = Command::new(&plugin)
        .args([
            "audit",
            "--policies",
            &policies(),
            "-f",
            &manifest("apps/shop/web.yaml"),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("PASS Deployment shop/web"));
}

#[test]
fn namespace_flag_fills_in_objects_without_one() {
    let p = policies();
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27.3\n    livenessProbe: {tcpSocket: {port: 80}}\n    readinessProbe: {tcpSocket: {port: 80}}\n    resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n";
    let out = run(
        &[
            "audit",
            "--policies",
            &p,
            "-o",
            "json",
            "-n",
            "default",
            "-",
        ],
        Some(text),
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let o = &r["objects"][0];
    assert_eq!(
        violations(o),
        ["audit no-default-namespace - metadata.namespace"],
        "the audit-mode policy sees namespace default"
    );
    let out = run(&["audit", "--policies", &p, "-o", "json", "-"], Some(text));
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(violations(&r["objects"][0]).is_empty());
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("mutate prints valid YAML"))
        .collect()
}

#[test]
fn mutate_prints_admitted_objects_and_is_idempotent() {
    let p = policies();
    let web = manifest("apps/shop/web.yaml");
    let out = run(&["mutate", "--policies", &p, &web], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = yaml_docs(&stdout(&out));
    assert_eq!(docs.len(), 2, "Deployment and Service");
    let d = &docs[0];
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "portcullis"
    );
    assert_eq!(d["metadata"]["labels"]["app"], "web", "user labels kept");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "log-shipper");
    assert_eq!(pod["initContainers"][0]["restartPolicy"], "Always");
    assert_eq!(pod["volumes"][0]["name"], "app-logs");
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/log/app"
    );
    // Non-workloads unchanged.
    let original = std::fs::read_to_string(&web).expect("read");
    let original_docs = yaml_docs(&original);
    assert_eq!(docs[1], original_docs[1]);

    // Mutating the mutated output changes nothing (the webhook may be reinvoked).
    let again = run(
        &["mutate", "--policies", &p, "--diff", "-"],
        Some(&stdout(&out)),
    );
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), "", "no diff on the second pass");
    assert!(stderr(&again).contains("0 of 2 objects would change"));
    // And the mutated output audits clean of mutations.
    let audit = run(
        &["audit", "--policies", &p, "-o", "json", "-"],
        Some(&stdout(&out)),
    );
    let r: Value = serde_json::from_slice(&audit.stdout).expect("JSON");
    assert_eq!(r["summary"]["mutated"], 0);
    assert_eq!(r["summary"]["passed"], 1);
}

#[test]
fn mutate_json_output() {
    let p = policies();
    let out = run(
        &[
            "mutate",
            "--policies",
            &p,
            "-o",
            "json",
            &manifest("redis.json"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let one: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        one["kind"], "Deployment",
        "a single object is printed as itself"
    );
    assert_eq!(one["metadata"]["labels"]["app.kubernetes.io/name"], "redis");
    let out = run(
        &[
            "mutate",
            "--policies",
            &p,
            "-o",
            "json",
            &manifest("apps/shop/web.yaml"),
        ],
        None,
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn mutate_diff_shows_only_what_changes() {
    let p = policies();
    let out = run(
        &[
            "mutate",
            "--policies",
            &p,
            "--diff",
            &manifest("apps/shop/web.yaml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let diff = stdout(&out);
    let first = diff.lines().next().expect("a header");
    assert!(first.starts_with("--- Deployment shop/web ("), "{diff}");
    assert!(diff.contains("+++ Deployment shop/web ("), "{diff}");
    assert!(diff.contains("#1) as admitted"), "{diff}");
    assert!(
        diff.contains("+    app.kubernetes.io/managed-by: portcullis"),
        "{diff}"
    );
    assert!(
        diff.contains("+      initContainers:\n+      - image: fluent/fluent-bit:3.2.4\n"),
        "{diff}"
    );
    assert!(diff.contains("+        name: log-shipper\n"), "{diff}");
    assert!(
        !diff.contains("Service"),
        "unchanged objects print nothing: {diff}"
    );
    assert!(
        diff.lines()
            .all(|l| !l.starts_with('-') || l.starts_with("---")),
        "only additions: {diff}"
    );
    assert!(stderr(&out).contains("1 of 2 objects would change"));
}

#[test]
fn mutate_reports_denials_and_broken_documents_but_prints_the_rest() {
    let p = policies();
    let out = run(
        &[
            "mutate",
            "--policies",
            &p,
            &manifest("broken.yaml"),
            &manifest("apps/shop/api.yaml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("broken.yaml#2 (line 14)"), "{err}");
    assert!(err.contains("Deployment shop/api"), "{err}");
    assert!(err.contains("would be denied"), "{err}");
    let docs = yaml_docs(&stdout(&out));
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["cache-config", "cache", "api"]);
}

#[test]
fn stats_reports_throughput_on_stderr() {
    let p = policies();
    let out = run(
        &[
            "audit",
            "--policies",
            &p,
            "--stats",
            "-o",
            "json",
            &manifest("apps"),
        ],
        None,
    );
    let err = stderr(&out);
    assert!(err.contains("objects/s"), "{err}");
    let _: Value = serde_json::from_slice(&out.stdout).expect("stdout stays pure JSON");
}

#[test]
fn non_utf8_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file: &Path = &dir.path().join("latin1.yaml");
    std::fs::write(
        file,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: caf\xe9}\n",
    )
    .expect("write");
    let (r, code) = audit_json(&[&file.display().to_string()]);
    assert_eq!(code, 1);
    assert_eq!(r["errors"][0]["line"], 4);
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("not UTF-8"),
        "{r}"
    );
}

/// About 1.3 MB on standard input: a denied Deployment and a Namespace whose label exempts
/// workloads from require-resources, 2,000 ConfigMaps, then a Deployment without resources in
/// that namespace. The policies select namespaces by label, so standard input is kept for a
/// second reading; what a failed copy drops is the start of it.
fn large_stdin() -> String {
    let deployment = |name: &str, ns: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27.3\n        livenessProbe: {{tcpSocket: {{port: 80}}}}\n        readinessProbe: {{tcpSocket: {{port: 80}}}}\n---\n"
        )
    };
    let mut text = deployment("denied", "prod");
    text.push_str("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {portcullis.dev/resources: exempt}\n---\n");
    let filler = "x".repeat(600);
    for i in 0..2_000 {
        text.push_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: legacy}}\ndata: {{k: {filler}}}\n---\n"
        ));
    }
    text.push_str(&deployment("exempt", "legacy"));
    assert!(text.len() > 1_300_000, "{}", text.len());
    text
}

/// Runs `sh -c script BIN audit ... -` with `input` on standard input.
fn audit_stdin_through(script: &str, envs: &[(&str, &Path)], input: &str) -> Output {
    let p = policies();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        script,
        BIN,
        "audit",
        "--policies",
        &p,
        "-o",
        "json",
        "-",
    ])
    .env("NO_COLOR", "1")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("sh runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_owned();
    // A binary that stops reading early breaks the pipe: what it printed tells why.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("the binary finishes");
    let _ = writer.join().expect("the writer ends");
    out
}

/// Every object of [`large_stdin`] judged, whatever became of the temporary file.
fn assert_nothing_lost(out: &Output) {
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}", stderr(out)));
    let objects = r["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 2_003, "{}", stderr(out));
    assert!(
        objects.iter().all(|o| o["verdict"] != "error"),
        "{}",
        stderr(out)
    );
    assert_eq!(object(&r, "Deployment", "denied")["verdict"], "deny");
    // The exempting Namespace applies to the last object.
    assert_ne!(object(&r, "Deployment", "exempt")["verdict"], "deny");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
}

#[test]
fn stdin_is_kept_whole_when_the_temporary_file_cannot_grow() {
    // Files this process writes may not grow past 64 KiB (EFBIG, the signal ignored): the
    // temporary copy of standard input fails part way, as on a full disk.
    let out = audit_stdin_through(
        r#"trap '' XFSZ; ulimit -f 128 && exec "$0" "$@""#,
        &[],
        &large_stdin(),
    );
    assert_nothing_lost(&out);
}

#[test]
#[ignore = "mounts a full tmpfs in a mount namespace: needs root (cargo test --test audit_cli -- --ignored)"]
fn stdin_is_kept_whole_on_a_full_disk() {
    // TMPDIR on a 64 KiB tmpfs, in a mount namespace of its own.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = audit_stdin_through(
        r#"exec unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs "$SMALL" && TMPDIR="$SMALL" exec "$@"' sh "$0" "$@""#,
        &[("SMALL", dir.path())],
        &large_stdin(),
    );
    assert_nothing_lost(&out);
}
