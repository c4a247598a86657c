//! `portcullis serve`: run the admission webhook (HTTPS) and its admin port, configured by
//! flags and `PORTCULLIS_*` environment variables; with no flags at all it serves `policies/`
//! with a generated development certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

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
    /// Seconds a request may take, body read included; keep it below the webhook's
    /// timeoutSeconds.
    #[arg(long, env = "PORTCULLIS_REQUEST_TIMEOUT", default_value = "4", value_name = "SECONDS",
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
    };
    let runtime = server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = server::start(config).await?;
        let signal = shutdown_signal().await?;
        tracing::info!(signal, "shutdown requested");
        server.shutdown().await;
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
        assert_eq!(a.request_timeout.as_secs(), 4);
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
