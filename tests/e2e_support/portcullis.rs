//! Portcullis as a user runs it beside the cluster: the binary Cargo built, `portcullis certs`
//! for a certificate valid for 127.0.0.1, `portcullis serve` with a copy of the default
//! policies, and deploy/'s webhook configurations with only `clientConfig` changed to its URL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Value, json};

use super::cluster::Proc;
use super::{ControlPlane, ROOT, free_port, http, wait_for};

/// The portcullis binary Cargo built for this test binary.
pub const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

/// How Portcullis is started, beyond what the harness sets.
#[derive(Debug, Clone, Default)]
pub struct PortcullisOptions {
    /// Extra arguments of `portcullis serve` (`--max-mode warn`, `--kubeconfig ...`).
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Policy files added to the copy of the default policies: (file name, YAML).
    pub policies: Vec<(String, String)>,
    /// Another `portcullis` binary than the one Cargo built (a baseline to compare with).
    pub binary: Option<PathBuf>,
    /// Another policy directory to copy than the repository's `policies/`.
    pub policy_source: Option<PathBuf>,
    /// Start without waiting for `/readyz`: only for `/livez` (cases about readiness).
    pub unready: bool,
}

/// A Portcullis webhook process and its files.
pub struct Portcullis {
    /// Its directory: `policies/`, `certs/` (from `portcullis certs`), `portcullis.log`.
    pub dir: PathBuf,
    /// The HTTPS address.
    pub addr: SocketAddr,
    /// The admin address (health, metrics).
    pub admin: SocketAddr,
    options: PortcullisOptions,
    proc: Option<Proc>,
    paused: bool,
    watchdog: std::sync::Arc<super::cluster::Watchdog>,
}

