//! `portcullis audit`: judge manifests offline against the policies; exit 1 on an
//! enforce-mode violation or an unreadable document.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::audit::read::Input;
use crate::audit::report::baseline::Baseline;
use crate::audit::report::{self, Format, ReportWriter, RunContext, Style};
use crate::audit::{self, JudgeOptions, Outcome, Streamed};
use crate::policy::{PolicySet, Timestamp};

/// Where manifests come from and which policies judge them; shared by `audit` and `mutate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestArgs {
    /// Directory of policy files (`*.yaml`, `*.yml`).
    #[arg(long, env = "PORTCULLIS_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    /// Manifest files or directories (walked recursively for *.yaml, *.yml, *.json); `-` reads
    /// standard input.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Like PATH, as kubectl spells it (repeatable), so `kubectl portcullis audit -f app.yaml`
    /// works as a kubectl plugin.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filename: Vec<String>,
    /// Namespace assumed for objects that set none (as `kubectl apply -n` would); with
    /// `--cluster`, the only namespace audited.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Colour: `auto` (on a terminal unless NO_COLOR is set), `always` or `never`.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Judge as at this time instead of now: a date (`2027-01-15`, meaning 00:00 UTC) or an
    /// RFC 3339 time. Decides which exceptions are in force and what scheduled policies do,
    /// e.g. to preview what would be denied once a schedule enforces.
    #[arg(long, value_name = "DATE", value_parser = |s: &str| s.parse::<Timestamp>())]
    pub at: Option<Timestamp>,
}

impl ManifestArgs {
    /// The inputs, `-f` ones first, then positional ones, in command-line order.
    pub fn inputs(&self) -> Vec<Input> {
        self.filename
            .iter()
            .chain(&self.paths)
            .map(|a| Input::parse(a))
            .collect()
    }

    /// The time objects are judged at: `--at`, or now (read once per run).
    pub fn time(&self) -> Timestamp {
        self.at.unwrap_or_else(Timestamp::now)
    }

    /// Loads the policy set; `None` (after printing every diagnostic) when it cannot be loaded.
    /// Lint warnings and exceptions that expire soon, have expired or cannot apply are printed
    /// on stderr.
    pub fn load_policies(&self) -> Option<PolicySet> {
        match crate::lint::load_dir(&self.policies) {
            Ok(set) => {
                for w in &set.warnings {
                    eprintln!("warning: {w}");
                }
                for w in crate::policy::exceptions::review(&set, self.time()) {
                    eprintln!("warning: {w}");
                }
                Some(set)
            }
            Err(e) => {
                eprintln!(
                    "error: cannot load policies from {}:",
                    self.policies.display()
                );
                for d in &e.diagnostics {
                    eprintln!("  {d}");
                }
                None
            }
        }
    }

    /// Reads and judges every input as it is read ([`audit::stream`]): each outcome is made
    /// into a `T` by `render` (on a worker thread) and handed to `sink` in input order; paths
    /// a directory walk skipped (symbolic link loops) are reported on stderr. Fails, having
    /// judged nothing, when standard input cannot be kept for a second reading.
    pub fn judge_streaming<T: Send>(
        &self,
        policies: &PolicySet,
        render: &(dyn Fn(Outcome) -> T + Sync),
        sink: &mut dyn FnMut(T),
    ) -> Result<(), audit::StdinError> {
        let options = JudgeOptions {
            default_namespace: self.namespace.clone(),
            ..JudgeOptions::at(self.time())
        };
        audit::stream(
            &self.inputs(),
            policies,
            &options,
            render,
            &mut |s| match s {
                Streamed::Outcome(t) => sink(t),
                Streamed::Skipped(skipped) => eprintln!("warning: {skipped}"),
            },
        )
    }

    /// Whether to colour standard output.
    pub fn style(&self) -> Style {
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Style { color }
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `--output` of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditOutput {
    /// A readable report grouped by object.
    Text,
    /// The JSON report (schemaVersion 1, see docs/cli.md).
    Json,
    /// One self-contained HTML page: summary, readiness per policy, namespaces, schedules,
    /// exceptions, every finding.
    Html,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// JUnit XML, one test case per workload.
    Junit,
}

/// Arguments of `portcullis audit`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("input").required(true).multiple(true).args(["paths", "filename", "cluster"])
))]
pub struct AuditArgs {
    /// Manifests and policies.
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Judge what runs in the cluster instead of manifests: every workload kind, in all
    /// namespaces (or -n), with the namespaces' labels. Read-only.
    #[arg(long, conflicts_with_all = ["paths", "filename"])]
    pub cluster: bool,
    /// With --cluster: the kubeconfig (default: $KUBECONFIG, then ~/.kube/config, then the
    /// Pod's service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = AuditOutput::Text)]
    pub output: AuditOutput,
    /// With -o html: also group namespaces by the value of this namespace label (e.g. team).
    #[arg(long, value_name = "LABEL")]
    pub group_by: Option<String>,
    /// With -o html: an earlier JSON report (`-o json`) to show what is new and what was fixed
    /// since.
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
    /// Also print the elapsed time and objects per second (to stderr).
    #[arg(long)]
    pub stats: bool,
}

