//! `requireResources` judged on what Kubernetes stores: a limit without a request gets the
//! limit as its request (for Pods, and so for every Pod of a controller).

use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e_support::objects::{container, deployment, pod};
use crate::e2e_support::portcullis::BINARY;
use crate::e2e_support::{Case, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![Case::shared(
        "limits_only_is_judged_as_kubernetes_stores_it",
        limits_only_is_judged_as_kubernetes_stores_it,
    )]
}

fn limits_only() -> Value {
    let mut c = container("app");
    c["resources"] = json!({"limits": {"cpu": "200m", "memory": "128Mi"}});
    c
}

/// Runs `portcullis SUBCOMMAND --policies policies/ -` on `manifests`: (exit code, stdout, stderr).
fn offline(w: &World, subcommand: &str, manifests: &[Value]) -> (i32, String, String) {
    use std::io::Write;
    let policies = w.portcullis().policy_dir();
    let mut child = std::process::Command::new(BINARY)
        .arg(subcommand)
        .arg("--policies")
        .arg(policies)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run portcullis");
    let text: String = manifests.iter().map(|m| format!("{m}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Case 3: containers with limits and no requests pass as a bare Pod and inside a Deployment
/// (whose Pods get requests = limits), and `portcullis audit` and `mutate` agree.
fn limits_only_is_judged_as_kubernetes_stores_it(w: &World) {
    let ns = w.namespace("limits-only");
    let k = w.kubectl();
    let mut bare = pod("bare", limits_only());
    bare["metadata"]["namespace"] = json!(ns);
    let mut app = deployment("web", 2, limits_only());
    app["metadata"]["namespace"] = json!(ns);

    let stored = k.with_object(&["create", "-o", "json"], &bare).json();
    assert_eq!(
        stored["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "200m", "memory": "128Mi"}),
        "the apiserver sets requests from limits"
    );
    k.with_object(&["create"], &app).ok();
    let pods = wait_for("2 Pods of web", Duration::from_secs(60), || {
        let pods = k.list(&ns, "pods", Some("app=web"));
        (pods.len() == 2).then_some(pods)
    });
    for p in pods {
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"]["memory"],
            "128Mi"
        );
    }

    let (code, out, err) = offline(w, "audit", &[bare.clone(), app.clone()]);
    assert_eq!(code, 0, "audit: {out}{err}");
    assert!(
        out.contains("PASS Pod") && out.contains("PASS Deployment"),
        "{out}"
    );
    let (code, _, err) = offline(w, "mutate", &[bare, app]);
    assert_eq!(code, 0, "mutate: {err}");

    // A request without its limit is still missing the limit.
    let mut requests_only = container("app");
    requests_only["resources"] = json!({"requests": {"cpu": "200m", "memory": "128Mi"}});
    let err = k
        .with_object(
            &["create", "-n", &ns],
            &deployment("short", 1, requests_only),
        )
        .err();
    assert!(
        err.contains("no cpu limit") && !err.contains("no cpu request"),
        "{err}"
    );
}
