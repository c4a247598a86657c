//! Hot reload while serving: policy directories (plain and ConfigMap `..data` symlink layout)
//! and the serving certificate (Secret rotation).

mod server_support;

use std::path::Path;
use std::time::Duration;

use portcullis::certs::CertificateAuthority;
use portcullis::server::ReloadOutcome;
use server_support::{Http, Options, client_for, eventually, fixture, post, serving_cert, start};

async fn deployment_denial(t: &server_support::TestServer) -> String {
    let (status, answer) = post(
        &t.client(Http::Two),
        &t.url("/validate"),
        fixture("validate-create-deployment.json"),
    )
    .await;
    assert_eq!(status, 200);
    answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn valid_policy_change_is_a_new_generation_invalid_one_keeps_the_last_good_set() {
    let t = start(Options::default()).await;
    let reloader = t.server.reloader();
    let unchanged = reloader.check_now();
    assert_eq!(unchanged.policies, ReloadOutcome::Unchanged);
    assert_eq!(unchanged.tls, ReloadOutcome::Unchanged);
    assert!(deployment_denial(&t).await.contains("[require-probes]"));

    std::fs::remove_file(t.policy_dir.join("probes.yaml")).expect("remove");
    assert_eq!(
        reloader.check_now().policies,
        ReloadOutcome::Reloaded { generation: 2 }
    );
    assert_eq!(t.server.state().policies().generation, 2);
    let msg = deployment_denial(&t).await;
    assert!(
        !msg.contains("[require-probes]") && msg.contains("[require-resources]"),
        "{msg}"
    );

    // A broken file: rejected, counted, reported once, and generation 2 stays in force.
    std::fs::write(t.policy_dir.join("broken.yaml"), "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: x}\nspec: {mode: sometimes, rules: []}\n").expect("write");
    let report = reloader.check_now();
    let ReloadOutcome::Rejected { error } = report.policies else {
        panic!("{report:?}")
    };
    assert!(error.contains("broken.yaml"), "{error}");
    assert_eq!(
        reloader.check_now().policies,
        ReloadOutcome::Unchanged,
        "reported once"
    );
    assert_eq!(t.server.state().policies().generation, 2);
    let msg = deployment_denial(&t).await;
    assert!(
        !msg.contains("[require-probes]") && msg.contains("[require-resources]"),
        "{msg}"
    );
    let m = t.metrics().await;
    assert!(
        m.contains(r#"portcullis_policy_reloads_total{result="failure"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"portcullis_policy_reloads_total{result="success"} 1"#),
        "{m}"
    );
    assert!(m.contains("portcullis_policy_generation 2"), "{m}");

    // Fixing the file reloads again.
    std::fs::remove_file(t.policy_dir.join("broken.yaml")).expect("remove");
    assert_eq!(
        reloader.check_now().policies,
        ReloadOutcome::Reloaded { generation: 3 }
    );
    t.server.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn configmap_volume_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;
    let volume = tempfile::tempdir().expect("tempdir");
    let dir = volume.path();
    let fixtures = Path::new(server_support::POLICY_FIXTURES);
    // The layout the kubelet writes: timestamped data dir, `..data` symlink to it, and one
    // symlink per key through `..data`.
    let first = dir.join("..2026_01_01_00_00_00.1");
    std::fs::create_dir(&first).expect("mkdir");
    std::fs::copy(fixtures.join("probes.yaml"), first.join("probes.yaml")).expect("copy");
    symlink("..2026_01_01_00_00_00.1", dir.join("..data")).expect("..data");
    symlink("..data/probes.yaml", dir.join("probes.yaml")).expect("key link");

    let t = start(Options {
        policy_dir: Some(dir.to_path_buf()),
        ..Options::default()
    })
    .await;
    assert_eq!(t.server.state().policies().set.policies.len(), 1);
    let msg = deployment_denial(&t).await;
    assert!(
        msg.contains("[require-probes]") && !msg.contains("[require-resources]"),
        "{msg}"
    );

    // ConfigMap update: new data dir, `..data` swapped atomically (rename of a temporary
    // symlink), new key linked, old data dir removed.
    let second = dir.join("..2026_01_01_00_05_00.2");
    std::fs::create_dir(&second).expect("mkdir");
    std::fs::copy(
        fixtures.join("resources.yaml"),
        second.join("resources.yaml"),
    )
    .expect("copy");
    symlink("..2026_01_01_00_05_00.2", dir.join("..data_tmp")).expect("tmp link");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    symlink("..data/resources.yaml", dir.join("resources.yaml")).expect("key link");
    std::fs::remove_file(dir.join("probes.yaml")).expect("old key link");
    std::fs::remove_dir_all(&first).expect("old data");

    let report = t.server.reloader().check_now();
    assert_eq!(report.policies, ReloadOutcome::Reloaded { generation: 2 });
    let names: Vec<String> = t
        .server
        .state()
        .policies()
        .set
        .policies
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names, ["require-resources"]);
    let msg = deployment_denial(&t).await;
    assert!(
        !msg.contains("[require-probes]") && msg.contains("[require-resources]"),
        "{msg}"
    );

    // A swap that changes only the content behind the same names is seen too.
    let third = dir.join("..2026_01_01_00_10_00.3");
    std::fs::create_dir(&third).expect("mkdir");
    std::fs::write(
        third.join("resources.yaml"),
        std::fs::read_to_string(fixtures.join("resources.yaml"))
            .expect("read")
            .replace("mode: enforce", "mode: warn"),
    )
    .expect("write");
    symlink("..2026_01_01_00_10_00.3", dir.join("..data_tmp")).expect("tmp link");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    assert_eq!(
        t.server.reloader().check_now().policies,
        ReloadOutcome::Reloaded { generation: 3 }
    );
    let (_, answer) = post(
        &t.client(Http::One),
        &t.url("/validate"),
        fixture("validate-create-deployment.json"),
    )
    .await;
    assert_eq!(
        answer["response"]["allowed"], true,
        "warn mode now: {answer}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn the_poll_loop_reloads_without_being_asked() {
    let t = start(Options {
        reload_interval: Some(Duration::from_millis(20)),
        ..Options::default()
    })
    .await;
    std::fs::remove_file(t.policy_dir.join("images.yaml")).expect("remove");
    let state = t.server.state().clone();
    assert!(
        eventually(Duration::from_secs(10), || state.policies().generation == 2).await,
        "the poller did not pick up the change"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn certificate_rotation_reaches_new_handshakes() {
    let t = start(Options::default()).await;
    let addr = t.server.addr();
    let old_ca = t.ca.pem().cert_pem.clone();
    let old_client = client_for(&old_ca, addr, Http::One, None);
    let (status, _) = post(
        &old_client,
        &t.url("/validate"),
        fixture("validate-create-pod-bare.json"),
    )
    .await;
    assert_eq!(status, 200);

    // cert-manager rotates the Secret: a new CA and certificate.
    let new_ca =
        CertificateAuthority::generate("rotated CA", Duration::from_secs(3600)).expect("CA");
    let leaf = new_ca
        .issue_serving_cert(&["localhost".to_owned()], Duration::from_secs(7200))
        .expect("leaf");
    std::fs::write(&t.cert_path, &leaf.cert_pem).expect("cert");
    std::fs::write(&t.key_path, &leaf.key_pem).expect("key");
    assert_eq!(
        t.server.reloader().check_now().tls,
        ReloadOutcome::Reloaded { generation: 0 }
    );

    for http in [Http::One, Http::Two] {
        let new_client = client_for(&new_ca.pem().cert_pem, addr, http, None);
        let (status, _) = post(
            &new_client,
            &t.url("/validate"),
            fixture("validate-create-pod-bare.json"),
        )
        .await;
        assert_eq!(status, 200, "new handshakes get the new certificate");
        let stale = client_for(&old_ca, addr, http, None);
        let err = stale.post(t.url("/validate")).body("{}").send().await;
        assert!(
            err.is_err(),
            "a client trusting only the old CA must fail the handshake"
        );
    }
    let m = t.metrics().await;
    let expiry = portcullis::certs::expiry_unix_seconds(&leaf.cert_pem).expect("expiry");
    assert!(
        m.contains(&format!(
            "portcullis_tls_certificate_expiry_timestamp_seconds {expiry}"
        )),
        "{m}"
    );

    // A half-written rotation (key of another certificate) is rejected; the current one stays.
    let other = serving_cert(&new_ca);
    std::fs::write(&t.key_path, &other.key_pem).expect("mismatched key");
    let report = t.server.reloader().check_now();
    assert!(
        matches!(report.tls, ReloadOutcome::Rejected { .. }),
        "{report:?}"
    );
    let new_client = client_for(&new_ca.pem().cert_pem, addr, Http::Two, None);
    let (status, _) = post(
        &new_client,
        &t.url("/validate"),
        fixture("validate-create-pod-bare.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        t.metrics()
            .await
            .contains(r#"portcullis_tls_reloads_total{result="failure"} 1"#)
    );
    t.server.shutdown().await;
}
