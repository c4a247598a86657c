//! End-to-end harness: a real control plane (etcd, kube-apiserver, kube-controller-manager as
//! plain processes on 127.0.0.1) and Portcullis in front of it, started as a user would.
//!
//! A test binary with `harness = false` includes this module (`mod e2e_support;`), lists its
//! cases as [`Case`]s and hands them to [`run_suite`], which
//! - finds the binaries in `$PORTCULLIS_E2E_ASSETS` (`kube-apiserver`, `kube-controller-manager`;
//!   `etcd` there or on `PATH`). Without them the cases are listed as ignored with one line that
//!   says how to run them, and fail, saying why, if made to run (`--include-ignored`,
//!   `--ignored`): a case that did not run never passes. With `CI=true` a missing asset fails
//!   the run. One more trial ([`SELF_TEST`]) checks exactly that on this very binary;
//! - starts one control plane for the whole binary (free loopback ports, a fresh etcd data
//!   directory, certificates made now), the `portcullis` binary Cargo built, serving the
//!   default policies with a certificate from `portcullis certs --ip 127.0.0.1`, and deploy/'s
//!   webhook configurations with only their `clientConfig` changed to its URL;
//! - runs the cases (each in its own namespace; cases that stop or reconfigure the shared
//!   webhook run alone), and stops every process by its PID at the end, also when a case fails
//!   or panics. If the test binary itself is killed, a watchdog process kills them.
#![allow(dead_code)]

pub mod api;
pub mod cluster;
pub mod http;
pub mod kubectl;
pub mod objects;
pub mod portcullis;
pub mod proxy;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use libtest_mimic::Trial;

pub use cluster::ControlPlane;
pub use kubectl::Kubectl;
pub use portcullis::{Portcullis, PortcullisOptions};

/// The repository root.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The environment variable naming the directory of the control plane binaries.
pub const ASSETS_ENV: &str = "PORTCULLIS_E2E_ASSETS";

/// The binaries of the control plane.
#[derive(Debug, Clone)]
pub struct Assets {
    /// `kube-apiserver`.
    pub apiserver: PathBuf,
    /// `kube-controller-manager`.
    pub controller_manager: PathBuf,
    /// `etcd` (from the assets directory, else from `PATH`).
    pub etcd: PathBuf,
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| executable(p))
    })
}

impl Assets {
    /// The assets named by `$PORTCULLIS_E2E_ASSETS`, or what is missing.
    pub fn from_env() -> Result<Assets, String> {
        let dir = std::env::var_os(ASSETS_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| format!("{ASSETS_ENV} is not set"))?;
        let need = |name: &str| {
            let path = dir.join(name);
            if executable(&path) {
                Ok(path)
            } else {
                Err(format!("{} is missing or not executable", path.display()))
            }
        };
        let apiserver = need("kube-apiserver")?;
        let controller_manager = need("kube-controller-manager")?;
        let etcd = need("etcd")
            .ok()
            .or_else(|| on_path("etcd"))
            .ok_or_else(|| {
                format!(
                    "etcd is neither in {} nor on PATH (Debian: apt-get install etcd-server)",
                    dir.display()
                )
            })?;
        Ok(Assets {
            apiserver,
            controller_manager,
            etcd,
        })
    }
}

/// How to get the assets, for the skip line.
pub const HOW_TO_RUN: &str = "PORTCULLIS_E2E_ASSETS=DIR with kube-apiserver and \
     kube-controller-manager (xz -dc ../shared/k8s/NAME.xz > DIR/NAME; chmod +x), etcd on PATH \
     (apt-get install etcd-server); `bash .ci/run` does all of it";

/// Polls `probe` until it returns `Some`, at most `timeout`; panics naming `what` otherwise.
/// For conditions the cluster reaches on its own (a watch to catch up, a controller to act):
/// it never waits a fixed time.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: a test run owns the port it gets, as
/// long as nothing else on the machine races for ephemeral ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Everything a case can use.
pub struct World {
    /// The control plane.
    pub cluster: ControlPlane,
    portcullis: Mutex<Portcullis>,
    lock: RwLock<()>,
    extra: Box<dyn Any + Send + Sync>,
}

impl World {
    /// The shared Portcullis (the default policies, deploy/'s webhook configurations). Cases
    /// that stop, pause or reconfigure it must be [`Case::exclusive`].
    pub fn portcullis(&self) -> MutexGuard<'_, Portcullis> {
        self.portcullis.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// kubectl for the admin user.
    pub fn kubectl(&self) -> &Kubectl {
        &self.cluster.kubectl
    }

    /// A fresh namespace `e2e-NAME` whose `default` ServiceAccount exists (Pods need it).
    pub fn namespace(&self, name: &str) -> String {
        self.cluster.namespace(name)
    }

