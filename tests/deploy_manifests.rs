//! deploy/: the kustomize base and every overlay rendered with `kubectl kustomize`, and the
//! safety properties checked on the parsed objects: what reaches the webhook (kinds, groups,
//! operations, excluded namespaces, matchConditions), how it fails (timeouts, failurePolicy),
//! that the Service, port and paths are the ones the server serves, and that the Deployment
//! follows the practices Portcullis enforces — checked with Portcullis' own default policies.

mod deploy_support;

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use deploy_support::{
    AUDIT_FIRST, BASE, CERT_MANAGER, Checkout, DEFAULT, NATIVE_SYNC, ROOT, Rendered, decode,
    write_config_map,
};
use portcullis::audit::{self, JudgeOptions, Outcome, Verdict};
use portcullis::lint;
use portcullis::policy::model::Mode;
use portcullis::policy::{DEFAULT_TRUSTED_CONTROLLERS, PolicySet};
use portcullis::server::{AppState, build_admin_router, build_router};
use serde_json::Value;
use tower::ServiceExt as _;

const NAMESPACE: &str = "portcullis-system";
const EXCLUDED: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "portcullis-system",
];

/// What differs between the installs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tls {
    /// base: no Secret, no caBundle (something else must provide them).
    None,
    /// deploy/ and audit-first: the Secret and caBundle from `portcullis certs`.
    PortcullisCerts,
    /// cert-manager: Certificate + inject-ca-from.
    CertManager,
}

struct Expect {
    tls: Tls,
    mutating_failure: &'static str,
    validating_failure: &'static str,
    max_mode: Option<Mode>,
}

const STRICT: (&str, &str) = ("Ignore", "Fail");

fn expectations() -> Vec<(&'static str, Expect)> {
    vec![
        (
            BASE,
            Expect {
                tls: Tls::None,
                mutating_failure: STRICT.0,
                validating_failure: STRICT.1,
                max_mode: None,
            },
        ),
        (
            DEFAULT,
            Expect {
                tls: Tls::PortcullisCerts,
                mutating_failure: STRICT.0,
                validating_failure: STRICT.1,
                max_mode: None,
            },
        ),
        (
            CERT_MANAGER,
            Expect {
                tls: Tls::CertManager,
                mutating_failure: STRICT.0,
                validating_failure: STRICT.1,
                max_mode: None,
            },
        ),
        (
            AUDIT_FIRST,
            Expect {
                tls: Tls::PortcullisCerts,
                mutating_failure: "Ignore",
                validating_failure: "Ignore",
                max_mode: Some(Mode::Warn),
            },
        ),
        (
            NATIVE_SYNC,
            Expect {
                tls: Tls::PortcullisCerts,
                mutating_failure: STRICT.0,
                validating_failure: STRICT.1,
                max_mode: None,
            },
        ),
    ]
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| str_of(s).to_owned())
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// The container port a probe or Service names (by name or number).
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = str_of(port);
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let wanted = selector.as_object().expect("matchLabels");
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels[k] == *v)
}

#[test]
fn every_install_renders_safely() {
    let checkout = Checkout::with_certs();
    for (dir, expect) in expectations() {
        let rendered = checkout.render(dir);
        check_workload(dir, &rendered);
        check_webhooks(dir, &rendered, &expect);
        check_tls(dir, &rendered, expect.tls, &checkout);
        let max_mode = rendered
            .env("PORTCULLIS_MAX_MODE")
            .map(|m| m.parse::<Mode>().expect("a mode"));
        assert_eq!(max_mode, expect.max_mode, "{dir}: PORTCULLIS_MAX_MODE");
        let sync = rendered.env("PORTCULLIS_NATIVE_SYNC");
        assert_eq!(
            sync.as_deref(),
            (dir == NATIVE_SYNC).then_some("true"),
            "{dir}: PORTCULLIS_NATIVE_SYNC"
        );
    }
}

