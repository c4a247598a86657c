//! `portcullis serve`: run the admission webhook (HTTPS) and its admin port, configured by
//! flags and `PORTCULLIS_*` environment variables; with no flags at all it serves `policies/`
//! with a generated development certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::KubeArgs;
use crate::cluster::connect::{self, Discovery};
use crate::cluster::lease::{self, Leadership, LeaseConfig};
use crate::cluster::native_sync::{self, NativeSync, SyncConfig};
use crate::cluster::reports::{Inputs, Limits, Reports, ReportsConfig, Status};
use crate::native::DEFAULT_EXCLUDED_NAMESPACES;
use crate::policy::model::Mode;
use crate::server::{self, PolicySource, ServerConfig};
use crate::telemetry::{self, LogFormat};

/// Arguments of `portcullis serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Directory of policy files (a ConfigMap volume works: its `..data` symlinks are followed).
    #[arg(long, env = "PORTCULLIS_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    /// HTTPS address of the webhook.
    #[arg(long, env = "PORTCULLIS_ADDR", default_value = server::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Plain-HTTP admin address (/livez, /readyz, /metrics).
    #[arg(long, env = "PORTCULLIS_ADMIN_ADDR", default_value = server::DEFAULT_ADMIN_ADDR)]
    pub admin_addr: SocketAddr,
    /// Serving certificate chain (PEM, leaf first). Give it with --tls-key, or neither to use a
    /// generated development certificate.
    #[arg(long, env = "PORTCULLIS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "PORTCULLIS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Where the development CA and certificate are generated (and reused) when no
    /// --tls-cert/--tls-key is given.
    #[arg(
        long,
        env = "PORTCULLIS_DEV_CERT_DIR",
        default_value = ".portcullis-dev"
    )]
    pub dev_cert_dir: PathBuf,
    /// Require client certificates signed by this CA bundle (PEM).
    #[arg(long, env = "PORTCULLIS_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Seconds between checks of the policy directory and certificate files for new content
    /// (0 disables reloading).
    #[arg(
        long,
        env = "PORTCULLIS_RELOAD_INTERVAL",
        default_value = "5",
        value_name = "SECONDS"
    )]
    pub reload_interval: u64,
    /// Seconds a request may take, body read included; keep it below the webhooks'
    /// timeoutSeconds (2 for mutating, 3 for validating in deploy/).
    #[arg(long, env = "PORTCULLIS_REQUEST_TIMEOUT", default_value = "1.5", value_name = "SECONDS",
          value_parser = parse_seconds)]
    pub request_timeout: Duration,
    /// Seconds shutdown (SIGTERM, Ctrl-C) waits for in-flight requests.
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_GRACE", default_value = "20", value_name = "SECONDS",
          value_parser = parse_seconds)]
    pub shutdown_grace: Duration,
    /// Connections open at once on the webhook port, at most; one beyond is closed at once
    /// (counted in portcullis_connections_refused_total).
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_max_connections)]
    pub max_connections: usize,
    /// Usernames trusted to create controller-owned Pods (comma-separated); replaces the
    /// built-in list of Kubernetes' own controllers.
    #[arg(long, env = "PORTCULLIS_TRUSTED_CONTROLLERS", value_delimiter = ',')]
    pub trusted_controllers: Vec<String>,
    /// The strictest mode any policy runs in: `warn` turns every `enforce` policy into `warn`
    /// (nothing denied, nothing mutated, every finding a warning) for an audit-first rollout;
    /// `audit` silences warnings too. Policies already more lenient keep their mode.
    #[arg(long, env = "PORTCULLIS_MAX_MODE", value_name = "enforce|warn|audit|off",
          default_value = "enforce", value_parser = |s: &str| s.parse::<Mode>())]
    pub max_mode: Mode,
    /// The cluster, for namespace labels: by default the Pod's service account in a cluster,
    /// or $KUBECONFIG; never ~/.kube/config by itself. Without any, namespace selectors see
    /// namespace names only.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Write policy reports of the live workloads: OpenReports `Report`s (one per namespace,
    /// named `portcullis`), kept current in the background by one replica (a Lease). Needs
    /// cluster access and the OpenReports CRDs.
    #[arg(long, env = "PORTCULLIS_REPORTS")]
    pub reports: bool,
    /// Seconds between two judgements of every workload for the reports (besides every
    /// change): exceptions and schedules change verdicts with time.
    #[arg(long, env = "PORTCULLIS_REPORTS_INTERVAL", default_value = "600", value_name = "SECONDS",
          value_parser = parse_seconds)]
    pub reports_interval: Duration,
    /// Results per report at most (`configuration.limits.maxResults`), failures first.
    #[arg(long, env = "PORTCULLIS_REPORTS_MAX_RESULTS", default_value = "50", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reports_max_results: u32,
    /// Which results the reports list (comma-separated: fail, warn, skip, error, pass); the
    /// summary counts all of them.
    #[arg(long, env = "PORTCULLIS_REPORTS_RESULTS", value_delimiter = ',', default_value = "fail,warn",
          value_name = "LIST", value_parser = |s: &str| s.parse::<Status>())]
    pub reports_results: Vec<Status>,
    /// Reports in the cluster at most (one per namespace with results; namespaces with
    /// failures first). Beyond it, namespaces get none (metric
    /// `portcullis_reports_namespaces_over_budget`).
    #[arg(long, env = "PORTCULLIS_REPORTS_BUDGET", default_value = "1000", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reports_budget: u32,
    /// Seconds the Lease that elects the writing replica (reports, native sync) is valid without
    /// renewal (renewed every two thirds of it): a leader that stops without releasing it is
    /// replaced within this time.
    #[arg(long, env = "PORTCULLIS_REPORTS_LEASE_DURATION", default_value = "15", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(3..=300))]
    pub reports_lease_duration: u64,
    /// Keep the native admission policies of `portcullis policy export` (ValidatingAdmissionPolicy,
    /// MutatingAdmissionPolicy where the cluster serves it, and their bindings) applied in the
    /// cluster, by one replica (the Lease); the webhook then leaves to the API server the rules
    /// it has confirmed the cluster enforces as exported. Needs cluster access and the RBAC of
    /// deploy/overlays/native-sync.
    #[arg(long, env = "PORTCULLIS_NATIVE_SYNC")]
    pub native_sync: bool,
    /// Seconds between two comparisons of the exported objects with the cluster's (repairing
    /// drift), besides on every change, reload, schedule step and exception expiry.
    #[arg(long, env = "PORTCULLIS_NATIVE_SYNC_INTERVAL", default_value = "300", value_name = "SECONDS",
          value_parser = parse_seconds)]
    pub native_sync_interval: Duration,
    /// Namespaces no native binding applies to (comma-separated; `""` for none): keep them
    /// those the webhook configurations leave out. There the webhook judges every rule.
    #[arg(long, env = "PORTCULLIS_NATIVE_SYNC_EXCLUDED_NAMESPACES", value_name = "NAMES",
          value_delimiter = ',', default_values_t = DEFAULT_EXCLUDED_NAMESPACES.map(str::to_owned))]
    pub native_sync_excluded_namespaces: Vec<String>,
    /// Log format.
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `portcullis=debug,info`).
    #[arg(long, env = "PORTCULLIS_LOG", default_value = "info")]
    pub log: String,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?}: expected a positive number of seconds"))
}

