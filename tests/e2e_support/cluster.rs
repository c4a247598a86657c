//! The control plane: etcd, kube-apiserver and kube-controller-manager as processes on
//! 127.0.0.1 with certificates made at start, an admin kubeconfig, and a watchdog that kills
//! them if the test process dies without stopping them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::{Assets, Kubectl, free_port, http, wait_for};

/// A process started by the harness, stopped by its PID.
pub struct Proc {
    /// What it is (`etcd`, `kube-apiserver`, `portcullis`).
    pub name: String,
    /// The child process.
    pub child: Child,
    /// Its combined standard output and error.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `command` with its output appended to `log`, registered with the watchdog.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        watchdog: &Watchdog,
    ) -> Result<Proc, String> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(var);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        watchdog.add(child.id());
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal (`TERM`, `KILL`, `STOP`, `CONT`) to this process only.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "warning: kill -{signal} {} ({}) failed",
                self.pid(),
                self.name
            );
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after `grace`; waits for it to exit.
    pub fn stop(&mut self, grace: Duration, watchdog: &Watchdog) {
        if self.running() {
            self.signal("CONT");
            self.signal("TERM");
            let deadline = std::time::Instant::now() + grace;
            while self.running() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.running() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        watchdog.remove(self.pid());
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A `sh` process that kills every registered PID when the test process goes away (its
/// standard input closes), so a killed test run leaves no control plane behind.
pub struct Watchdog {
    child: Mutex<Child>,
    pid_file: PathBuf,
    pids: Mutex<Vec<u32>>,
}

impl Watchdog {
    fn start(dir: &Path, scratch: &Path) -> Result<Watchdog, String> {
        let pid_file = dir.join("pids");
        std::fs::write(&pid_file, "").map_err(|e| e.to_string())?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"while read -r _; do :; done; for p in $(cat "$1"); do kill -KILL "$p" 2>/dev/null; done; rm -rf "$2""#)
            .arg("watchdog")
            .arg(&pid_file)
            .arg(scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        Ok(Watchdog {
            child: Mutex::new(child),
            pid_file,
            pids: Mutex::new(Vec::new()),
        })
    }

    fn write(&self, pids: &[u32]) {
        let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
        let _ = std::fs::write(&self.pid_file, text);
    }

    /// Registers a PID.
    pub fn add(&self, pid: u32) {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        pids.push(pid);
        self.write(&pids);
    }

    /// Forgets a PID (its process was stopped).
    pub fn remove(&self, pid: u32) {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        pids.retain(|p| *p != pid);
        self.write(&pids);
    }

    /// Kills whatever is still registered (a process the run started and did not stop, such
    /// as a Portcullis a panicking case left behind), then ends the watchdog.
    fn finish(&self) {
        let left: Vec<u32> = self.pids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for pid in left {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        self.write(&[]);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

/// A certificate and key, PEM.
#[derive(Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// The private key.
    pub key: String,
}

fn issue(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    org: Option<&str>,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<Pem, String> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    params.distinguished_name = dn;
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, issuer).map_err(|e| e.to_string())?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn kubeconfig_text(server: &str, ca: &str, user: &Pem) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {}\nusers:\n- name: e2e\n  user:\n    client-certificate-data: {}\n    \
         client-key-data: {}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: e2e}}\ncurrent-context: e2e\n",
        b64(ca),
        b64(&user.cert),
        b64(&user.key)
    )
}

/// A running control plane.
pub struct ControlPlane {
    dir: PathBuf,
    /// The apiserver's URL, `https://127.0.0.1:PORT`.
    pub server: String,
    /// The cluster CA (it signed the apiserver's and the clients' certificates).
    pub ca: Pem,
    /// The admin user's client certificate (`O=system:masters`).
    pub admin: Pem,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// kubectl with that kubeconfig.
    pub kubectl: Kubectl,
    /// The watchdog every process of the run is registered with.
    pub watchdog: std::sync::Arc<Watchdog>,
    procs: Mutex<Vec<Proc>>,
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until Pods can be
    /// created (`/readyz` ok, the `default` ServiceAccount of `default` exists).
    pub fn start(assets: &Assets) -> Result<ControlPlane, String> {
        ControlPlane::start_with(assets, &[])
    }

    /// [`ControlPlane::start`] with extra kube-apiserver flags (`--feature-gates=...`,
    /// `--runtime-config=...`).
    pub fn start_with(assets: &Assets, apiserver_args: &[String]) -> Result<ControlPlane, String> {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-e2e-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        // etcd's data directory in memory where possible (fsync dominates its latency); the
        // watchdog removes it if the run is killed.
        let shm = Path::new("/dev/shm");
        let data = tempfile::Builder::new()
            .prefix("portcullis-e2e-etcd-")
            .tempdir_in(if shm.is_dir() { shm } else { dir.as_path() })
            .map_err(|e| e.to_string())?
            .keep();
        std::fs::write(dir.join("etcd-data-dir"), data.display().to_string())
            .map_err(|e| e.to_string())?;
        let watchdog = std::sync::Arc::new(Watchdog::start(&dir, &data)?);
        let d = dir.as_path();
        let write = |name: &str, text: &str| -> Result<PathBuf, String> {
            let p = d.join(name);
            std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };

        // Certificates: one CA, the apiserver's serving certificate, admin and controller-manager
        // client certificates, and the service-account token signing key (ECDSA P-256).
        let ca_key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut ca_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "portcullis-e2e-ca");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| e.to_string())?;
        let ca = Pem {
            cert: ca_cert.pem(),
            key: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);
        let serving = issue(
            &issuer,
            "kube-apiserver",
            None,
            &[
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "10.96.0.1",
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let admin = issue(
            &issuer,
            "e2e-admin",
            Some("system:masters"),
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let kcm = issue(
            &issuer,
            "system:kube-controller-manager",
            None,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let sa = KeyPair::generate().map_err(|e| e.to_string())?;
        let ca_crt = write("ca.crt", &ca.cert)?;
        let ca_key_file = write("ca.key", &ca.key)?;
        let apiserver_crt = write("apiserver.crt", &serving.cert)?;
        let apiserver_key = write("apiserver.key", &serving.key)?;
        let sa_key = write("sa.key", &sa.serialize_pem())?;
        let sa_pub = write("sa.pub", &sa.public_key_pem())?;

        let etcd_client = free_port();
        let etcd_peer = free_port();
        let apiserver_port = free_port();
        let kcm_port = free_port();
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let kubeconfig = write(
            "admin.kubeconfig",
            &kubeconfig_text(&server, &ca.cert, &admin),
        )?;
        let kcm_kubeconfig = write("kcm.kubeconfig", &kubeconfig_text(&server, &ca.cert, &kcm))?;
        let kubectl = Kubectl {
            kubeconfig: kubeconfig.clone(),
            cache_dir: d.join("kubectl-cache"),
        };
        let cp = ControlPlane {
            server: server.clone(),
            ca,
            admin,
            kubeconfig,
            kubectl,
            watchdog,
            procs: Mutex::new(Vec::new()),
            dir,
        };
        let d = cp.dir.as_path();
        let s = |p: &Path| p.display().to_string();

        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let mut etcd = Command::new(&assets.etcd);
        etcd.args(["--name", "e2e", "--data-dir", &s(&data)])
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg(format!("--initial-cluster=e2e={peer_url}"))
            .args(["--log-level", "warn"]);
        cp.spawn("etcd", etcd)?;
        let etcd_addr = format!("127.0.0.1:{etcd_client}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        cp.wait_or_fail("etcd /health", Duration::from_secs(30), || {
            http::get(etcd_addr, "/health")
                .ok()
                .filter(|(code, body)| *code == 200 && body.contains("true"))
                .map(drop)
        })?;

        let mut apiserver = Command::new(&assets.apiserver);
        apiserver
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={apiserver_port}"))
            .arg(format!("--etcd-servers={client_url}"))
            .arg(format!("--client-ca-file={}", s(&ca_crt)))
            .arg(format!("--tls-cert-file={}", s(&apiserver_crt)))
            .arg(format!("--tls-private-key-file={}", s(&apiserver_key)))
            .arg("--authorization-mode=Node,RBAC")
            .arg("--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota,PodSecurity")
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", s(&sa_pub)))
            .arg(format!("--service-account-signing-key-file={}", s(&sa_key)))
            .args(["--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none"])
            .args(["--allow-privileged=true", "--profiling=false"])
            .arg(format!("--cert-dir={}", s(&d.join("apiserver-certs"))))
            .args(apiserver_args);
        cp.spawn("kube-apiserver", apiserver)?;
        cp.wait_or_fail("kube-apiserver /readyz", Duration::from_secs(90), || {
            let out = cp.kubectl.raw("/readyz");
            (out.success && out.stdout.trim() == "ok").then_some(())
        })?;

        let mut kcm_cmd = Command::new(&assets.controller_manager);
        kcm_cmd
            .arg(format!("--kubeconfig={}", s(&kcm_kubeconfig)))
            .arg(format!(
                "--authentication-kubeconfig={}",
                s(&kcm_kubeconfig)
            ))
            .arg(format!("--authorization-kubeconfig={}", s(&kcm_kubeconfig)))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={kcm_port}"))
            .arg("--use-service-account-credentials=true")
            .arg(format!("--service-account-private-key-file={}", s(&sa_key)))
            .arg(format!("--root-ca-file={}", s(&ca_crt)))
            .arg(format!("--cluster-signing-cert-file={}", s(&ca_crt)))
            .arg(format!("--cluster-signing-key-file={}", s(&ca_key_file)))
            .arg("--leader-elect=false")
            .arg(format!("--cert-dir={}", s(&d.join("kcm-certs"))));
        cp.spawn("kube-controller-manager", kcm_cmd)?;
        cp.wait_or_fail(
            "the default ServiceAccount",
            Duration::from_secs(60),
            || {
                cp.kubectl
                    .run(&["get", "serviceaccount", "default", "-n", "default"])
                    .success
                    .then_some(())
            },
        )?;
        Ok(cp)
    }

    fn spawn(&self, name: &str, command: Command) -> Result<(), String> {
        let log = self.dir.as_path().join(format!("{name}.log"));
        let proc = Proc::spawn(name, command, &log, &self.watchdog)?;
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(proc);
        Ok(())
    }

    /// Waits for a start-up condition; on timeout (or a process that died) stops everything
    /// and returns the logs' tails.
    fn wait_or_fail(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Option<()>,
    ) -> Result<(), String> {
        let start = std::time::Instant::now();
        loop {
            if probe().is_some() {
                return Ok(());
            }
            let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
            let dead: Vec<String> = procs
                .iter_mut()
                .filter_map(|p| (!p.running()).then(|| p.name.clone()))
                .collect();
            if !dead.is_empty() || start.elapsed() > timeout {
                let logs: String = procs
                    .iter()
                    .map(|p| {
                        format!(
                            "--- {} ({}):\n{}\n",
                            p.name,
                            p.log.display(),
                            p.log_tail(25)
                        )
                    })
                    .collect();
                drop(procs);
                self.stop(true);
                return Err(format!(
                    "{what}: {}\n{logs}",
                    if dead.is_empty() {
                        format!("not ready after {timeout:?}")
                    } else {
                        format!("{} exited", dead.join(", "))
                    }
                ));
            }
            drop(procs);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The directory holding certificates, kubeconfigs and every process' log.
    pub fn dir(&self) -> &Path {
        self.dir.as_path()
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.as_path().join("ca.crt")
    }

    /// A fresh namespace `e2e-NAME` whose `default` ServiceAccount exists.
    pub fn namespace(&self, name: &str) -> String {
        let ns = format!("e2e-{name}");
        self.kubectl.run(&["create", "namespace", &ns]).ok();
        self.namespace_ready(&ns);
        ns
    }

    /// Waits until namespace `ns` has its `default` ServiceAccount (Pods need it).
    pub fn namespace_ready(&self, ns: &str) {
        wait_for(
            &format!("ServiceAccount default in {ns}"),
            Duration::from_secs(30),
            || {
                self.kubectl
                    .run(&["get", "serviceaccount", "default", "-n", ns])
                    .success
                    .then_some(())
            },
        );
    }

    /// The apiserver's Prometheus metrics.
    pub fn apiserver_metrics(&self) -> String {
        self.kubectl.raw("/metrics").ok()
    }

    /// Stops one of the control plane's processes by name (`kube-controller-manager`): a
    /// benchmark that creates thousands of workloads does not want controllers creating
    /// their ReplicaSets and Pods meanwhile.
    pub fn stop_process(&self, name: &str) {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = procs.iter().position(|p| p.name == name) {
            let mut p = procs.remove(i);
            p.stop(Duration::from_secs(5), &self.watchdog);
        }
    }

    /// The apiserver's port on 127.0.0.1.
    pub fn apiserver_port(&self) -> u16 {
        self.server
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("the apiserver URL has a port")
    }

    /// A kubeconfig file `NAME.kubeconfig` for the ServiceAccount `namespace/account` (a token
    /// from the TokenRequest API, valid for a day), talking to `server` (the apiserver's URL, or
    /// a proxy in front of it): what a Pod of that ServiceAccount would be allowed to do.
    pub fn service_account_kubeconfig(
        &self,
        name: &str,
        namespace: &str,
        account: &str,
        server: &str,
    ) -> PathBuf {
        let token = self
            .kubectl
            .run(&[
                "create",
                "token",
                account,
                "-n",
                namespace,
                "--duration=24h",
            ])
            .ok();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    \
             certificate-authority-data: {}\nusers:\n- name: {account}\n  user:\n    token: {}\n\
             contexts:\n- name: {account}\n  context: {{cluster: e2e, user: {account}, namespace: {namespace}}}\n\
             current-context: {account}\n",
            b64(&self.ca.cert),
            token.trim()
        );
        let path = self.dir.as_path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text).expect("write a kubeconfig");
        path
    }

    /// Stops every process (controller-manager, apiserver, etcd, in that order) and removes
    /// the temporary files, unless `keep` (a case failed: the logs stay for reading).
    pub fn stop(&self, keep: bool) {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut p) = procs.pop() {
            p.stop(Duration::from_secs(5), &self.watchdog);
        }
        self.watchdog.finish();
        if let Ok(data) = std::fs::read_to_string(self.dir.as_path().join("etcd-data-dir")) {
            let _ = std::fs::remove_dir_all(data.trim());
        }
        if keep {
            eprintln!("end-to-end: logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let remaining = !self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if remaining {
            self.stop(true);
        }
    }
}

/// Writes `text` to a new file `name` in `dir` (test fixtures, policies).
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = File::create(&p).expect("create file");
    f.write_all(text.as_bytes()).expect("write file");
    p
}