/// Namespace, ServiceAccount, Deployment, PDB, Service, policies ConfigMap.
fn check_workload(dir: &str, r: &Rendered) {
    let ns = r.one("Namespace");
    assert_eq!(ns["metadata"]["name"], NAMESPACE);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "{dir}"
    );
    for o in &r.objects {
        let kind = str_of(&o["kind"]);
        let cluster_scoped = [
            "Namespace",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ClusterRole",
            "ClusterRoleBinding",
        ];
        if !cluster_scoped.contains(&kind) {
            assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{dir}: {kind}");
        }
    }
    least_privilege(dir, r);

    let deployment = r.one("Deployment");
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    let pod_labels = &spec["template"]["metadata"]["labels"];
    let replicas = spec["replicas"].as_u64().expect("replicas");
    assert!(replicas >= 2, "{dir}: {replicas} replicas");
    assert!(selector_matches(
        &spec["selector"]["matchLabels"],
        pod_labels
    ));
    assert_eq!(
        spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
        "{dir}"
    );

    // The ServiceAccount's token is mounted for Portcullis itself (namespace watch, reports),
    // and for no other Pod that might use the ServiceAccount.
    let sa = r.one("ServiceAccount");
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(pod["automountServiceAccountToken"], true);
    // Reports on, with the Pod's name and namespace for the Lease.
    let env = &pod["containers"][0]["env"];
    let var = |name: &str| {
        env.as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(var("PORTCULLIS_REPORTS")["value"], "true", "{dir}");
    assert_eq!(
        var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    // Spread over nodes and zones (or anti-affinity), selecting these Pods.
    let spread = pod["topologySpreadConstraints"].as_array();
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(spread.is_some() || !anti.is_null(), "{dir}: no spreading");
    for constraint in spread.into_iter().flatten() {
        assert!(selector_matches(
            &constraint["labelSelector"]["matchLabels"],
            pod_labels
        ));
    }
    let keys: BTreeSet<&str> = spread
        .into_iter()
        .flatten()
        .map(|c| str_of(&c["topologyKey"]))
        .collect();
    assert!(keys.contains("kubernetes.io/hostname"), "{keys:?}");

    // Pod and container security: non-root, read-only root, no escalation, no capabilities,
    // seccomp RuntimeDefault.
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{dir}");
    assert_ne!(psc["runAsUser"], 0, "{dir}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{dir}");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{dir}");
    let c = r.container();
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{dir}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{dir}");
    assert_eq!(sc["runAsNonRoot"], true, "{dir}");
    assert_ne!(sc["privileged"], true, "{dir}");
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{dir}");
    assert!(sc["capabilities"]["add"].is_null(), "{dir}");
    assert!(pod["hostNetwork"].is_null() && pod["hostPID"].is_null());

    // Requests and limits for cpu and memory.
    for section in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][section][resource].is_string(),
                "{dir}: resources.{section}.{resource}"
            );
        }
    }

    // The image is pinned.
    let image = str_of(&c["image"]);
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
    assert!(!tag.is_empty() && tag != "latest", "{dir}: image {image}");
    assert_eq!(
        tag,
        env!("CARGO_PKG_VERSION"),
        "{dir}: the image tag follows the crate version"
    );

    // Probes: all on the admin port, on the paths the admin router serves.
    let admin_port = port_of(&r.env("PORTCULLIS_ADMIN_ADDR").expect("admin addr"));
    assert_eq!(
        u64::from(admin_port),
        u64::from(port_of(portcullis::server::DEFAULT_ADMIN_ADDR))
    );
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/livez"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{dir}: {probe}");
        assert_eq!(
            container_port(c, &get["port"]),
            u64::from(admin_port),
            "{dir}: {probe} not on the admin port"
        );
        assert!(get["scheme"].is_null() || get["scheme"] == "HTTP");
        assert_eq!(
            admin_status(path),
            StatusCode::OK,
            "{path} on a ready server"
        );
    }

    // JSON logs; timeouts that fit the webhook's and the Pod's.
    assert_eq!(r.env("PORTCULLIS_LOG_FORMAT").as_deref(), Some("json"));
    let request_timeout: f64 = r
        .env("PORTCULLIS_REQUEST_TIMEOUT")
        .expect("request timeout")
        .parse()
        .expect("seconds");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let timeout = r.webhook(kind)["timeoutSeconds"].as_f64().expect("timeout");
        assert!(
            request_timeout < timeout,
            "{dir}: request timeout {request_timeout} >= {kind} {timeout}"
        );
    }
    let grace: u64 = r
        .env("PORTCULLIS_SHUTDOWN_GRACE")
        .expect("shutdown grace")
        .parse()
        .expect("seconds");
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let termination = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        pre_stop + grace < termination,
        "{dir}: {pre_stop}+{grace} >= {termination}"
    );

    // PodDisruptionBudget over these Pods that still allows one eviction.
    let pdb = r.one("PodDisruptionBudget");
    assert!(selector_matches(
        &pdb["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let min = pdb["spec"]["minAvailable"].as_u64().expect("minAvailable");
    assert!(min >= 1 && min < replicas, "{dir}: minAvailable {min}");

    // Service: selects these Pods, 443 → the HTTPS port the server listens on.
    let service = r.one("Service");
    assert!(selector_matches(&service["spec"]["selector"], pod_labels));
    let ports = service["spec"]["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["port"], 443);
    let https = port_of(&r.env("PORTCULLIS_ADDR").expect("addr"));
    assert_eq!(https, port_of(portcullis::server::DEFAULT_ADDR));
    assert_eq!(container_port(c, &ports[0]["targetPort"]), u64::from(https));

    // Policies: the ConfigMap generated from policies/ is mounted as the policy directory and
    // holds every policy file, loading to the same set.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let mount_of = |volume: &str| {
        c["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == volume)
            .map(|m| str_of(&m["mountPath"]).to_owned())
            .unwrap_or_else(|| panic!("{volume} not mounted"))
    };
    let policies_volume = volumes
        .iter()
        .find(|v| !v["configMap"].is_null())
        .expect("a ConfigMap volume");
    assert_eq!(
        Some(mount_of(str_of(&policies_volume["name"]))),
        r.env("PORTCULLIS_POLICIES")
    );
    let config_map = r
        .named("ConfigMap", str_of(&policies_volume["configMap"]["name"]))
        .expect("the mounted ConfigMap is part of the install");
    let copy = tempfile::tempdir().expect("tempdir");
    write_config_map(config_map, copy.path());
    let mut shipped: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("policies"))
        .expect("policies/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    shipped.sort();
    let in_map: Vec<&String> = config_map["data"]
        .as_object()
        .expect("data")
        .keys()
        .collect();
    assert_eq!(
        in_map,
        shipped.iter().collect::<Vec<_>>(),
        "every policies/*.yaml must be listed in policies/Kustomization"
    );
    let loaded = lint::load_dir(copy.path()).expect("ConfigMap policies load");
    let defaults = lint::load_dir(&Path::new(ROOT).join("policies")).expect("defaults load");
    let names = |s: &PolicySet| {
        s.policies
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&loaded), names(&defaults));

    // The TLS Secret volume is where the certificate env vars point.
    let tls_volume = volumes
        .iter()
        .find(|v| !v["secret"].is_null())
        .expect("a Secret volume");
    // Readable by the owner and the group (fsGroup) only: it holds the private key.
    assert_eq!(
        tls_volume["secret"]["defaultMode"].as_u64(),
        Some(0o440),
        "{dir}"
    );
    let tls_dir = mount_of(str_of(&tls_volume["name"]));
    assert_eq!(
        r.env("PORTCULLIS_TLS_CERT"),
        Some(format!("{tls_dir}/tls.crt"))
    );
    assert_eq!(
        r.env("PORTCULLIS_TLS_KEY"),
        Some(format!("{tls_dir}/tls.key"))
    );
}

/// Both webhook configurations: what reaches them and how they fail.
fn check_webhooks(dir: &str, r: &Rendered, expect: &Expect) {
    let service = r.one("Service");
    let wanted_rules: BTreeSet<(&str, &str)> = [
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ]
    .into_iter()
    .collect();
    for (kind, path, failure) in [
        (
            "MutatingWebhookConfiguration",
            "/mutate",
            expect.mutating_failure,
        ),
        (
            "ValidatingWebhookConfiguration",
            "/validate",
            expect.validating_failure,
        ),
    ] {
        let hook = r.webhook(kind);
        let what = format!("{dir}: {kind}");
        assert_eq!(hook["sideEffects"], "None", "{what}");
        assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"], "{what}");
        let timeout = hook["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!((1..=10).contains(&timeout), "{what}: timeout {timeout}");
        assert_eq!(hook["failurePolicy"], failure, "{what}");
        if kind == "MutatingWebhookConfiguration" {
            assert_eq!(hook["reinvocationPolicy"], "IfNeeded", "{what}");
        }

        // The Service, port and path the server serves.
        let svc = &hook["clientConfig"]["service"];
        assert!(hook["clientConfig"]["url"].is_null(), "{what}");
        assert_eq!(svc["name"], service["metadata"]["name"], "{what}");
        assert_eq!(svc["namespace"], service["metadata"]["namespace"], "{what}");
        assert_eq!(svc["port"], service["spec"]["ports"][0]["port"], "{what}");
        assert_eq!(svc["path"], path, "{what}");
        assert_ne!(
            webhook_status(path),
            StatusCode::NOT_FOUND,
            "{what}: the server does not serve {path}"
        );

        // Never Kubernetes' own namespaces nor ours, by the label the apiserver sets.
        let expressions = hook["namespaceSelector"]["matchExpressions"]
            .as_array()
            .expect("namespaceSelector.matchExpressions");
        assert_eq!(expressions.len(), 1, "{what}");
        let e = &expressions[0];
        assert_eq!(e["key"], "kubernetes.io/metadata.name", "{what}");
        assert_eq!(e["operator"], "NotIn", "{what}");
        let excluded: BTreeSet<String> = strings(&e["values"]).into_iter().collect();
        let want: BTreeSet<String> = EXCLUDED.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(excluded, want, "{what}");
        assert!(hook["namespaceSelector"]["matchLabels"].is_null());
        assert!(hook["objectSelector"].is_null(), "{what}");

        // CREATE and UPDATE of pods and every controller, each in its own API group, v1,
        // namespaced, no subresources, no wildcards.
        let mut covered = BTreeSet::new();
        for rule in hook["rules"].as_array().expect("rules") {
            let mut ops = strings(&rule["operations"]);
            ops.sort();
            assert_eq!(ops, ["CREATE", "UPDATE"], "{what}");
            assert_eq!(strings(&rule["apiVersions"]), ["v1"], "{what}");
            assert_eq!(rule["scope"], "Namespaced", "{what}");
            let groups = strings(&rule["apiGroups"]);
            assert_eq!(groups.len(), 1, "{what}: one group per rule");
            for resource in strings(&rule["resources"]) {
                assert!(!resource.contains('*') && !resource.contains('/'), "{what}");
                let pair = (groups[0].clone(), resource);
                assert!(
                    wanted_rules.contains(&(pair.0.as_str(), pair.1.as_str())),
                    "{what}: unexpected {pair:?}"
                );
                covered.insert(pair);
            }
        }
        let covered: BTreeSet<(&str, &str)> = covered
            .iter()
            .map(|(g, r)| (g.as_str(), r.as_str()))
            .collect();
        assert_eq!(covered, wanted_rules, "{what}");

        // matchConditions: kubelets (mirror Pods) skipped by both; both skip controller-owned
        // objects from exactly the controllers the server trusts, and the garbage collector
        // and updates of objects being deleted.
        let conditions = hook["matchConditions"].as_array().expect("matchConditions");
        let expression = |name: &str| {
            conditions
                .iter()
                .find(|c| c["name"] == name)
                .map(|c| str_of(&c["expression"]).to_owned())
        };
        assert_eq!(
            expression("skip-kubelet-mirror-pods").as_deref(),
            Some("!request.userInfo.username.startsWith('system:node:')"),
            "{what}"
        );
        let condition = "skip-controller-owned-objects";
        let cel = expression(condition).unwrap_or_else(|| panic!("{what}: {condition}"));
        let quoted: Vec<&str> = cel
            .split('\'')
            .skip(1)
            .step_by(2)
            .filter(|s| s.starts_with("system:"))
            .collect();
        assert_eq!(quoted, DEFAULT_TRUSTED_CONTROLLERS, "{what}");
        assert!(cel.contains("r.controller == true"), "{cel}");
        // Controllers' Pods too (a hung webhook must cost them nothing; Pod-level injection
        // is the component deploy/components/pod-injection).
        assert!(!cel.contains("request.kind.kind"), "{cel}");
        let deletion = expression("skip-deletion-and-garbage-collection")
            .unwrap_or_else(|| panic!("{what}: skip-deletion-and-garbage-collection"));
        assert!(
            deletion.contains(portcullis::engine::GARBAGE_COLLECTOR),
            "{deletion}"
        );
        assert!(deletion.contains("deletionTimestamp"), "{deletion}");
    }
    // A hung webhook costs a user's write at most 5 s: both timeouts together.
    let total: u64 = [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ]
    .iter()
    .map(|kind| {
        r.webhook(kind)["timeoutSeconds"]
            .as_u64()
            .expect("timeoutSeconds")
    })
    .sum();
    assert!(total <= 5, "{dir}: timeouts add up to {total} s");
}

/// The Secret and caBundle (or cert-manager's Certificate and annotation).
fn check_tls(dir: &str, r: &Rendered, tls: Tls, checkout: &Checkout) {
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let secret_name = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find_map(|v| v["secret"]["secretName"].as_str())
        .expect("a Secret volume");
    let service = r.one("Service");
    let service_dns = format!(
        "{}.{}.svc",
        str_of(&service["metadata"]["name"]),
        str_of(&service["metadata"]["namespace"])
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = r.one(kind);
        let bundle = &r.webhook(kind)["clientConfig"]["caBundle"];
        let inject = &config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
        match tls {
            Tls::None => assert!(bundle.is_null() && inject.is_null(), "{dir}: {kind}"),
            Tls::PortcullisCerts => {
                let ca = std::fs::read_to_string(checkout.path().join("certs/ca.crt"))
                    .expect("certs/ca.crt");
                assert_eq!(decode(bundle), ca, "{dir}: {kind} caBundle is certs/ca.crt");
                assert!(inject.is_null());
            }
            Tls::CertManager => {
                assert!(bundle.is_null(), "{dir}: cainjector fills the caBundle");
                let (ns, name) = str_of(inject).split_once('/').expect("ns/name");
                let cert = r
                    .named("Certificate", name)
                    .expect("the injected Certificate");
                assert_eq!(cert["metadata"]["namespace"], ns);
                assert_eq!(cert["spec"]["secretName"], secret_name);
                let dns = strings(&cert["spec"]["dnsNames"]);
                assert!(dns.contains(&service_dns), "{dns:?}");
                // The Certificate is signed by a CA Issuer, so the caBundle (the CA) stays
                // the same when the serving certificate renews.
                let issuer = r
                    .named("Issuer", str_of(&cert["spec"]["issuerRef"]["name"]))
                    .expect("issuer");
                assert!(issuer["spec"]["ca"]["secretName"].is_string(), "{issuer}");
            }
        }
    }
    let secret = r.named("Secret", secret_name);
    match tls {
        Tls::PortcullisCerts => {
            let secret = secret.expect("the TLS Secret is part of the install");
            assert_eq!(secret["type"], "kubernetes.io/tls");
            let cert = decode(&secret["data"]["tls.crt"]);
            let info = portcullis::certs::cert_info(&cert, "tls.crt").expect("certificate");
            assert!(info.names.contains(&service_dns), "{:?}", info.names);
            assert!(decode(&secret["data"]["tls.key"]).contains("PRIVATE KEY"));
        }
        Tls::None | Tls::CertManager => assert!(secret.is_none(), "{dir}"),
    }
}

fn status_of(router: axum::Router, method: &str, path: &str) -> StatusCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        router.oneshot(request).await.expect("response").status()
    })
}

