//! `portcullis policy export`: print a policy set as native admission policies
//! (ValidatingAdmissionPolicy, MutatingAdmissionPolicy and their bindings) for GitOps, and say
//! on stderr (and in a comment at the top) what stays with the webhook.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cluster::KubeArgs;
use crate::cluster::connect::{self, Discovery};
use crate::native::{self, DEFAULT_EXCLUDED_NAMESPACES, MutatingVersion};
use crate::policy::Timestamp;

/// `portcullis policy export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A policy directory (every *.yaml / *.yml in it, dot-files skipped) or a single file.
    #[arg(default_value = "policies")]
    pub path: PathBuf,
    /// Export as at this time instead of now (exceptions in force, schedule steps started): a
    /// date (`2027-01-15`, meaning 00:00 UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = |s: &str| s.parse::<Timestamp>())]
    pub at: Option<Timestamp>,
    /// Also export the mutation rules as MutatingAdmissionPolicy of this API version:
    /// v1alpha1 (Kubernetes 1.32-1.33, feature-gated), v1beta1 (1.34-1.35) or v1 (1.36+).
    /// Without it (and without --cluster) the mutation rules stay with the webhook.
    #[arg(long, value_name = "VERSION", value_parser = |s: &str| s.parse::<MutatingVersion>(), conflicts_with = "cluster")]
    pub mutating_api_version: Option<MutatingVersion>,
    /// Ask the cluster (kubeconfig) which MutatingAdmissionPolicy version it serves, and use
    /// the newest one (none served: the mutation rules stay with the webhook).
    #[arg(long)]
    pub cluster: bool,
    /// With --cluster: the kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub context: Option<String>,
    /// Namespaces no binding applies to (comma-separated; `""` for none). Default: those
    /// deploy/'s webhook configurations leave out.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', default_values_t = DEFAULT_EXCLUDED_NAMESPACES.map(str::to_owned))]
    pub excluded_namespaces: Vec<String>,
}

/// Runs `portcullis policy export`: 0 on success, 1 when the policies do not load (as
/// `policy validate` reports them), 3 when --cluster cannot reach the cluster.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let set = match super::load(&args.path) {
        Ok(set) => set,
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{d}");
            }
            eprintln!("error: the policies do not load; nothing exported");
            return Ok(ExitCode::from(1));
        }
    };
    let mutating = if args.cluster {
        match served_mutating_version(&args) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(3));
            }
        }
    } else {
        args.mutating_api_version
    };
    let options = native::Options {
        time: args.at.unwrap_or_else(Timestamp::now),
        mutating,
        excluded_namespaces: args
            .excluded_namespaces
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
    };
    let export = native::export(&set, &options);
    let mut text = header(&args.path, &options, &export);
    text.push_str(&native::to_yaml(&export.objects).context("rendering YAML")?);
    for n in &export.not_exported {
        eprintln!("not exported: {n}");
    }
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The comment at the top of the output: what it is, until when it is right, and what stays
/// with the webhook.
fn header(path: &std::path::Path, options: &native::Options, export: &native::Export) -> String {
    let mut out = format!(
        "# Native admission policies exported by `portcullis policy export` from {}.\n",
        path.display()
    );
    if let Some(t) = export.next_change {
        out.push_str(&format!(
            "# Right until {t} (a schedule step or an exception's expiry): export again then.\n"
        ));
    }
    match options.mutating {
        Some(v) => out.push_str(&format!("# MutatingAdmissionPolicy: {}\n", v.as_str())),
        None => {
            out.push_str("# MutatingAdmissionPolicy: none (mutation rules stay with the webhook)\n")
        }
    }
    if !export.not_exported.is_empty() {
        out.push_str("# Not exported (the webhook keeps them):\n");
        for n in &export.not_exported {
            out.push_str(&format!("# - {n}\n"));
        }
    }
    out
}

/// The newest MutatingAdmissionPolicy version the cluster serves.
fn served_mutating_version(args: &ExportArgs) -> anyhow::Result<Option<MutatingVersion>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let kube = KubeArgs {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        };
        let connection = connect::connect(&kube, Discovery::Kubectl).await?.context(
            "--cluster needs a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)",
        )?;
        crate::cluster::native_sync::served_mutating_version(&connection.client)
            .await
            .with_context(|| {
                format!(
                    "asking {} for MutatingAdmissionPolicy",
                    connection.description
                )
            })
    })
}