/// Runs `portcullis ARGS` (not `serve`) in `dir`; panics on failure. Returns stdout.
pub fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run portcullis");
    assert!(
        out.status.success(),
        "portcullis {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Portcullis {
    /// Prepares policies and certificates in a fresh directory of the cluster's, starts
    /// `portcullis serve` and waits for `/readyz`.
    pub fn start(cluster: &ControlPlane, options: PortcullisOptions) -> Result<Portcullis, String> {
        let dir = cluster.dir().join(format!("portcullis-{}", free_port()));
        let policies = dir.join("policies");
        std::fs::create_dir_all(&policies).map_err(|e| e.to_string())?;
        let source = options
            .policy_source
            .clone()
            .unwrap_or_else(|| Path::new(ROOT).join("policies"));
        for entry in std::fs::read_dir(&source).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, policies.join(path.file_name().expect("file name")))
                    .map_err(|e| e.to_string())?;
            }
        }
        for (name, text) in &options.policies {
            std::fs::write(policies.join(name), text).map_err(|e| e.to_string())?;
        }
        cli(&dir, &["certs", "--out-dir", "certs", "--ip", "127.0.0.1"]);
        let mut p = Portcullis {
            addr: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
            admin: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
            dir,
            options,
            proc: None,
            paused: false,
            watchdog: std::sync::Arc::clone(&cluster.watchdog),
        };
        p.spawn(cluster)?;
        Ok(p)
    }

    fn spawn(&mut self, cluster: &ControlPlane) -> Result<(), String> {
        let mut cmd = Command::new(self.options.binary.as_deref().unwrap_or(Path::new(BINARY)));
        cmd.current_dir(&self.dir)
            .arg("serve")
            .args(["--policies", "policies"])
            .args(["--addr", &self.addr.to_string()])
            .args(["--admin-addr", &self.admin.to_string()])
            .args(["--tls-cert", "certs/tls.crt", "--tls-key", "certs/tls.key"])
            .args(["--reload-interval", "1", "--log-format", "json"])
            .args(&self.options.args);
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(
            "portcullis",
            cmd,
            &self.dir.join("portcullis.log"),
            &cluster.watchdog,
        )?;
        self.proc = Some(proc);
        self.paused = false;
        let start = std::time::Instant::now();
        loop {
            if self.ready() || (self.options.unready && self.live()) {
                return Ok(());
            }
            let proc = self.proc.as_mut().expect("started");
            if !proc.running() || start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "portcullis did not become ready:\n{}",
                    proc.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        http::get(self.admin, "/readyz").is_ok_and(|(code, _)| code == 200)
    }

    /// Whether `/livez` answers 200.
    pub fn live(&self) -> bool {
        http::get(self.admin, "/livez").is_ok_and(|(code, _)| code == 200)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// The policy directory it serves (edit it to hot-reload).
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.join("policies")
    }

    /// The certificate directory `portcullis certs` wrote.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// `https://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The caBundle `portcullis certs` computed (its kustomize patch), as deploy/ gets it.
    pub fn ca_bundle(&self) -> String {
        ca_bundle_of(&self.certs_dir())
    }

    /// deploy/base's two webhook configurations (rendered by `kubectl kustomize`), with only
    /// `clientConfig` changed: `url` to this process, `caBundle` from `portcullis certs`.
    pub fn webhook_configurations(&self) -> Vec<Value> {
        self.webhook_configurations_with(&self.ca_bundle())
    }

    /// The same with another caBundle (base64 PEM).
    pub fn webhook_configurations_with(&self, ca_bundle: &str) -> Vec<Value> {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(Path::new(ROOT).join("deploy/base"))
            .output()
            .expect("run kubectl kustomize");
        assert!(
            out.status.success(),
            "kubectl kustomize deploy/base: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut configs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let mut v = Value::deserialize(doc).expect("rendered YAML");
            let kind = v["kind"].as_str().unwrap_or("");
            if !kind.ends_with("WebhookConfiguration") {
                continue;
            }
            for hook in v["webhooks"].as_array_mut().expect("webhooks") {
                let path = hook["clientConfig"]["service"]["path"]
                    .as_str()
                    .expect("service path")
                    .to_owned();
                hook["clientConfig"] = json!({"url": self.url(&path), "caBundle": ca_bundle});
            }
            configs.push(v);
        }
        assert_eq!(
            configs.len(),
            2,
            "deploy/base has two webhook configurations"
        );
        configs
    }

    /// Applies [`Portcullis::webhook_configurations`] and waits until the apiserver calls both
    /// webhooks (a dry-run Pod gets the sidecar; one without probes is denied).
    pub fn install_webhooks(&self, cluster: &ControlPlane) {
        apply_webhooks(cluster, &self.webhook_configurations());
        wait_until_enforced(cluster);
    }

    /// Portcullis' metrics (Prometheus text).
    pub fn metrics(&self) -> String {
        match http::get(self.admin, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics: {other:?}"),
        }
    }

    /// One metric: the sum of the series of `name` with these labels.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        http::metric(&self.metrics(), name, labels)
    }

    /// Reviews answered at `endpoint` (`validate`, `mutate`) for `kind`.
    pub fn reviews(&self, endpoint: &str, kind: &str) -> f64 {
        self.metric(
            "portcullis_admission_requests_total",
            &[("endpoint", endpoint), ("kind", kind)],
        )
    }

    /// The policy generation (1 at start, +1 per successful reload).
    pub fn generation(&self) -> f64 {
        self.metric("portcullis_policy_generation", &[])
    }

    /// Kills it (SIGKILL): the webhook is down, connections are refused.
    pub fn kill(&mut self, cluster: &ControlPlane) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
            cluster.watchdog.remove(p.pid());
        }
    }

    /// Pauses it (SIGSTOP): connections are accepted by the kernel and never answered, the
    /// way a hung webhook behaves.
    pub fn pause(&mut self) {
        if let Some(p) = &self.proc {
            p.signal("STOP");
            self.paused = true;
        }
    }

    /// Resumes a paused process.
    pub fn resume(&mut self) {
        if let Some(p) = &self.proc {
            p.signal("CONT");
            self.paused = false;
        }
    }

    /// Starts it again (same ports, same files) after [`Portcullis::kill`].
    pub fn restart(&mut self, cluster: &ControlPlane) {
        self.kill(cluster);
        self.spawn(cluster).expect("portcullis restarts");
    }

    /// Brings it back to serving whatever a previous case did: resumed, running, ready.
    pub fn heal(&mut self, cluster: &ControlPlane) {
        if self.paused {
            self.resume();
        }
        let running = self.proc.as_mut().is_some_and(Proc::running);
        if !running {
            self.proc = None;
            self.spawn(cluster).expect("portcullis restarts");
        }
        wait_for("portcullis /readyz", Duration::from_secs(30), || {
            self.ready().then_some(())
        });
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        super::cluster::tail(&self.dir.join("portcullis.log"), lines)
    }

    /// Its whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("portcullis.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM, graceful).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(mut p) = self.proc.take() {
            if self.paused {
                p.signal("CONT");
            }
            p.signal("TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while p.running() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
            self.watchdog.remove(p.pid());
        }
    }
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Waits until the webhooks are in force: a dry-run Pod without probes is denied by
/// `validate.portcullis.dev`, and a compliant one gets the log shipper from
/// `mutate.portcullis.dev`. (A new webhook configuration takes a moment to reach the
/// apiserver's admission chain.)
pub fn wait_until_enforced(cluster: &ControlPlane) {
    let ns = "default";
    wait_for("the webhooks to be called", Duration::from_secs(30), || {
        let bare = super::objects::pod("probe-bare", super::objects::bare_container("app"));
        let denied = cluster.kubectl.with_object(
            &["create", "-n", ns, "--dry-run=server", "-o", "json"],
            &bare,
        );
        if denied.success || !denied.stderr.contains("validate.portcullis.dev") {
            return None;
        }
        let pod = super::objects::pod("probe-ok", super::objects::container("app"));
        let out = cluster.kubectl.with_object(
            &["create", "-n", ns, "--dry-run=server", "-o", "json"],
            &pod,
        );
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        super::objects::has_container(&v, "log-shipper").then_some(())
    });
}

static MARKERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Applies webhook configurations and waits until the apiserver's admission chain uses them.
/// The apiserver learns of configurations through a watch, per kind, in order: marker
/// configurations applied after them (a webhook that refuses ConfigMaps carrying a marker
/// label) are in force only once everything before them is.
pub fn apply_webhooks(cluster: &ControlPlane, configs: &[Value]) {
    let n = MARKERS
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        .to_string();
    let marker = |kind: &str, label: &str| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "e2e-marker"},
            "webhooks": [{
                "name": "marker.e2e.portcullis.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 1,
                "clientConfig": {"url": "https://127.0.0.1:1/marker"},
                "objectSelector": {"matchLabels": {label: n}},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["configmaps"], "scope": "Namespaced"}]
            }]
        })
    };
    let mut items = configs.to_vec();
    items.push(marker(
        "MutatingWebhookConfiguration",
        "e2e-marker-mutating",
    ));
    items.push(marker(
        "ValidatingWebhookConfiguration",
        "e2e-marker-validating",
    ));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    cluster.kubectl.with_object(&["apply"], &list).ok();
    for label in ["e2e-marker-mutating", "e2e-marker-validating"] {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "e2e-marker", "labels": {label: n}}});
        wait_for(
            "the apiserver to load the webhook configurations",
            Duration::from_secs(30),
            || {
                let out = cluster.kubectl.with_object(
                    &["create", "-n", "default", "--dry-run=server"],
                    &config_map,
                );
                (!out.success && out.stderr.contains("marker.e2e.portcullis.dev")).then_some(())
            },
        );
    }
}

/// The caBundle in the `webhook-ca-bundle.yaml` that `portcullis certs` wrote into `dir`.
pub fn ca_bundle_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("webhook-ca-bundle.yaml"))
        .expect("certs/webhook-ca-bundle.yaml");
    let doc = serde_yaml_ng::Deserializer::from_str(&text)
        .next()
        .expect("a document");
    let v = Value::deserialize(doc).expect("YAML");
    v["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .expect("caBundle")
        .to_owned()
}

/// Applies deploy/base's Namespace, ServiceAccount and RBAC (rendered by `kubectl kustomize`),
/// so a kubeconfig for the ServiceAccount `portcullis-system/portcullis` can do exactly what
/// the deployed webhook may.
pub fn install_rbac(cluster: &ControlPlane) {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(Path::new(ROOT).join("deploy/base"))
        .output()
        .expect("run kubectl kustomize");
    assert!(out.status.success(), "kubectl kustomize deploy/base");
    let text = String::from_utf8_lossy(&out.stdout);
    let kinds = [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let items: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML"))
        .filter(|v| kinds.contains(&v["kind"].as_str().unwrap_or("")))
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    cluster.kubectl.with_object(&["apply"], &list).ok();
}

/// Applies the OpenReports CRDs from ../shared/k8s/crds/ and waits until they are served.
pub fn install_report_crds(cluster: &ControlPlane) {
    let dir = Path::new(ROOT).join("../shared/k8s/crds");
    let dir = dir.to_str().expect("UTF-8 path");
    cluster.kubectl.run(&["apply", "-f", dir]).ok();
    cluster
        .kubectl
        .run(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/reports.openreports.io",
            "crd/clusterreports.openreports.io",
        ])
        .ok();
}