/// What the webhook router answers an empty POST on `path` (400: served; 404: not).
fn webhook_status(path: &str) -> StatusCode {
    status_of(
        build_router(AppState::new(PolicySet::default())),
        "POST",
        path,
    )
}

/// What the admin router of a ready server answers on `path`.
fn admin_status(path: &str) -> StatusCode {
    let state = AppState::new(PolicySet::default());
    state.set_tls_bound();
    status_of(build_admin_router(state), "GET", path)
}

#[test]
fn a_fresh_clone_renders_the_base_and_cert_manager_but_deploy_needs_certs_first() {
    let checkout = Checkout::fresh();
    checkout.render(BASE);
    checkout.render(CERT_MANAGER);
    let err = checkout
        .try_render(DEFAULT)
        .expect_err("deploy/ needs `portcullis certs` first");
    assert!(err.contains("certs"), "{err}");
}

#[test]
fn the_deployment_passes_portcullis_default_policies() {
    let checkout = Checkout::with_certs();
    let defaults = lint::load_dir(&Path::new(ROOT).join("policies")).expect("defaults");
    // Judged as if enforced, optional rules included: pinned image, not in default, the CEL
    // pod-security rules. Not those a site fills in: its team label, its registries, the
    // app.kubernetes.io labels its teams must set.
    let strictest = PolicySet {
        policies: defaults
            .policies
            .iter()
            .filter(|p| {
                ![
                    "require-team-label",
                    "cel-allowed-registries",
                    "cel-recommended-labels",
                ]
                .contains(&p.name.as_str())
            })
            .map(|p| {
                let mut p = (**p).clone();
                p.mode = Mode::Enforce;
                std::sync::Arc::new(p)
            })
            .collect(),
        ..defaults.clone()
    };
    for dir in [DEFAULT, CERT_MANAGER, AUDIT_FIRST] {
        let yaml = checkout.render(dir).to_yaml();
        for set in [&defaults, &strictest] {
            let entries = audit::read::read_str(dir, &yaml);
            let outcomes = audit::judge(
                set,
                entries,
                &JudgeOptions::at(portcullis::policy::Timestamp::from_unix(1_767_225_600)),
            );
            let deployment = outcomes
                .iter()
                .find_map(|o| match o {
                    Outcome::Judged(j) if j.kind() == "Deployment" => Some(j),
                    _ => None,
                })
                .expect("the Deployment is judged");
            let violations: Vec<String> = deployment
                .decision
                .violations()
                .map(|f| format!("{}: {}", f.policy, f.message))
                .collect();
            assert!(violations.is_empty(), "{dir}: {violations:?}");
            assert_eq!(deployment.verdict, Verdict::Pass, "{dir}");
            assert!(
                deployment
                    .decision
                    .policies
                    .iter()
                    .any(|p| p == "require-probes"),
                "{dir}: the probe policy selected it"
            );
        }
    }
}

