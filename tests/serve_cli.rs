//! `portcullis serve` as a user starts it: what it prints when it cannot start.

use std::process::Command;

const PORTCULLIS: &str = env!("CARGO_BIN_EXE_portcullis");

/// A policy with an unknown field stops start-up with exit code 2 and the problem (file, line,
/// hint) printed once.
#[test]
fn a_bad_policy_is_reported_once_and_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).expect("mkdir");
    std::fs::write(
        policies.join("probes.yaml"),
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: probes}\n\
         spec:\n  mode: enforce\n  bogus: 1\n  rules:\n    - requireProbes: {}\n",
    )
    .expect("write policy");
    let out = Command::new(PORTCULLIS)
        .args(["serve", "--policies", "policies", "--log-format", "plain"])
        .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .expect("run portcullis serve");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problem = "policies/probes.yaml:6: spec: unknown field `bogus`";
    assert_eq!(stderr.matches(problem).count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("hint: check the spelling").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with("error: cannot load policies from policies:\n"),
        "{stderr}"
    );
}
