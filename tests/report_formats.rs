//! `portcullis audit -o sarif`, `-o junit` and `-o html` as the binary writes them: SARIF valid
//! against the SARIF 2.1.0 schema, located at the offending field's line and column of real
//! fixture files, with fingerprints that survive unrelated edits; JUnit with a test case per
//! workload; the HTML page self-contained and bounded in size. (The HTML page in a browser:
//! tests/report_browser.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portcullis")
}

fn audit(args: &[&str]) -> Vec<u8> {
    let mut all = vec!["audit"];
    all.extend(args);
    let out = portcullis(&all);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn sarif_schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("tests/schemas/sarif-schema-2.1.0.json"))
            .expect("the SARIF schema");
    // The schema's pattern for languages (`run.language`, `translationMetadata`) has a lone `]`, a literal in ECMAScript's
    // legacy syntax (Annex B) that the validator, which checks patterns in Unicode mode,
    // refuses; escaped, it is the same pattern. Nothing else is touched.
    let bad = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert_eq!(
        text.matches(bad).count(),
        2,
        "the schema's pattern as published"
    );
    let text = text.replace(bad, r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#);
    let schema: Value = serde_json::from_str(&text).expect("JSON");
    jsonschema::draft7::new(&schema).expect("a valid schema")
}