/// Deserializes into the Kubernetes API type and serializes back: a misspelled or misplaced
/// field (which the apiserver would drop or reject) is missing from the round trip.
fn round_trips<T>(object: &Value) -> Result<(), String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back == object {
        Ok(())
    } else {
        Err(format!(
            "fields lost or changed:\nrendered:   {object}\nround trip: {back}"
        ))
    }
}

#[test]
fn every_rendered_object_matches_the_kubernetes_api_types() {
    use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
    use k8s_openapi::api::{
        apps::v1 as apps, core::v1 as core, policy::v1 as policy_v1, rbac::v1 as rbac,
    };
    let checkout = Checkout::with_certs();
    for (dir, _) in expectations() {
        for object in &checkout.render(dir).objects {
            let kind = str_of(&object["kind"]);
            let checked = match kind {
                "Namespace" => round_trips::<core::Namespace>(object),
                "ServiceAccount" => round_trips::<core::ServiceAccount>(object),
                "ConfigMap" => round_trips::<core::ConfigMap>(object),
                "Secret" => round_trips::<core::Secret>(object),
                "Service" => round_trips::<core::Service>(object),
                "Deployment" => round_trips::<apps::Deployment>(object),
                "PodDisruptionBudget" => round_trips::<policy_v1::PodDisruptionBudget>(object),
                "ClusterRole" => round_trips::<rbac::ClusterRole>(object),
                "ClusterRoleBinding" => round_trips::<rbac::ClusterRoleBinding>(object),
                "Role" => round_trips::<rbac::Role>(object),
                "RoleBinding" => round_trips::<rbac::RoleBinding>(object),
                "MutatingWebhookConfiguration" => {
                    round_trips::<admissionregistration::MutatingWebhookConfiguration>(object)
                }
                "ValidatingWebhookConfiguration" => {
                    round_trips::<admissionregistration::ValidatingWebhookConfiguration>(object)
                }
                "Issuer" | "Certificate" if dir == CERT_MANAGER => cert_manager_fields(object),
                other => Err(format!("unexpected kind {other}")),
            };
            if let Err(e) = checked {
                panic!("{dir}: {kind} {}: {e}", object["metadata"]["name"]);
            }
        }
    }
}

