//! Connecting to a cluster: which configuration to use (a kubeconfig and one of its contexts,
//! or the Pod's service account), and a kube client made from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// How to reach the cluster, as the command line says (`serve`'s flags; `audit --cluster`
/// has its own, without environment variables).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig for cluster access (namespace labels, reports). Without it: $KUBECONFIG (a
    /// list of files, merged as kubectl does), else the Pod's service account in a cluster;
    /// ~/.kube/config is never used by itself.
    #[arg(long, env = "PORTCULLIS_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, env = "PORTCULLIS_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
}

/// Where configuration is looked for when no `--kubeconfig` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// kubectl's order: `$KUBECONFIG`, `~/.kube/config`, then in-cluster (`audit --cluster`).
    Kubectl,
    /// Only what is explicit about this process: `$KUBECONFIG`, then in-cluster. The webhook
    /// never picks up `~/.kube/config` by itself, so running it on a workstation never starts
    /// watching whichever cluster kubectl happens to point at.
    Explicit,
}

/// A client and what it talks to.
#[derive(Clone)]
pub struct Connection {
    /// The kube client.
    pub client: kube::Client,
    /// Its configuration (for another client on another runtime).
    pub config: Config,
    /// How it was configured, for messages: `context kind-dev of ~/.kube/config
    /// (https://127.0.0.1:6443)` or `in-cluster service account (https://10.96.0.1:443)`.
    pub description: String,
    /// The configuration's default namespace (the context's, or the Pod's).
    pub default_namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Why no client could be made from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A kubeconfig that cannot be read, parsed, or lacks the context asked for.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file(s).
        path: String,
        /// What is wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// In a Pod, but its service account configuration is unusable.
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    /// `--context` without any kubeconfig.
    #[error("--context {0} needs a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)")]
    ContextWithoutKubeconfig(String),
    /// The configuration does not make a client (TLS material, say).
    #[error("cannot make a Kubernetes client from {what}: {source}")]
    Client {
        /// The configuration.
        what: String,
        /// What failed.
        #[source]
        source: kube::Error,
    },
}

/// Whether this process runs in a Pod with a service account token.
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty())
        && Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
}

fn home_kubeconfig() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".kube").join("config")).filter(|p| p.is_file())
}

/// Finds the configuration (see [`Discovery`]) and makes a client: `None` when there is none
/// at all (no kubeconfig, not in a Pod). Makes no request.
pub async fn connect(
    args: &KubeArgs,
    discovery: Discovery,
) -> Result<Option<Connection>, ConnectError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kubeconfig_env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let (kubeconfig, path) = if let Some(path) = &args.kubeconfig {
        let read = Kubeconfig::read_from(path);
        (Some(read), path.display().to_string())
    } else if let Some(list) = &kubeconfig_env {
        (
            Some(Kubeconfig::read()),
            list.to_string_lossy().into_owned(),
        )
    } else if let Some(home) = home_kubeconfig().filter(|_| discovery == Discovery::Kubectl) {
        (
            Some(Kubeconfig::read_from(&home)),
            home.display().to_string(),
        )
    } else {
        (None, String::new())
    };
    let (config, description) = match kubeconfig {
        Some(read) => {
            let failed = |source| ConnectError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let kubeconfig = read.map_err(failed)?;
            let context = options
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_default();
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(failed)?;
            let description = format!("context {context} of {path} ({})", config.cluster_url);
            (config, description)
        }
        None if args.context.is_some() => {
            return Err(ConnectError::ContextWithoutKubeconfig(
                args.context.clone().unwrap_or_default(),
            ));
        }
        None if in_cluster() => {
            let config = Config::incluster().map_err(ConnectError::InCluster)?;
            let description = format!("in-cluster service account ({})", config.cluster_url);
            (config, description)
        }
        None => return Ok(None),
    };
    client(config, description).map(Some)
}

/// A client for `config`, with a connect timeout that fails fast on an unreachable address.
pub fn client(mut config: Config, description: String) -> Result<Connection, ConnectError> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config.clone()).map_err(|source| ConnectError::Client {
        what: description.clone(),
        source,
    })?;
    Ok(Connection {
        client,
        config,
        description,
        default_namespace,
    })
}

/// How long a TCP connection to the API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the API server could not be reached at all (`audit --cluster` exits 3).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the cluster at {description}: {reason}")]
pub struct Unreachable {
    /// The connection's description.
    pub description: String,
    /// What failed, in words.
    pub reason: String,
}

/// Asks the API server for its version: proves it is reachable and accepts our credentials.
pub async fn probe(connection: &Connection) -> Result<String, Unreachable> {
    match connection.client.apiserver_version().await {
        Ok(info) => Ok(info.git_version),
        Err(e) => Err(Unreachable {
            description: connection.description.clone(),
            reason: describe_error(&e),
        }),
    }
}

/// A kube error in words a user can act on (the source chain, deduplicated).
pub fn describe_error(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        let code = status.code;
        let reason = &status.reason;
        let message = &status.message;
        return match code {
            401 => format!("401 Unauthorized: the credentials were refused ({message})"),
            _ => format!("{code} {reason}: {message}"),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// How long one single API call of a background writer (reports, native sync, the Lease) may
/// take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for single calls (no watches) that time out after [`CALL_TIMEOUT`]; `None`
/// (logged) if it cannot be made. Needs a tokio runtime.
pub fn calls_client(config: &Config) -> Option<kube::Client> {
    let mut config = config.clone();
    config.read_timeout = Some(CALL_TIMEOUT);
    match kube::Client::try_from(config) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "cannot make an API client with timeouts");
            None
        }
    }
}