    /// What the suite's [`SuiteOptions::setup`] returned.
    pub fn extra<T: 'static>(&self) -> &T {
        self.extra
            .downcast_ref()
            .expect("the suite's setup returned this type")
    }
}

/// One end-to-end case.
pub struct Case {
    /// Its name, as `cargo test` filters it.
    pub name: &'static str,
    /// Whether it runs alone: it stops, pauses or reconfigures the shared webhook, reads
    /// counters others would change, or edits its policies.
    pub exclusive: bool,
    /// The case.
    pub run: fn(&World),
    /// What else it needs besides the control plane: `Some(why)` when that is missing (the
    /// case is then listed as ignored, and fails under `CI=true`).
    pub requires: Option<fn() -> Option<String>>,
}

impl Case {
    /// A case that may run beside others.
    pub const fn shared(name: &'static str, run: fn(&World)) -> Case {
        Case {
            name,
            exclusive: false,
            run,
            requires: None,
        }
    }

    /// The case, needing what `missing` checks (`Some(why)` when it is missing).
    pub const fn requires(mut self, missing: fn() -> Option<String>) -> Case {
        self.requires = Some(missing);
        self
    }

    /// A case that runs alone.
    pub const fn exclusive(name: &'static str, run: fn(&World)) -> Case {
        Case {
            name,
            exclusive: true,
            run,
            requires: None,
        }
    }
}

/// Prepares the control plane before the shared Portcullis starts (RBAC, CRDs, a kubeconfig
/// for Portcullis) and may change how it runs; what it returns is [`World::extra`].
pub type Setup = fn(&ControlPlane, &mut PortcullisOptions) -> Box<dyn Any + Send + Sync>;

/// What the suite starts besides the control plane.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// How the shared Portcullis runs.
    pub portcullis: PortcullisOptions,
    /// Runs once the control plane is up, before Portcullis starts.
    pub setup: Option<Setup>,
    /// Extra kube-apiserver flags (feature gates, runtime config).
    pub apiserver_args: Vec<String>,
    /// Start Portcullis without installing deploy/'s webhook configurations (the cases
    /// install what they need).
    pub without_webhooks: bool,
}

/// Runs the cases against one control plane (see the module documentation). Call it from
/// `main` of a `harness = false` test binary.
pub fn run_suite(cases: Vec<Case>, options: SuiteOptions) -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let assets = Assets::from_env();
    let names: Vec<&'static str> = cases.iter().map(|c| c.name).collect();
    let will_run = names.iter().any(|n| {
        let t = not_run(n, String::new());
        !args.is_filtered_out(&t) && !args.is_ignored(&t)
    });
    let self_test = harness_self_test(names.clone());
    let assets = match assets {
        Ok(a) => a,
        Err(why) if ci => {
            eprintln!("error: end-to-end tests cannot run under CI=true: {why}; set {HOW_TO_RUN}");
            return ExitCode::FAILURE;
        }
        Err(why) => {
            println!(
                "SKIPPED end-to-end tests against a real control plane ({why}); to run them set {HOW_TO_RUN}"
            );
            // Ignored, and failing if made to run (`--include-ignored`, `--ignored`): a case that
            // did not run never reports a pass.
            let mut trials: Vec<Trial> = names
                .iter()
                .map(|n| not_run(n, format!("{why}; {NEEDS}")).with_ignored_flag(true))
                .collect();
            trials.push(self_test);
            return libtest_mimic::run(&args, trials).exit_code();
        }
    };
    if !will_run || args.list {
        // The arguments select no case (or only list them): no control plane is started.
        let mut trials: Vec<Trial> = names
            .iter()
            .map(|n| not_run(n, "the control plane was not started".to_owned()))
            .collect();
        trials.push(self_test);
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let started = Instant::now();
    let world = match start_world(&assets, &options) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("error: the end-to-end control plane did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "end-to-end: control plane and Portcullis ready in {:.1} s (logs in {})",
        started.elapsed().as_secs_f64(),
        world.cluster.dir().display()
    );
    let trials = cases
        .into_iter()
        .map(|case| {
            let missing = case.requires.and_then(|f| f());
            if let Some(why) = missing {
                // Never a pass: ignored (its body fails if run anyway), a failure under CI.
                println!("SKIPPED {}: {why}", case.name);
                return libtest_mimic::Trial::test(case.name, move || {
                    Err(format!("not run: {why}").into())
                })
                .with_ignored_flag(!ci);
            }
            let world = Arc::clone(&world);
            Trial::test(case.name, move || {
                let _guard = if case.exclusive {
                    Guard::Exclusive(world.lock.write().unwrap_or_else(|e| e.into_inner()))
                } else {
                    Guard::Shared(world.lock.read().unwrap_or_else(|e| e.into_inner()))
                };
                world.portcullis().heal(&world.cluster);
                (case.run)(&world);
                Ok(())
            })
        })
        .chain([self_test])
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let failed = conclusion.has_failed();
    match Arc::try_unwrap(world) {
        Ok(world) => world.stop(failed),
        Err(_) => eprintln!("warning: a case still holds the cluster; the watchdog stops it"),
    }
    println!(
        "end-to-end: {:.1} s in total",
        started.elapsed().as_secs_f64()
    );
    conclusion.exit_code()
}

