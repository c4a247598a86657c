//! `--max-mode warn` (the audit-first overlay's PORTCULLIS_MAX_MODE): every enforce policy
//! runs as warn, at start-up and after a reload: nothing is denied, nothing is patched, every
//! finding comes back as a warning.

mod server_support;

use portcullis::policy::model::Mode;
use portcullis::server::ReloadOutcome;
use server_support::{Http, Options, fixture, patch_of, post, start, warnings};

#[tokio::test]
async fn max_mode_warn_turns_denials_and_patches_into_warnings() {
    // The same server without the ceiling denies and patches this bare Pod (see
    // server_fixtures.rs); with it, the Pod is admitted untouched and told why.
    let strict = start(Options::default()).await;
    let client = strict.client(Http::Two);
    let (status, denied) = post(
        &client,
        &strict.url("/validate"),
        fixture("validate-create-pod-bare.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let (_, patched) = post(
        &client,
        &strict.url("/mutate"),
        fixture("mutate-create-pod-bare.json"),
    )
    .await;
    assert!(patch_of(&patched).is_some(), "{patched}");
    strict.server.shutdown().await;

    let relaxed = start(Options {
        max_mode: Some(Mode::Warn),
        ..Options::default()
    })
    .await;
    let client = relaxed.client(Http::Two);
    let (status, answer) = post(
        &client,
        &relaxed.url("/validate"),
        fixture("validate-create-pod-bare.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let found = warnings(&answer);
    assert!(
        found.iter().any(|w| w.contains("require-probes")),
        "the probe violation is a warning now: {found:?}"
    );
    let (_, answer) = post(
        &client,
        &relaxed.url("/mutate"),
        fixture("mutate-create-pod-bare.json"),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        patch_of(&answer).is_none(),
        "warn mode never patches: {answer}"
    );
    assert!(
        !warnings(&answer).is_empty(),
        "the mutations it would make are described: {answer}"
    );

    // A reload keeps the ceiling: the reloaded set is relaxed too.
    let extra = relaxed.policy_dir.join("zz-extra.yaml");
    std::fs::write(
        &extra,
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: zz-extra}\n\
         spec:\n  mode: enforce\n  rules: [{requireProbes: {}}]\n",
    )
    .expect("write policy");
    let report = relaxed.server.reloader().check_now();
    assert!(
        matches!(report.policies, ReloadOutcome::Reloaded { .. }),
        "{report:?}"
    );
    let policies = relaxed.server.state().policies();
    let extra = policies.set.get("zz-extra").expect("reloaded policy");
    assert_eq!(extra.mode, Mode::Warn);
    assert!(
        policies
            .set
            .policies
            .iter()
            .all(|p| p.mode != Mode::Enforce)
    );
    relaxed.server.shutdown().await;
}