fn assert_valid_sarif(sarif: &Value) {
    let validator = sarif_schema();
    let errors: Vec<String> = validator
        .iter_errors(sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid SARIF 2.1.0: {errors:#?}");
}

/// (uri, line, column, field) of every result.
fn located(sarif: &Value) -> Vec<(String, u64, u64, String)> {
    sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| {
            let p = &r["locations"][0]["physicalLocation"];
            Some((
                p["artifactLocation"]["uri"].as_str()?.to_owned(),
                p["region"]["startLine"].as_u64()?,
                p["region"]["startColumn"].as_u64()?,
                r["properties"]["field"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[test]
fn sarif_is_valid_and_has_a_result_per_violation_and_notice() {
    for (policies, input) in [
        ("policies", "tests/manifests"),
        ("tests/policies", "tests/manifests"),
        (
            "tests/fixtures/report/policies",
            "tests/fixtures/report/manifests.yaml",
        ),
    ] {
        let args = ["--policies", policies, "--at", "2026-12-01", input];
        let sarif = json_of(&audit(&[&["-o", "sarif"][..], &args].concat()));
        assert_valid_sarif(&sarif);
        let json = json_of(&audit(&[&["-o", "json"][..], &args].concat()));
        let want: usize = json["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|o| {
                o["findings"]
                    .as_array()
                    .expect("findings")
                    .iter()
                    .filter(|f| f["kind"] != "mutation")
                    .count()
            })
            .sum();
        let run = &sarif["runs"][0];
        assert_eq!(
            run["results"].as_array().expect("results").len(),
            want,
            "{policies} {input}"
        );
        // One rule per rule of a policy, each with its help text.
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        let set = portcullis::lint::load_dir(&Path::new(ROOT).join(policies)).expect("policies");
        let want: BTreeSet<String> = set
            .policies
            .iter()
            .flat_map(|p| {
                p.rules
                    .iter()
                    .map(move |r| format!("{}/{}", p.name, r.type_name()))
            })
            .collect();
        let ids: BTreeSet<String> = rules
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(ids, want);
        for r in rules {
            assert!(!r["help"]["text"].as_str().expect("help").is_empty(), "{r}");
        }
        for r in run["results"].as_array().expect("results") {
            let i = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
        }
        // Unreadable documents are notifications, at their line.
        let errors = json["summary"]["errors"].as_u64().expect("errors");
        let notes = run["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .expect("notifications");
        assert_eq!(notes.len() as u64, errors);
    }
}

#[test]
fn sarif_locates_the_offending_field_in_real_files() {
    let sarif = json_of(&audit(&[
        "-o",
        "sarif",
        "--policies",
        "tests/policies",
        "tests/manifests/helm-rendered.yaml",
        "tests/manifests/apps/shop/frontend.yaml",
        "tests/manifests/apps/db-statefulset.yaml",
        "tests/manifests/pods/owned-pods.yaml",
        "tests/manifests/pods/bare-pod.yaml",
    ]));
    let found = located(&sarif);
    let at = |uri: &str, field: &str| {
        found
            .iter()
            .find(|(u, _, _, f)| u == uri && f == field)
            .map(|(_, l, c, _)| (*l, *c))
            .unwrap_or_else(|| panic!("no result for {uri} {field}: {found:#?}"))
    };
    // A field that is there: its key (`image: "nginx:latest"` on line 73, column 11).
    assert_eq!(
        at(
            "tests/manifests/helm-rendered.yaml",
            "spec.template.spec.containers[0].image"
        ),
        (73, 11)
    );
    assert_eq!(
        at("tests/manifests/helm-rendered.yaml", "metadata.namespace"),
        (44, 3)
    );
    assert_eq!(
        at(
            "tests/manifests/apps/shop/frontend.yaml",
            "spec.template.spec.containers[1].image"
        ),
        (36, 9)
    );
    // A field that is missing: the deepest node on its path that is there (the second
    // container, its `limits`, the init container, the StatefulSet's container).
    assert_eq!(
        at(
            "tests/manifests/apps/shop/frontend.yaml",
            "spec.template.spec.containers[1].livenessProbe"
        ),
        (35, 9)
    );
    assert_eq!(
        at(
            "tests/manifests/apps/shop/frontend.yaml",
            "spec.template.spec.containers[1].resources.limits.memory"
        ),
        (41, 11)
    );
    assert_eq!(
        at(
            "tests/manifests/apps/shop/frontend.yaml",
            "spec.template.spec.initContainers[0].resources.limits.cpu"
        ),
        (20, 9)
    );
    assert_eq!(
        at(
            "tests/manifests/apps/db-statefulset.yaml",
            "spec.template.spec.containers[0].readinessProbe"
        ),
        (16, 9)
    );
    assert_eq!(
        at(
            "tests/manifests/pods/bare-pod.yaml",
            "spec.containers[0].livenessProbe"
        ),
        (10, 5)
    );
}

#[test]
fn sarif_locates_fields_in_json_files_and_list_items() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("list.yaml");
    std::fs::write(
        &list,
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x}\n  spec:\n    containers: [{name: c, image: c:1}]\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: b, namespace: x}\n  spec:\n    containers:\n    - name: c\n      image: c:1\n",
    )
    .expect("write");
    let json = dir.path().join("pod.json");
    std::fs::write(
        &json,
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": \"j\", \"namespace\": \"x\"},\n  \"spec\": {\n    \"containers\": [\n      {\"name\": \"c\", \"image\": \"c:1\"}\n    ]\n  }\n}\n",
    )
    .expect("write");
    let sarif = json_of(&audit(&[
        "-o",
        "sarif",
        "--policies",
        "tests/policies",
        &list.display().to_string(),
        &json.display().to_string(),
    ]));
    assert_valid_sarif(&sarif);
    let found = located(&sarif);
    let at = |file: &Path, workload: &str, field: &str| {
        sarif["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["properties"]["workload"] == workload && r["properties"]["field"] == field)
            .map(|r| {
                let p = &r["locations"][0]["physicalLocation"];
                assert!(
                    p["artifactLocation"]["uri"]
                        .as_str()
                        .expect("uri")
                        .ends_with(&*file.file_name().expect("name").to_string_lossy())
                );
                (
                    p["region"]["startLine"].as_u64().expect("line"),
                    p["region"]["startColumn"].as_u64().expect("column"),
                )
            })
            .unwrap_or_else(|| panic!("{workload} {field}: {found:#?}"))
    };
    // A flow mapping (and JSON): the container is where its `{` is.
    assert_eq!(
        at(&list, "Pod x/a", "spec.containers[0].livenessProbe"),
        (8, 18)
    );
    assert_eq!(
        at(&list, "Pod x/b", "spec.containers[0].livenessProbe"),
        (14, 7)
    );
    assert_eq!(
        at(&json, "Pod x/j", "spec.containers[0].livenessProbe"),
        (7, 7)
    );
}

#[test]
fn sarif_fingerprints_survive_runs_and_unrelated_edits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("app.yaml");
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("tests/manifests/apps/shop/frontend.yaml"))
            .expect("read");
    std::fs::write(&file, &text).expect("write");
    let run = |file: &Path| {
        json_of(&audit(&[
            "-o",
            "sarif",
            "--policies",
            "tests/policies",
            &file.display().to_string(),
        ]))
    };
    let prints = |sarif: &Value| -> BTreeMap<String, (String, u64)> {
        sarif["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                (
                    r["partialFingerprints"]["portcullisFinding/v1"]
                        .as_str()
                        .expect("fingerprint")
                        .to_owned(),
                    (
                        r["properties"]["field"].as_str().expect("field").to_owned(),
                        r["locations"][0]["physicalLocation"]["region"]["startLine"]
                            .as_u64()
                            .expect("line"),
                    ),
                )
            })
            .collect()
    };
    let first = prints(&run(&file));
    assert_eq!(first.len(), 8, "one fingerprint per finding: {first:#?}");
    assert_eq!(
        prints(&run(&file)),
        first,
        "the same run, the same fingerprints"
    );
    // Unrelated edits: a comment and a label above everything; the lines move, the
    // fingerprints do not.
    std::fs::write(
        &file,
        format!(
            "# moved\n# down\n{}",
            text.replacen("  labels:\n", "  labels:\n    tier: web\n", 1)
        ),
    )
    .expect("write");
    let moved = prints(&run(&file));
    assert_eq!(
        moved.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (k, (field, line)) in &moved {
        assert!(
            *line > first[k].1,
            "{field}: line {line} was {}",
            first[k].1
        );
    }
    // Fixing one finding closes exactly its fingerprint.
    std::fs::write(
        &file,
        text.replace("limits: {cpu: 50m}", "limits: {cpu: 50m, memory: 64Mi}"),
    )
    .expect("write");
    let fixed = prints(&run(&file));
    let gone: Vec<&String> = first.keys().filter(|k| !fixed.contains_key(*k)).collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(
        first[gone[0]].0,
        "spec.template.spec.containers[1].resources.limits.memory"
    );
}

#[test]
fn sarif_marks_excepted_findings_as_suppressed_and_names_no_file_for_stdin() {
    let sarif = json_of(&audit(&[
        "-o",
        "sarif",
        "--policies",
        "tests/fixtures/report/policies",
        "--at",
        "2026-12-01",
        "tests/fixtures/report/manifests.yaml",
    ]));
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 4, "legacy-batch's four resource findings");
    for r in &suppressed {
        assert_eq!(r["properties"]["effect"], "excepted");
        assert_eq!(
            r["level"], "error",
            "an enforce finding, held back by the exception"
        );
        let why = r["suppressions"][0]["justification"]
            .as_str()
            .expect("justification");
        assert!(
            why.contains("legacy-batch-resources") && why.contains("PAY-1234"),
            "{why}"
        );
    }
    let config = &sarif["runs"][0]["invocations"][0]["toolConfigurationNotifications"];
    assert!(config.to_string().contains("gateway-probes"), "{config}");
    // Standard input: no file to point at, the workload named logically.
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "-o", "sarif", "--policies", "tests/policies", "-"])
        .current_dir(ROOT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            &std::fs::read(Path::new(ROOT).join("tests/manifests/pods/bare-pod.yaml"))
                .expect("read"),
        )
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let sarif = json_of(&out.stdout);
    assert_valid_sarif(&sarif);
    let r = &sarif["runs"][0]["results"][0];
    assert!(r["locations"][0].get("physicalLocation").is_none(), "{r}");
    assert_eq!(
        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "Pod shop/debug"
    );
}