/// A trial standing for a case that does not run here: named, filtered and ignored like the
/// case, and failing with `why` if the arguments make it run, so that it can never pass.
fn not_run(name: &'static str, why: String) -> Trial {
    Trial::test(name, move || Err(format!("not run: {why}").into()))
}

/// Why a case cannot run without assets, after what is missing.
const NEEDS: &str = "this case needs a real control plane (docs/development.md)";

/// The name of the trial that checks the harness itself ([`harness_self_test`]).
pub const SELF_TEST: &str = "e2e_harness::cases_that_do_not_run_never_pass";

/// A trial that runs this very test binary without assets and checks that its cases cannot
/// pass without running: a plain run lists every case as ignored with one SKIPPED line and
/// passes; `--include-ignored`, `--ignored` or a filter that selects a case fails, with the
/// reason; under `CI=true` the run fails. Needs no control plane, so it runs with or without.
fn harness_self_test(names: Vec<&'static str>) -> Trial {
    Trial::test(SELF_TEST, move || {
        check_unrun_cases(&names).map_err(|e| format!("the harness: {e}").into())
    })
}

fn check_unrun_cases(names: &[&str]) -> Result<(), String> {
    let cases = names.len();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let run = |flags: &[&str], ci: bool| -> Result<(bool, String), String> {
        let mut command = std::process::Command::new(&exe);
        command
            .args(flags)
            .args(["--skip", SELF_TEST, "--color", "never"])
            .env_remove(ASSETS_ENV)
            .env_remove("CI");
        if ci {
            command.env("CI", "true");
        }
        let out = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text))
    };
    let expect = |flags: &[&str], ci: bool, success: bool, wanted: &[String]| {
        let (passed, text) = run(flags, ci)?;
        let how = format!("{flags:?}{}", if ci { " with CI=true" } else { "" });
        if passed != success {
            return Err(format!(
                "{how} {}, expected it to {}:\n{text}",
                if passed { "passed" } else { "failed" },
                if success { "pass" } else { "fail" }
            ));
        }
        match wanted.iter().find(|w| !text.contains(w.as_str())) {
            Some(w) => Err(format!("{how}: no {w:?} in its output:\n{text}")),
            None => Ok(text),
        }
    };
    let reason = format!("not run: {ASSETS_ENV} is not set; {NEEDS}");
    let plain = expect(
        &[],
        false,
        true,
        &[format!("0 passed; 0 failed; {cases} ignored")],
    )?;
    if plain.matches("SKIPPED end-to-end tests").count() != 1 {
        return Err(format!(
            "a plain run says SKIPPED other than once:\n{plain}"
        ));
    }
    let forced = [reason.clone(), format!("0 passed; {cases} failed")];
    expect(&["--include-ignored"], false, false, &forced)?;
    expect(&["--ignored"], false, false, &forced)?;
    if let Some(first) = names.first() {
        let one = "0 passed; 1 failed".to_owned();
        expect(
            &["--include-ignored", "--exact", first],
            false,
            false,
            &[reason, one],
        )?;
    }
    expect(&[], true, false, &["cannot run under CI=true".to_owned()])?;
    Ok(())
}

enum Guard<'a> {
    Shared(std::sync::RwLockReadGuard<'a, ()>),
    Exclusive(std::sync::RwLockWriteGuard<'a, ()>),
}

fn start_world(assets: &Assets, options: &SuiteOptions) -> Result<World, String> {
    let cluster = ControlPlane::start_with(assets, &options.apiserver_args)?;
    let mut portcullis_options = options.portcullis.clone();
    let extra: Box<dyn Any + Send + Sync> = match options.setup {
        Some(setup) => setup(&cluster, &mut portcullis_options),
        None => Box::new(()),
    };
    let portcullis = match Portcullis::start(&cluster, portcullis_options) {
        Ok(p) => p,
        Err(e) => {
            cluster.stop(true);
            return Err(e);
        }
    };
    if !options.without_webhooks {
        portcullis.install_webhooks(&cluster);
    }
    Ok(World {
        cluster,
        portcullis: Mutex::new(portcullis),
        lock: RwLock::new(()),
        extra,
    })
}

impl World {
    fn stop(self, keep_logs: bool) {
        self.portcullis
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .stop();
        self.cluster.stop(keep_logs);
    }
}
