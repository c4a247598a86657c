//! Operating the webhook under a real apiserver: policy hot reloads (warn mode, a broken set)
//! and certificate renewal and CA rotation with `portcullis certs`, under traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::e2e_support::api::{self, Api};
use crate::e2e_support::objects::{container, deployment, pod};
use crate::e2e_support::portcullis::{apply_webhooks, ca_bundle_of, cli};
use crate::e2e_support::{Case, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive("warn_mode_after_a_hot_reload", warn_mode_after_a_hot_reload),
        Case::exclusive(
            "a_broken_policy_reload_keeps_the_last_good_set",
            a_broken_policy_reload_keeps_the_last_good_set,
        ),
        Case::exclusive(
            "certificate_renewal_and_ca_rotation_under_traffic_lose_nothing",
            certificate_renewal_and_ca_rotation_under_traffic_lose_nothing,
        ),
    ]
}

/// Waits until the policy generation reaches `generation`.
fn wait_generation(w: &World, generation: f64) {
    wait_for(
        &format!("policy generation {generation}"),
        Duration::from_secs(30),
        || (w.portcullis().generation() >= generation).then_some(()),
    );
}

/// A Deployment with resources and no probes.
fn without_probes(name: &str) -> serde_json::Value {
    let mut c = container("app");
    let o = c.as_object_mut().expect("container");
    o.remove("livenessProbe");
    o.remove("readinessProbe");
    deployment(name, 1, c)
}

/// `require-probes` switched to `mode: warn` in the served policy directory: the running
/// webhook reloads it, and the same Deployment that was denied is admitted with kubectl
/// printing the warnings; switched back, it is denied again.
fn warn_mode_after_a_hot_reload(w: &World) {
    let ns = w.namespace("warn-reload");
    let k = w.kubectl();
    let file = w.portcullis().policy_dir().join("require-probes.yaml");
    let enforcing = std::fs::read_to_string(&file).expect("policy");
    let err = k
        .with_object(&["create", "-n", &ns], &without_probes("before"))
        .err();
    assert!(err.contains("[require-probes]"), "{err}");

    let generation = w.portcullis().generation();
    std::fs::write(&file, enforcing.replace("mode: enforce", "mode: warn")).expect("write");
    wait_generation(w, generation + 1.0);
    let warned_before = w.portcullis().metric(
        "portcullis_policy_violations_total",
        &[("policy", "require-probes"), ("effect", "warn")],
    );
    let out = k.with_object(&["create", "-n", &ns], &without_probes("during"));
    let warnings = out.warnings();
    out.ok();
    assert!(
        warnings.iter().any(|w| w.contains(&format!(
            "Deployment {ns}/during: [require-probes] container \"app\": no livenessProbe"
        ))),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("no readinessProbe")),
        "{warnings:?}"
    );
    let warned_after = w.portcullis().metric(
        "portcullis_policy_violations_total",
        &[("policy", "require-probes"), ("effect", "warn")],
    );
    assert_eq!(
        warned_after - warned_before,
        2.0,
        "both findings counted once"
    );

    std::fs::write(&file, &enforcing).expect("restore");
    wait_generation(w, generation + 2.0);
    let err = k
        .with_object(&["create", "-n", &ns], &without_probes("after"))
        .err();
    assert!(err.contains("[require-probes]"), "{err}");
}

/// A policy file that does not validate, dropped into the served directory: the reload fails
/// (counted, logged with file and line), the last good set stays in force, the webhook stays
/// ready; once the file is removed the set reloads.
fn a_broken_policy_reload_keeps_the_last_good_set(w: &World) {
    let ns = w.namespace("broken-reload");
    let k = w.kubectl();
    let dir = w.portcullis().policy_dir();
    let (generation, failures) = {
        let p = w.portcullis();
        (
            p.generation(),
            p.metric("portcullis_policy_reloads_total", &[("result", "failure")]),
        )
    };
    let broken = dir.join("zz-broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: broken}\nspec:\n  mode: enforce\n  rules:\n    - requireProbes: {livenes: true}\n",
    )
    .expect("write");
    wait_for("the failed reload", Duration::from_secs(30), || {
        let p = w.portcullis();
        (p.metric("portcullis_policy_reloads_total", &[("result", "failure")]) > failures)
            .then_some(())
    });
    {
        let p = w.portcullis();
        assert_eq!(p.generation(), generation, "the last good set stays");
        assert!(p.ready(), "still ready");
        let log = p.log();
        assert!(
            log.contains("zz-broken.yaml:7") && log.contains("livenes"),
            "the log names the file and line"
        );
    }
    let err = k
        .with_object(
            &["create", "-n", &ns],
            &deployment("bare", 1, json!({"name": "app", "image": "app:1"})),
        )
        .err();
    assert!(
        err.contains("Portcullis denied Deployment"),
        "still enforcing: {err}"
    );
    k.with_object(
        &["create", "-n", &ns],
        &deployment("ok", 1, container("app")),
    )
    .ok();

    std::fs::remove_file(&broken).expect("remove");
    wait_generation(w, generation + 1.0);
}

