//! Load-time lint as users see it: `portcullis policy validate` prints warnings and keeps the
//! set valid, refuses a set with a lint error; the audit CLI warns on stderr.

use std::path::Path;
use std::process::ExitCode;

use portcullis::cli::policy::validate;

const LABELS_A: &str = "apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  mode: enforce
  rules:
    - defaultLabels: {labels: {team: platform}}
";
const LABELS_B: &str = "apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: other-team-label}
spec:
  mode: enforce
  rules:
    - defaultLabels: {labels: {team: apps}}
";
const DENY_ALL: &str = "apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: freeze}
spec:
  mode: enforce
  match: {namespaces: {exclude: [kube-system]}}
  rules:
    - disallowNamespaces: {namespaces: ['*']}
";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

#[test]
fn validate_prints_warnings_and_keeps_the_set_valid() {
    let dir = dir_with(&[("a.yaml", LABELS_A), ("b.yaml", LABELS_B)]);
    let (out, code) = validate(dir.path());
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    let expected = format!(
        "warning: {}:1: conflicting mutations: \"team-label\" (spec.rules[0]) and \"other-team-label\" (spec.rules[0]) at {}:1 both default the label \"team\", to \"platform\" and \"apps\"\n  hint: defaults never overwrite",
        a.display(),
        b.display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(
        out.ends_with("2 policies are valid, with 1 warning\n"),
        "{out}"
    );
}

#[test]
fn validate_refuses_a_policy_that_denies_every_workload() {
    let dir = dir_with(&[("freeze.yaml", DENY_ALL)]);
    let (out, code) = validate(dir.path());
    assert_eq!(code, ExitCode::FAILURE, "{out}");
    assert!(
        out.contains(&format!(
            "{}:1: policy \"freeze\" denies every workload: spec.rules[0].disallowNamespaces forbids every namespace (\"*\")",
            dir.path().join("freeze.yaml").display()
        )),
        "{out}"
    );
    assert!(out.ends_with("1 problem found\n"), "{out}");
}

#[test]
fn audit_prints_lint_warnings_on_stderr() {
    let dir = dir_with(&[("a.yaml", LABELS_A), ("b.yaml", LABELS_B)]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/redis.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .arg("--policies")
        .arg(dir.path())
        .arg(&manifest)
        .output()
        .expect("run audit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: ") && stderr.contains("both default the label \"team\""),
        "{stderr}"
    );
}