impl ServeArgs {
    /// The certificate and key given, `None` for neither; an error for only one of them.
    pub fn tls_files(&self) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert.clone(), key.clone()))),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--tls-cert (PORTCULLIS_TLS_CERT) is set but --tls-key (PORTCULLIS_TLS_KEY) is not: \
                 give both, or neither to use a generated development certificate"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key (PORTCULLIS_TLS_KEY) is set but --tls-cert (PORTCULLIS_TLS_CERT) is not: \
                 give both, or neither to use a generated development certificate"
            ),
        }
    }
}

impl ServeArgs {
    /// The Lease that elects the writing replica: this replica's identity and the Lease's
    /// namespace (from the downward API's `POD_NAME` and `POD_NAMESPACE`, else the host name and
    /// process id, and the kubeconfig's namespace).
    pub fn lease_config(&self, cluster: &crate::cluster::Connection) -> LeaseConfig {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let identity = env("POD_NAME").unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "portcullis".to_owned());
            format!("{host}-{}", std::process::id())
        });
        LeaseConfig {
            namespace: env("POD_NAMESPACE").unwrap_or_else(|| cluster.default_namespace.clone()),
            identity,
            duration: Duration::from_secs(self.reports_lease_duration),
        }
    }

    /// How the reports are written.
    pub fn reports_config(&self, lease: LeaseConfig) -> ReportsConfig {
        let mut statuses = self.reports_results.clone();
        statuses.sort();
        statuses.dedup();
        ReportsConfig {
            limits: Limits {
                max_results: self.reports_max_results as usize,
                statuses,
            },
            budget: self.reports_budget as usize,
            interval: self.reports_interval,
            lease,
        }
    }

    /// How the native sync runs.
    pub fn sync_config(&self, lease: LeaseConfig) -> SyncConfig {
        SyncConfig {
            interval: self.native_sync_interval,
            excluded_namespaces: self
                .native_sync_excluded_namespaces
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect(),
            lease,
        }
    }
}