/// Renewal (`portcullis certs`: same CA, new serving certificate) and a CA rotation in two
/// steps (`portcullis certs --force`: the caBundle holds both CAs while the webhook switches,
/// then only the new one) while Pods are being created through the apiserver: not one request
/// fails.
fn certificate_renewal_and_ca_rotation_under_traffic_lose_nothing(w: &World) {
    let ns = w.namespace("cert-rotation");
    let stop = Arc::new(AtomicBool::new(false));
    let api = Api::new(&w.cluster);
    let traffic = {
        let (stop, ns) = (Arc::clone(&stop), ns.clone());
        std::thread::spawn(move || {
            let rt = api::runtime();
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let answer =
                    rt.block_on(api.create_pod(&ns, &pod("traffic", container("app")), true));
                statuses.push((answer.status, answer.body["message"].clone()));
            }
            statuses
        })
    };
    let (dir, certs) = {
        let p = w.portcullis();
        (p.dir.clone(), p.certs_dir())
    };
    let tls_reloads = |w: &World| {
        w.portcullis()
            .metric("portcullis_tls_reloads_total", &[("result", "success")])
    };
    let wait_reload = |w: &World, after: f64| {
        wait_for("the certificate reload", Duration::from_secs(30), || {
            (tls_reloads(w) > after).then_some(())
        });
    };
    let served_ca = || std::fs::read_to_string(certs.join("ca.crt")).expect("ca.crt");

    // Renewal: same CA, so the caBundle is unchanged.
    let (reloads, ca) = (tls_reloads(w), served_ca());
    cli(&dir, &["certs", "--out-dir", "certs", "--ip", "127.0.0.1"]);
    wait_reload(w, reloads);
    assert_eq!(served_ca(), ca);

    // Rotation, step 1: a new CA next to the old one in the caBundle. As in a cluster, the
    // apiserver gets the new caBundle before the webhook gets the new certificate (here: the
    // new files are moved in only once the apiserver uses the bundle).
    let staging = dir.join("certs-next");
    std::fs::create_dir_all(&staging).expect("staging");
    for entry in std::fs::read_dir(&certs).expect("certs") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, staging.join(path.file_name().expect("name"))).expect("copy");
    }
    cli(
        &dir,
        &[
            "certs",
            "--out-dir",
            "certs-next",
            "--force",
            "--ip",
            "127.0.0.1",
        ],
    );
    let both = ca_bundle_of(&staging);
    let configs = w.portcullis().webhook_configurations_with(&both);
    apply_webhooks(&w.cluster, &configs);
    let reloads = tls_reloads(w);
    for entry in std::fs::read_dir(&staging).expect("staging") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, certs.join(path.file_name().expect("name"))).expect("move in");
    }
    wait_reload(w, reloads);
    assert_ne!(served_ca(), ca, "a new CA");

    // Step 2: drop the old CA once the webhook serves the new certificate.
    std::fs::remove_file(certs.join("ca-previous.crt")).expect("drop the old CA");
    let reloads = tls_reloads(w);
    cli(&dir, &["certs", "--out-dir", "certs", "--ip", "127.0.0.1"]);
    wait_reload(w, reloads);
    let only_new = w.portcullis().ca_bundle();
    assert_ne!(only_new, both);
    apply_webhooks(&w.cluster, &w.portcullis().webhook_configurations());

    stop.store(true, Ordering::SeqCst);
    let statuses = traffic.join().expect("traffic thread");
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| *s != 201).collect();
    assert!(statuses.len() >= 20, "only {} requests", statuses.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    w.kubectl()
        .with_object(&["create", "-n", &ns], &pod("after", container("app")))
        .ok();
}
