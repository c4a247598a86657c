//! `portcullis test` as a real process: the shipped tests of the default policies pass with
//! full coverage, sabotaged policies make them fail (and say why), and the exit codes and
//! report formats are what docs/cli.md and docs/policy-tests-exceptions-schedules.md promise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env_remove("PORTCULLIS_POLICIES")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of `policies/` (tests included) in a temporary directory, `edit` applied to one file.
fn sabotaged(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&root().join("policies"), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("policy file");
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn the_shipped_tests_pass_with_every_rule_covered() {
    let out = run(&["test", "--require-coverage"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("coverage: 17 of 17 rules"), "{text}");
    assert!(text.contains("result: PASS"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn a_mode_changed_from_enforce_to_warn_fails_the_tests() {
    let dir = sabotaged("require-probes.yaml", "mode: enforce", "mode: warn");
    let policies = dir.path().display().to_string();
    let out = run(&["test", "--policies", &policies]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL a Deployment without probes is denied"),
        "{text}"
    );
    assert!(
        text.contains("expected the request to be denied, but it is allowed"),
        "{text}"
    );
    assert!(
        text.contains("unexpected finding: warn require-probes (requireProbes) container \"web\": no livenessProbe"),
        "{text}"
    );
}

#[test]
fn a_dropped_rule_fails_the_tests() {
    // require-resources keeps its name and mode, but its requireResources rule is gone.
    let dir = sabotaged("require-resources.yaml", "mode: enforce", "mode: enforce");
    std::fs::write(
        dir.path().join("require-resources.yaml"),
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: require-resources}\nspec:\n  mode: enforce\n  rules:\n    - requireImageTag: {}\n",
    )
    .expect("write");
    let policies = dir.path().display().to_string();
    let out = run(&["test", "--policies", &policies, "--require-coverage"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("expected finding matched nothing: {\"policy\":\"require-resources\",\"rule\":\"requireResources\""),
        "{text}"
    );
    assert!(
        text.contains("FAIL a container without limits is denied, naming each missing limit"),
        "{text}"
    );
}

#[test]
fn a_changed_sidecar_shows_a_unified_diff_of_the_admitted_object() {
    let dir = sabotaged(
        "inject-logging-sidecar.yaml",
        "image: fluent/fluent-bit:3.2.4",
        "image: fluent/fluent-bit:3.3.0",
    );
    let policies = dir.path().display().to_string();
    let out = run(&["test", "--policies", &policies]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the admitted object differs from the expected one"),
        "{text}"
    );
    assert!(
        text.contains("-    image: fluent/fluent-bit:3.2.4"),
        "{text}"
    );
    assert!(
        text.contains("+    image: fluent/fluent-bit:3.3.0"),
        "{text}"
    );
}

#[test]
fn expecting_a_pass_for_a_violating_object_fails_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("wrong.yaml");
    std::fs::write(
        &file,
        r#"
apiVersion: portcullis.dev/v1alpha1
kind: PolicyTest
metadata: {name: wrong}
spec:
  policies: [require-probes]
  cases:
    - name: a Pod without probes passes (it does not)
      object:
        apiVersion: v1
        kind: Pod
        metadata: {name: p, namespace: shop}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}
      expect: {}
"#,
    )
    .expect("write");
    let out = run(&["test", &file.display().to_string()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL a Pod without probes passes"), "{text}");
    assert!(
        text.contains("unexpected finding: deny require-probes (requireProbes) container \"app\": no livenessProbe [field spec.containers[0].livenessProbe]"),
        "{text}"
    );
    assert!(text.contains(&format!("({}:8)", file.display())), "{text}");
}

#[test]
fn exit_codes_tell_failures_unreadable_tests_and_missing_coverage_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: portcullis.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: b}\nspec:\n  cases:\n    - name: x\n      objekt: {}\n      expect: {}\n",
    )
    .expect("write");
    let out = run(&["test", &broken.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "{}:7: spec.cases[0]: unknown field `objekt`",
            broken.display()
        )),
        "{}",
        stdout(&out)
    );

    let out = run(&["test", "--policies", "does-not-exist", "policies/tests"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // One file covers only some rules: 0 without --require-coverage, 3 with it.
    let out = run(&["test", "policies/tests/require-probes.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = run(&[
        "test",
        "--require-coverage",
        "policies/tests/require-probes.yaml",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("require-resources/requireResources: no case where it fires"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_and_junit_reports() {
    let out = run(&["test", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["schemaVersion"], 1);
    assert_eq!(json["result"], "pass");
    assert_eq!(json["summary"]["failed"], 0);
    let cases = json["summary"]["cases"].as_u64().expect("cases");
    assert!(cases >= 18, "{cases}");
    let denied = &json["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .find(|s| s["name"] == "require-probes")
        .expect("require-probes suite")["cases"][1];
    assert_eq!(denied["allowed"], false);
    let effects: Vec<&str> = denied["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["policy"] == "require-probes")
        .filter_map(|f| f["effect"].as_str())
        .collect();
    assert_eq!(effects, ["deny", "deny"]);

    let out = run(&[
        "test",
        "-o",
        "junit",
        "--require-coverage",
        "policies/tests/require-probes.yaml",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let xml = stdout(&out);
    assert!(
        xml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"portcullis test\""
        ),
        "{xml}"
    );
    assert!(xml.contains("<testsuite name=\"require-probes\""), "{xml}");
    assert!(xml.contains("<testcase name=\"a Deployment without probes is denied, one finding per missing probe\" classname=\"require-probes\""), "{xml}");
    assert!(xml.contains("<failure message=\"require-resources/requireResources: no case where it fires\" type=\"MissingCoverage\">"), "{xml}");
    assert_eq!(
        xml.matches("<testsuite ").count(),
        xml.matches("</testsuite>").count()
    );
}

#[test]
fn a_failing_case_is_a_junit_failure_with_the_reason() {
    let dir = sabotaged("require-probes.yaml", "mode: enforce", "mode: audit");
    let policies = dir.path().display().to_string();
    let out = run(&["test", "--policies", &policies, "-o", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    assert!(
        xml.contains("<failure message=\"expected the request to be denied, but it is allowed\" type=\"PolicyTestFailure\">"),
        "{xml}"
    );
    assert!(
        xml.contains("unexpected finding: audit require-probes"),
        "{xml}"
    );
}
