//! The default policy set in `policies/`: it loads cleanly, lets compliant workloads through,
//! denies non-compliant ones, and its injected sidecar passes the other defaults.

mod common;

use std::path::Path;

use common::{request_of, review};
use portcullis::engine::{Effect, evaluate};
use portcullis::lint::load_dir;
use portcullis::policy::model::Mode;
use portcullis::policy::{CompiledRule, PolicySet};

fn defaults() -> PolicySet {
    load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .unwrap_or_else(|e| panic!("policies/ must load cleanly:\n{e}"))
}

#[test]
fn the_four_default_policies_are_enforced() {
    let set = defaults();
    for name in [
        "require-probes",
        "require-resources",
        "inject-logging-sidecar",
        "default-labels",
    ] {
        let p = set
            .get(name)
            .unwrap_or_else(|| panic!("{name} is a default"));
        assert_eq!(p.mode, Mode::Enforce, "{name}");
    }
    let sidecar = set
        .get("inject-logging-sidecar")
        .and_then(|p| {
            p.rules.iter().find_map(|r| match r {
                CompiledRule::InjectSidecar(s) => Some(s),
                _ => None,
            })
        })
        .expect("the sidecar rule");
    assert!(sidecar.native_sidecar);
    let image = sidecar.container["image"].as_str().expect("image");
    let tag = image
        .rsplit_once(':')
        .map(|(_, t)| t)
        .expect("pinned by tag");
    assert!(tag != "latest" && !tag.is_empty(), "{image}");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(sidecar.container[probe].is_object(), "{probe}");
    }
    for field in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(
                sidecar.container["resources"][field][r].is_string(),
                "{field}.{r}"
            );
        }
    }
    assert_eq!(sidecar.container["restartPolicy"], "Always");
}

#[test]
fn compliant_workloads_are_allowed() {
    let set = defaults();
    for fixture in [
        "mutate-create-pod-compliant-native-sidecar.json",
        "validate-create-pod-compliant-native-sidecar.json",
    ] {
        let r = review(fixture);
        let d = evaluate(&set, &request_of(&r));
        assert!(d.allowed, "{fixture}: {:?}", d.denial_message());
        assert!(
            d.findings.iter().all(|f| f.effect != Effect::Deny),
            "{fixture}: {:?}",
            d.findings
        );
    }
}

#[test]
fn bare_pods_are_denied() {
    let set = defaults();
    let r = review("validate-create-pod-bare.json");
    let d = evaluate(&set, &request_of(&r));
    assert!(!d.allowed);
    let message = d.denial_message().unwrap_or_default();
    assert!(message.contains("require-probes"), "{message}");
    assert!(message.contains("require-resources"), "{message}");
}

#[test]
fn the_injected_sidecar_passes_the_other_defaults() {
    let set = defaults();
    let r = review("mutate-create-deployment.json");
    let d = evaluate(&set, &request_of(&r));
    assert!(!d.patch.0.is_empty(), "the defaults mutate a Deployment");
    assert!(
        d.findings
            .iter()
            .filter(|f| f.container.as_deref() == Some("log-shipper"))
            .all(|f| f.effect != Effect::Deny),
        "{:?}",
        d.findings
    );
    // Re-evaluating the mutated object yields no further patch (idempotent defaults).
    let mut mutated = r.clone();
    json_patch::patch(&mut mutated["request"]["object"], &d.patch.to_json_patch())
        .expect("patch applies");
    let again = evaluate(&set, &request_of(&mutated));
    assert!(again.patch.0.is_empty(), "{:?}", again.patch);
}