#[test]
fn junit_has_a_test_case_per_workload() {
    let xml = String::from_utf8(audit(&[
        "-o",
        "junit",
        "--policies",
        "tests/policies",
        "tests/manifests",
    ]))
    .expect("UTF-8");
    let json = json_of(&audit(&[
        "-o",
        "json",
        "--policies",
        "tests/policies",
        "tests/manifests",
    ]));
    let s = &json["summary"];
    let count = |needle: &str| xml.matches(needle).count() as u64;
    let workloads = s["judged"].as_u64().expect("judged") + s["skipped"].as_u64().expect("skipped");
    assert_eq!(
        count("<testcase "),
        workloads + s["errors"].as_u64().expect("errors"),
        "{xml}"
    );
    assert_eq!(count("<failure "), s["denied"].as_u64().expect("denied"));
    assert_eq!(count("<skipped "), s["skipped"].as_u64().expect("skipped"));
    assert_eq!(count("<error "), s["errors"].as_u64().expect("errors"));
    assert!(xml.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"portcullis audit\">\n"
    ));
    assert!(xml.ends_with("</testsuites>\n"));
    assert_eq!(count("<testsuite "), count("</testsuite>"));
    assert!(
        xml.contains("<testcase name=\"Deployment shop/worker\" classname=\"shop\" file=\"tests/manifests/apps/shop/worker.yaml\" line=\"1\">\n      <failure message=\"Deployment shop/worker: 2 violations of enforce policies\" type=\"deny\">deny [require-resources] container &quot;worker&quot;: no cpu limit"),
        "{xml}"
    );
    // Warnings are told, and do not fail the case.
    assert!(xml.contains("<system-out>warn [pinned-images] container &quot;chart-app&quot;: image &quot;nginx:latest&quot;"), "{xml}");
}