/// cert-manager's kinds have no Rust types here: their fields are checked against the
/// cert-manager.io/v1 API reference (a misspelled field would be dropped by its CRD schema).
fn cert_manager_fields(object: &Value) -> Result<(), String> {
    fn only(what: &str, v: &Value, known: &[&str]) -> Result<(), String> {
        let keys = v.as_object().ok_or_else(|| format!("{what}: not a map"))?;
        match keys.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("{what}: unknown field {k}")),
            None => Ok(()),
        }
    }
    if object["apiVersion"] != "cert-manager.io/v1" {
        return Err(format!("apiVersion {}", object["apiVersion"]));
    }
    only("", object, &["apiVersion", "kind", "metadata", "spec"])?;
    let spec = &object["spec"];
    if object["kind"] == "Issuer" {
        only("spec", spec, &["selfSigned", "ca"])?;
        if let Some(ca) = spec.get("ca") {
            only("spec.ca", ca, &["secretName"])?;
        }
        return Ok(());
    }
    only(
        "spec",
        spec,
        &[
            "secretName",
            "duration",
            "renewBefore",
            "commonName",
            "dnsNames",
            "usages",
            "privateKey",
            "issuerRef",
            "isCA",
        ],
    )?;
    only(
        "spec.privateKey",
        &spec["privateKey"],
        &["algorithm", "size", "rotationPolicy", "encoding"],
    )?;
    only(
        "spec.issuerRef",
        &spec["issuerRef"],
        &["name", "kind", "group"],
    )?;
    for usage in spec["usages"].as_array().into_iter().flatten() {
        let known = [
            "server auth",
            "digital signature",
            "key encipherment",
            "cert sign",
        ];
        if !known.contains(&str_of(usage)) {
            return Err(format!("unknown usage {usage}"));
        }
    }
    for field in ["duration", "renewBefore"] {
        let text = spec[field].as_str().unwrap_or("1h");
        if !text.ends_with('h') || text.trim_end_matches('h').parse::<u32>().is_err() {
            return Err(format!("{field}: {text} is not a whole number of hours"));
        }
    }
    Ok(())
}