/// Runs `portcullis audit`: exit 0 when nothing is denied, 1 on an enforce-mode violation or an
/// unreadable document (or a kind that could not be listed), 2 on usage errors or unloadable
/// policies, 3 when the cluster cannot be reached ([`EXIT_UNREACHABLE`]).
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    if !args.cluster && (args.kubeconfig.is_some() || args.context.is_some()) {
        eprintln!("error: --kubeconfig and --context apply to --cluster only");
        return Ok(ExitCode::from(2));
    }
    let Some(policies) = args.manifests.load_policies() else {
        return Ok(ExitCode::from(2));
    };
    let started = Instant::now();
    let format = match args.output {
        AuditOutput::Text => Format::Text(args.manifests.style()),
        AuditOutput::Json => Format::Json,
        AuditOutput::Html => Format::Html,
        AuditOutput::Sarif => Format::Sarif,
        AuditOutput::Junit => Format::Junit,
    };
    if format != Format::Html && (args.group_by.is_some() || args.baseline.is_some()) {
        eprintln!("error: --group-by and --baseline apply to -o html only");
        return Ok(ExitCode::from(2));
    }
    let time = args.manifests.time();
    let mut context = RunContext::new(policies.clone(), time);
    context.default_namespace = args.manifests.namespace.clone();
    context.group_by = args.group_by.clone();
    context.policy_source = args.manifests.policies.display().to_string();
    context.scope = if args.cluster {
        "the cluster".to_owned()
    } else {
        args.manifests
            .inputs()
            .iter()
            .map(|i| match i {
                Input::Stdin => "standard input".to_owned(),
                Input::Path(p) => p.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(path) = &args.baseline {
        match Baseline::read(path) {
            Ok(b) => context.baseline = Some(b),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let writer = ReportWriter::for_run(format, Stdout::new(), context)
        .context("writing to standard output")?;
    let mut output = Output {
        writer,
        failed: None,
    };
    // Exceptions in force that no object of the run uses are reported after it.
    output
        .writer
        .check_exceptions(crate::policy::exceptions::unused(&policies, time, |_| {
            false
        }));
    if args.cluster {
        if let Err(code) = cluster::judge(&args, &policies, format, &mut output) {
            return Ok(code);
        }
    } else {
        if let Err(e) = args.manifests.judge_streaming(
            &policies,
            &|outcome| report::piece(format, &outcome),
            &mut |piece| output.push(piece),
        ) {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    }
    let Output { writer, failed } = output;
    if let Some(e) = failed {
        return Err(e).context("writing to standard output");
    }
    if !matches!(format, Format::Text(_)) {
        // The text report prints them; the others list them (JSON: `unusedExceptions`).
        for (_, warning) in writer.unused_exceptions() {
            eprintln!("warning: {warning}");
        }
    }
    let (summary, _) = writer.finish().context("writing to standard output")?;
    let elapsed = started.elapsed();
    if summary.objects == 0 && summary.errors == 0 {
        if args.cluster {
            eprintln!("warning: no workloads found in the cluster");
        } else {
            eprintln!("warning: no Kubernetes objects found in the input");
        }
    }
    if args.stats {
        let secs = elapsed.as_secs_f64();
        let total = summary.objects + summary.errors;
        let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
        eprintln!(
            "stats: {total} documents read, judged and reported in {:.3}s ({rate:.0} objects/s, {} policies)",
            secs,
            policies.policies.len()
        );
    }
    Ok(if summary.fails() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The report being written, and the first error writing it (the run goes on; the error is
/// reported at the end).
pub struct Output {
    /// The report.
    pub writer: ReportWriter<Stdout>,
    /// The first write error.
    pub failed: Option<std::io::Error>,
}

impl Output {
    /// Writes one outcome's part of the report (nothing more after a write error).
    pub fn push(&mut self, piece: report::Piece) {
        if self.failed.is_none()
            && let Err(e) = self.writer.push(piece)
        {
            self.failed = Some(e);
        }
    }
}

/// The exit code of `audit --cluster` when the API server cannot be reached or refuses the
/// credentials: nothing was audited.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Standard output, buffered. A closed pipe (`| head`) ends the output quietly, not the run:
/// the exit code still tells the verdict.
pub struct Stdout {
    out: std::io::BufWriter<std::io::Stdout>,
    closed: bool,
}

impl Stdout {
    /// Buffered standard output.
    pub fn new() -> Stdout {
        Stdout {
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            closed: false,
        }
    }

    fn closed_pipe<T>(&mut self, result: std::io::Result<T>, ok: T) -> std::io::Result<T> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(ok)
            }
            other => other,
        }
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.out.write(buf);
        self.closed_pipe(result, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.out.flush();
        self.closed_pipe(result, ())
    }
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = Stdout::new();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}

/// `audit --cluster`: list what runs, page by page, and judge and report it as file audit
/// does, through the same pipeline ([`audit::judge`], [`report::piece`]).
mod cluster {
    use std::io::{IsTerminal as _, Write as _};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use super::{AuditArgs, EXIT_UNREACHABLE, Output};
    use crate::audit::read::{Entry, Location, Manifest, ReadError};
    use crate::audit::report::{self, Format};
    use crate::audit::{self, JudgeOptions, Outcome};
    use crate::cluster::KubeArgs;
    use crate::cluster::connect::{self, Discovery};
    use crate::cluster::list::{self, Progress};
    use crate::policy::PolicySet;

    /// The `file` of objects read from the cluster, in reports (like `<stdin>`).
    pub const CLUSTER_NAME: &str = "<cluster>";

    fn location() -> Location {
        Location {
            file: CLUSTER_NAME.to_owned(),
            document_index: None,
            item_index: None,
            line: None,
        }
    }

    fn unlisted(message: String) -> Outcome {
        Outcome::Error(ReadError {
            location: location(),
            message,
        })
    }

    /// Lists, judges and writes each outcome's part of the report to `output`; the exit code
    /// when nothing could be audited.
    pub fn judge(
        args: &AuditArgs,
        policies: &PolicySet,
        format: Format,
        output: &mut Output,
    ) -> Result<(), ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                eprintln!("error: cannot start the async runtime: {e}");
                ExitCode::from(2)
            })?;
        runtime.block_on(judge_async(args, policies, format, output))
    }

    async fn judge_async(
        args: &AuditArgs,
        policies: &PolicySet,
        format: Format,
        output: &mut Output,
    ) -> Result<(), ExitCode> {
        let kube = KubeArgs {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        };
        let connection = match connect::connect(&kube, Discovery::Kubectl).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                eprintln!(
                    "error: --cluster needs a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config), \
                     or to run in a Pod with a service account"
                );
                return Err(ExitCode::from(2));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(2));
            }
        };
        let version = match connect::probe(&connection).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(EXIT_UNREACHABLE));
            }
        };
        let namespace = args.manifests.namespace.as_deref();
        let scope = format!(
            "{} of the cluster at {} (Kubernetes {version})",
            namespace.map_or_else(|| "all namespaces".to_owned(), |n| format!("namespace {n}")),
            connection.description
        );
        eprintln!("auditing {scope}");
        output.writer.set_scope(scope);
        let mut options = JudgeOptions::at(args.manifests.time());
        match list::namespace_labels(&connection, namespace).await {
            Ok(labels) => {
                output.writer.add_namespace_labels(&labels);
                options.namespace_labels = labels;
            }
            Err(e) if e.code == Some(404) && namespace.is_some() => {
                eprintln!(
                    "error: namespace {:?} not found in the cluster",
                    namespace.unwrap_or("")
                );
                return Err(ExitCode::from(2));
            }
            // Judged anyway, with namespace names only; reported, so the run fails.
            Err(e) => output.push(report::piece(
                format,
                &unlisted(format!(
                    "{e} (namespace selectors saw namespace names only)"
                )),
            )),
        }
        let mut progress = ProgressLine::new();
        let mut listed = 0usize;
        list::list_workloads(&connection, namespace, |event| match event {
            Progress::Page { objects, .. } => {
                listed += objects.len();
                let entries = objects
                    .into_iter()
                    .map(|object| {
                        Entry::Object(Manifest {
                            location: location(),
                            object,
                        })
                    })
                    .collect();
                for outcome in audit::judge(policies, entries, &options) {
                    output.push(report::piece(format, &outcome));
                }
                progress.show(&format!("listed and judged {listed} objects"));
            }
            Progress::Failed(e) => output.push(report::piece(format, &unlisted(e.to_string()))),
            Progress::Done { resource, count } => {
                progress.show(&format!(
                    "listed and judged {listed} objects ({count} {resource})"
                ));
            }
        })
        .await;
        progress.clear();
        Ok(())
    }

    /// One line on a terminal (stderr), rewritten in place at most ten times a second.
    struct ProgressLine {
        enabled: bool,
        shown: Option<Instant>,
    }

    impl ProgressLine {
        fn new() -> ProgressLine {
            ProgressLine {
                enabled: std::io::stderr().is_terminal(),
                shown: None,
            }
        }

        fn show(&mut self, text: &str) {
            if !self.enabled
                || self
                    .shown
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            {
                return;
            }
            self.shown = Some(Instant::now());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
        }

        fn clear(&mut self) {
            if self.enabled && self.shown.is_some() {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        }
    }
}