#[test]
fn html_is_self_contained() {
    let html = String::from_utf8(audit(&[
        "-o",
        "html",
        "--policies",
        "tests/fixtures/report/policies",
        "--at",
        "2026-12-01",
        "tests/fixtures/report/manifests.yaml",
    ]))
    .expect("UTF-8");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for pattern in [
        "src=", "<link", "@import", "url(", "http://", "https://", "<iframe", "<img",
    ] {
        assert!(
            !html.contains(pattern),
            "the page refers elsewhere ({pattern})"
        );
    }
    // The same words as the other reports.
    assert!(html.contains("no livenessProbe"), "a finding");
    assert!(
        html.contains("add a livenessProbe (httpGet, tcpSocket, grpc or exec)"),
        "its fix"
    );
    assert!(
        html.contains("legacy-batch-resources") && html.contains("PAY-1234"),
        "an exception"
    );
}

/// The HTML report of 12,000 Deployments in 120 namespaces, each with a container named
/// `container(i)`.
fn html_of_many(container: fn(usize) -> String) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("many.yaml");
    let mut text = String::new();
    for i in 0..12_000 {
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i:05}, namespace: ns-{:03}}}\nspec:\n  template:\n    spec:\n      containers: [{{name: {}, image: app:1}}]\n",
            i / 100,
            container(i)
        ));
    }
    std::fs::write(&file, text).expect("write");
    let path = file.display().to_string();
    let html = audit(&[
        "-o",
        "html",
        "--policies",
        "policies",
        "--at",
        "2026-12-01",
        &path,
    ]);
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    let html = String::from_utf8(html).expect("UTF-8");
    assert!(
        html.contains("data-count=\"judged\">12,000<"),
        "the counts are whole"
    );
    // Every namespace is in the table.
    assert_eq!(
        html.matches("<tr class=\"fails\" data-name=\"ns-").count(),
        120
    );
    html
}

#[test]
fn html_shows_every_workload_with_the_same_findings_once() {
    // 12,000 workloads with six findings each, the same in each namespace: one entry per
    // namespace names its 100 workloads, and nothing is cut.
    let html = html_of_many(|_| "app".to_owned());
    assert!(!html.contains("id=\"cut\""), "nothing cut");
    assert_eq!(
        html.matches("data-workloads=100>").count(),
        120,
        "one entry per namespace"
    );
    for i in (0..12_000).step_by(997) {
        assert!(
            html.contains(&format!("<li>app-{i:05} <small>")),
            "app-{i:05} is named"
        );
    }
}

#[test]
fn html_stays_under_5_mb_and_says_what_it_cut() {
    // 12,000 workloads with six findings each, all different (their container's name is in
    // the messages): far more than a page can list in full.
    let html = html_of_many(|i| format!("c{i}"));
    assert!(
        html.contains("id=\"cut\""),
        "the page says what it did not show in full"
    );
    assert!(html.contains("Not shown in full, to keep this page under 5 MB"));
}

#[test]
fn report_flags_are_checked() {
    let out = portcullis(&[
        "audit",
        "-o",
        "json",
        "--group-by",
        "team",
        "tests/manifests",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--group-by and --baseline apply to -o html only")
    );
    let out = portcullis(&[
        "audit",
        "-o",
        "html",
        "--baseline",
        "no-such-report.json",
        "tests/manifests",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the baseline no-such-report.json"),
        "{err}"
    );
    let out = portcullis(&[
        "audit",
        "-o",
        "html",
        "--baseline",
        "tests/manifests/redis.json",
        "tests/manifests",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a JSON report of `portcullis audit -o json`"),
        "{err}"
    );
}