/// The rules of a (Cluster)Role as `group/resource verb` strings, `resource` suffixed with
/// `[names]` when restricted to some names.
fn grants(role: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| str_of(s).to_owned())
                .collect()
        };
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    let scope = if names.is_empty() {
                        String::new()
                    } else {
                        format!("[{}]", names.join(","))
                    };
                    out.push(format!("{group}/{resource}{scope} {verb}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// Exactly the grants docs/deploying.md and rbac.yaml describe, each bound to Portcullis'
/// ServiceAccount only: the webhook's namespace watch can only list and watch namespaces; the
/// reports read workloads and write only reports; the Lease is the only namespaced grant. No
/// Secrets, no wildcards, nothing that writes a workload.
fn least_privilege(dir: &str, r: &Rendered) {
    let role = |kind: &str, name: &str| -> Value {
        r.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{dir}: no {kind} {name}"))
    };
    assert_eq!(
        grants(&role("ClusterRole", "portcullis-namespaces")),
        ["/namespaces list", "/namespaces watch"],
        "{dir}"
    );
    let reads = |group: &str, resources: &[&str]| -> Vec<String> {
        resources
            .iter()
            .flat_map(|res| ["list", "watch"].map(|v| format!("{group}/{res} {v}")))
            .collect()
    };
    let mut reports: Vec<String> = [
        reads("", &["pods", "replicationcontrollers"]),
        reads(
            "apps",
            &["deployments", "statefulsets", "daemonsets", "replicasets"],
        ),
        reads("batch", &["jobs", "cronjobs"]),
        ["list", "watch", "create", "patch", "delete"]
            .map(|v| format!("openreports.io/reports {v}"))
            .to_vec(),
    ]
    .concat();
    reports.sort();
    assert_eq!(
        grants(&role("ClusterRole", "portcullis-reports")),
        reports,
        "{dir}"
    );
    assert_eq!(
        grants(&role("Role", "portcullis-reports-lease")),
        [
            "coordination.k8s.io/leases create",
            "coordination.k8s.io/leases[portcullis-reports] get",
            "coordination.k8s.io/leases[portcullis-reports] patch",
        ],
        "{dir}"
    );
    // The native sync's role, only where the sync is on: the admission policy objects, nothing
    // else (no wildcard, no webhook configuration).
    let sync = dir == NATIVE_SYNC;
    if sync {
        let verbs = ["get", "list", "watch", "create", "patch", "delete"];
        let mut expected: Vec<String> = [
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
        ]
        .iter()
        .flat_map(|res| verbs.map(|v| format!("admissionregistration.k8s.io/{res} {v}")))
        .collect();
        expected.sort();
        assert_eq!(
            grants(&role("ClusterRole", "portcullis-native-sync")),
            expected,
            "{dir}"
        );
    }
    let expected_roles = if sync { 4 } else { 3 };
    let roles: Vec<&Value> = r
        .objects
        .iter()
        .filter(|o| ["Role", "ClusterRole"].contains(&str_of(&o["kind"])))
        .collect();
    assert_eq!(roles.len(), expected_roles, "{dir}: only the roles above");
    for binding in r
        .objects
        .iter()
        .filter(|o| ["RoleBinding", "ClusterRoleBinding"].contains(&str_of(&o["kind"])))
    {
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "portcullis", "namespace": NAMESPACE}]),
            "{dir}: {}",
            binding["metadata"]["name"]
        );
        let target = str_of(&binding["roleRef"]["name"]);
        assert_eq!(binding["metadata"]["name"], target, "{dir}");
    }
    let bindings = r
        .objects
        .iter()
        .filter(|o| ["RoleBinding", "ClusterRoleBinding"].contains(&str_of(&o["kind"])))
        .count();
    assert_eq!(bindings, expected_roles, "{dir}");
}
