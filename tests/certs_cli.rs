//! `portcullis certs` as a user runs it: what it prints, what it leaves on disk, and how it
//! refuses bad input (exit code 2, nothing written).

use std::process::Command;

const PORTCULLIS: &str = env!("CARGO_BIN_EXE_portcullis");

fn certs(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(PORTCULLIS)
        .arg("certs")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run portcullis certs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn generates_then_reuses_the_ca_and_says_what_to_do_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = certs(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("generated CA certs/ca.crt"), "{out}");
    assert!(out.contains("portcullis.portcullis-system.svc,"), "{out}");
    assert!(out.contains("next: kubectl apply -k deploy/"), "{out}");
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("certs"))
        .expect("certs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ca.crt",
            "ca.key",
            "kustomization.yaml",
            "secret.yaml",
            "tls.crt",
            "tls.key",
            "webhook-ca-bundle.yaml"
        ]
    );

    let (code, out, _) = certs(dir.path(), &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("reused CA certs/ca.crt"), "{out}");

    let (code, out, _) = certs(dir.path(), &["--force"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("previous CA certs/ca-previous.crt still trusted"),
        "{out}"
    );
    assert!(out.contains("finish the CA rotation"), "{out}");
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = certs(dir.path(), &["--namespace", "Team A"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: --namespace \"Team A\""), "{err}");
    assert!(!dir.path().join("certs").exists());

    let (code, _, err) = certs(dir.path(), &["--validity-days", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--validity-days"), "{err}");
}
