//! The cluster-facing command line without a cluster: `serve` without cluster access keeps
//! working and says namespace selectors see names only (even with a ~/.kube/config lying
//! around); `--reports` needs cluster access; `audit --cluster` tells a missing kubeconfig
//! (exit 2) from an unreachable cluster (exit 3); the flags that only make sense with
//! `--cluster` are refused without it. (With a cluster: tests/e2e_cluster.rs.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with no cluster configuration in its environment: no KUBECONFIG, no in-cluster
/// service, HOME a directory of the test's.
fn command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(root())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("PORTCULLIS_KUBECONFIG")
        .env_remove("PORTCULLIS_CONTEXT")
        .env_remove("PORTCULLIS_REPORTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(home: &Path, args: &[&str]) -> Output {
    command(home, args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A kubeconfig for a cluster at `server`, with a token (no TLS material needed to fail).
fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n\
             - name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        ),
    )
    .expect("write a kubeconfig");
    path
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port()
}

#[test]
fn serve_without_cluster_access_says_namespace_selectors_see_names_only() {
    let home = tempfile::tempdir().expect("home");
    // A kubeconfig in ~/.kube is not picked up by the webhook on its own.
    std::fs::create_dir_all(home.path().join(".kube")).expect("mkdir");
    kubeconfig(
        &home.path().join(".kube"),
        &format!("https://127.0.0.1:{}", closed_port()),
    );
    std::fs::rename(
        home.path().join(".kube/kubeconfig"),
        home.path().join(".kube/config"),
    )
    .expect("rename");
    let certs = home.path().join("dev-certs");
    let mut child = command(
        home.path(),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-format",
            "plain",
            "--dev-cert-dir",
            certs.to_str().expect("path"),
        ],
    )
    .spawn()
    .expect("serve starts");
    let err = child.stderr.take().expect("piped");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut found = (false, false);
    for line in BufReader::new(err).lines() {
        let Ok(line) = line else { break };
        found.0 |= line.contains("namespace selectors see namespace names only");
        found.1 |= line.contains("portcullis webhook serving");
        seen.push(line);
        if (found.0 && found.1) || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(found.0 && found.1, "{}", seen.join("\n"));
}

#[test]
fn reports_need_cluster_access_and_a_bad_kubeconfig_stops_serve() {
    let home = tempfile::tempdir().expect("home");
    let out = run(
        home.path(),
        &[
            "serve",
            "--reports",
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--reports (PORTCULLIS_REPORTS) needs cluster access"),
        "{}",
        stderr(&out)
    );
    let missing = home.path().join("missing.kubeconfig");
    let out = run(
        home.path(),
        &[
            "serve",
            "--kubeconfig",
            missing.to_str().expect("path"),
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("kubeconfig"), "{}", stderr(&out));
}

#[test]
fn audit_cluster_without_a_kubeconfig_is_a_usage_error() {
    let home = tempfile::tempdir().expect("home");
    let out = run(home.path(), &["audit", "--cluster"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--cluster needs a kubeconfig"),
        "{}",
        stderr(&out)
    );
    let out = run(home.path(), &["audit", "--cluster", "--context", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--context nowhere needs a kubeconfig"));
}

#[test]
fn audit_cluster_of_an_unreachable_cluster_exits_3() {
    let home = tempfile::tempdir().expect("home");
    let config = kubeconfig(home.path(), &format!("https://127.0.0.1:{}", closed_port()));
    let started = Instant::now();
    let out = run(
        home.path(),
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            config.to_str().expect("path"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: cannot reach the cluster at context c of"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert!(out.stdout.is_empty(), "no report when nothing was audited");
    assert!(started.elapsed() < Duration::from_secs(20));
    // KUBECONFIG works the same.
    let out = command(home.path(), &["audit", "--cluster"])
        .env("KUBECONFIG", &config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn cluster_flags_need_cluster_and_exclude_paths() {
    let home = tempfile::tempdir().expect("home");
    let manifest = root().join("tests/manifests/apps/shop/web.yaml");
    let manifest = manifest.to_str().expect("path");
    let out = run(home.path(), &["audit", "--kubeconfig", "k", manifest]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--cluster"), "{}", stderr(&out));
    let out = run(home.path(), &["audit", "--cluster", manifest]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = run(home.path(), &["audit"]);
    assert_eq!(out.status.code(), Some(2));
    // mutate has no --cluster.
    let out = run(home.path(), &["mutate", "--cluster"]);
    assert_eq!(out.status.code(), Some(2));
}