/// Runs `portcullis serve` until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Validate before anything is written or bound.
    let tls_files = args.tls_files()?;
    telemetry::init_tracing(args.log_format, &args.log)?;
    let (tls_cert, tls_key) = match tls_files {
        Some(files) => files,
        None => {
            let dev = crate::certs::ensure_dev_certs(&args.dev_cert_dir).with_context(|| {
                format!(
                    "cannot prepare a development certificate in {}",
                    args.dev_cert_dir.display()
                )
            })?;
            println!(
                "No --tls-cert/--tls-key given: {} the development CA and serving certificate in {}\n\
                 (valid for {}).\n  curl --cacert {} https://localhost:{}/validate ...\n\
                 caBundle for a webhook configuration:\n{}",
                if dev.reused { "reusing" } else { "generated" },
                dev.dir.display(),
                crate::certs::DEV_SERVING_NAMES.join(", "),
                dev.ca_cert.display(),
                args.addr.port(),
                dev.ca_bundle_base64
            );
            (dev.tls_cert, dev.tls_key)
        }
    };
    let trusted_controllers =
        (!args.trusted_controllers.is_empty()).then(|| args.trusted_controllers.clone());
    let config = ServerConfig {
        addr: args.addr,
        admin_addr: args.admin_addr,
        policies: PolicySource {
            dir: args.policies.clone(),
            trusted_controllers,
            max_mode: (args.max_mode != Mode::Enforce).then_some(args.max_mode),
        },
        tls_cert,
        tls_key,
        client_ca: args.client_ca.clone(),
        reload_interval: (args.reload_interval > 0)
            .then(|| Duration::from_secs(args.reload_interval)),
        request_timeout: args.request_timeout,
        shutdown_grace: args.shutdown_grace,
        max_connections: args.max_connections,
        cluster: None,
    };
    let runtime = server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut config = config;
        config.cluster = connect::connect(&args.kube, Discovery::Explicit)
            .await
            .context("cannot configure cluster access")?;
        let writers_on = match (&config.cluster, args.reports, args.native_sync) {
            (None, true, _) => anyhow::bail!(
                "--reports (PORTCULLIS_REPORTS) needs cluster access: run in a Pod with a service \
                 account, or give --kubeconfig (or KUBECONFIG)"
            ),
            (None, _, true) => anyhow::bail!(
                "--native-sync (PORTCULLIS_NATIVE_SYNC) needs cluster access: run in a Pod with a \
                 service account, or give --kubeconfig (or KUBECONFIG)"
            ),
            (Some(cluster), true, _) | (Some(cluster), _, true) => Some(cluster.clone()),
            _ => None,
        };
        let server = server::start(config).await?;
        // One election for every writer: the holder of the Lease writes reports and native
        // policies alike.
        let leadership = writers_on.as_ref().map(|cluster| {
            let lease = args.lease_config(cluster);
            tracing::info!(identity = %lease.identity, lease = lease::LEASE_NAME,
                lease_namespace = %lease.namespace, "joining the election of the writing replica");
            let client = crate::cluster::connect::calls_client(&cluster.config)
                .unwrap_or_else(|| cluster.client.clone());
            (Leadership::start(client, lease.clone()), lease)
        });
        let native = match (&writers_on, &leadership, args.native_sync) {
            (Some(cluster), Some((leadership, lease)), true) => {
                let config = args.sync_config(lease.clone());
                tracing::info!(interval_seconds = config.interval.as_secs(),
                    excluded_namespaces = %config.excluded_namespaces.join(","),
                    "native sync on: the holder of the Lease applies the exported admission policies");
                let state = server.state();
                let inputs = native_sync::Inputs {
                    policies: state.shared_policies(),
                    state: state.native_state(),
                    metrics: state.metrics().native.clone(),
                };
                Some(NativeSync::start(cluster, inputs, config, leadership.subscribe()))
            }
            _ => None,
        };
        let reports = match (writers_on, &leadership, args.reports) {
            (Some(cluster), Some((leadership, lease)), true) => {
                let config = args.reports_config(lease.clone());
                tracing::info!(max_results = config.limits.max_results,
                    budget = config.budget, "policy reports on: the holder of the Lease writes them");
                let state = server.state();
                let inputs = Inputs {
                    policies: state.shared_policies(),
                    namespaces: state.namespace_cache().cloned().context(
                        "the policy reports need the namespace cache, which serving with cluster access starts",
                    )?,
                    metrics: state.metrics().reports.clone(),
                };
                Some(Reports::start(&cluster, inputs, config, leadership.subscribe()))
            }
            _ => None,
        };
        let signal = shutdown_signal().await?;
        tracing::info!(signal, "shutdown requested");
        // The writers stop, then the Lease is released, while in-flight reviews drain;
        // bounded, each of their calls times out anyway.
        let stop_reports = async {
            if let Some(native) = native {
                native.stop().await;
            }
            if let Some(reports) = reports {
                let stopping = tokio::time::timeout(Duration::from_secs(15), reports.stop());
                if stopping.await.is_err() {
                    tracing::warn!("the policy reports did not stop in time");
                }
            }
            if let Some((leadership, _)) = leadership {
                let stopping = tokio::time::timeout(Duration::from_secs(15), leadership.stop());
                if stopping.await.is_err() {
                    tracing::warn!("leaving the leader election did not end in time");
                }
            }
        };
        tokio::join!(stop_reports, server.shutdown());
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// A positive number of connections.
fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits for SIGTERM (what the kubelet sends) or Ctrl-C; returns which.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT").context("cannot listen for Ctrl-C"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn serve(args: &[&str]) -> super::ServeArgs {
        let cli = Cli::try_parse_from([&["portcullis", "serve"], args].concat()).expect("parse");
        match cli.command {
            Command::Serve(a) => *a,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn no_flags_gives_the_documented_defaults() {
        let a = serve(&[]);
        assert_eq!(a.policies.to_str(), Some("policies"));
        assert_eq!(a.addr.port(), 8443);
        assert_eq!(a.admin_addr.port(), 8080);
        assert_eq!(a.request_timeout.as_millis(), 1500);
        assert_eq!(a.reload_interval, 5);
        assert!(a.tls_files().expect("none is fine").is_none());
    }

    #[test]
    fn half_set_tls_is_rejected() {
        let err = serve(&["--tls-cert", "c.pem"])
            .tls_files()
            .expect_err("half");
        assert!(err.to_string().contains("--tls-key"), "{err}");
        let err = serve(&["--tls-key", "k.pem"])
            .tls_files()
            .expect_err("half");
        assert!(err.to_string().contains("--tls-cert"), "{err}");
        assert!(
            serve(&["--tls-cert", "c", "--tls-key", "k"])
                .tls_files()
                .expect("both")
                .is_some()
        );
    }

    #[test]
    fn max_mode_parses_every_mode_and_defaults_to_enforce() {
        assert_eq!(serve(&[]).max_mode, super::Mode::Enforce);
        assert_eq!(serve(&["--max-mode", "warn"]).max_mode, super::Mode::Warn);
        let err = Cli::try_parse_from(["portcullis", "serve", "--max-mode", "lenient"])
            .expect_err("not a mode");
        assert!(
            err.to_string()
                .contains("expected enforce, warn, audit or off"),
            "{err}"
        );
    }

    #[test]
    fn bad_durations_are_rejected() {
        let argv = ["portcullis", "serve", "--request-timeout", "0"];
        assert!(Cli::try_parse_from(argv).is_err());
        let argv = ["portcullis", "serve", "--request-timeout", "soon"];
        assert!(Cli::try_parse_from(argv).is_err());
        assert_eq!(
            serve(&["--request-timeout", "2.5"])
                .request_timeout
                .as_millis(),
            2500
        );
    }
}
