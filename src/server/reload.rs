//! Hot reload by content: the policy directory and the TLS certificate/key are fingerprinted
//! (a hash of the file contents, so Secret and ConfigMap volumes that swap a `..data` symlink
//! are handled like plain edits). A change is loaded and swapped in whole; an invalid new
//! version is logged and counted, and the last good one stays in force.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::state::AppState;
use super::tls::{self, CertStore};
use crate::lint;
use crate::policy::{self, PolicySet};

/// What one reload check did for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The content is the same as last time (or there is nothing to reload).
    Unchanged,
    /// New content loaded and in force; for policies, the new generation.
    Reloaded {
        /// The policy generation now in force (0 for TLS).
        generation: u64,
    },
    /// New content rejected; the previous version stays in force.
    Rejected {
        /// Why.
        error: String,
    },
}

/// What [`Reloader::check_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// The policy directory.
    pub policies: ReloadOutcome,
    /// The serving certificate and key.
    pub tls: ReloadOutcome,
}

/// Where policies come from and how they are loaded.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// The directory (`policies/`, or a ConfigMap mount).
    pub dir: PathBuf,
    /// Trusted controller usernames replacing the built-in list, if configured.
    pub trusted_controllers: Option<Vec<String>>,
    /// The strictest mode any policy runs in (`--max-mode`); `None` keeps every policy's own.
    pub max_mode: Option<crate::policy::model::Mode>,
}

impl PolicySource {
    /// Loads the directory as a policy set (every load: start-up and each reload).
    pub fn load(&self) -> Result<PolicySet, policy::LoadError> {
        let mut set = lint::load_dir(&self.dir)?;
        if let Some(users) = &self.trusted_controllers {
            set = set.with_trusted_controllers(users.clone());
        }
        if let Some(max) = self.max_mode {
            set = set.with_max_mode(max);
        }
        Ok(set)
    }
}

/// The serving certificate files and the store they feed.
#[derive(Debug, Clone)]
pub struct TlsSource {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Where new certificates go.
    pub store: Arc<CertStore>,
}

#[derive(Debug, Default)]
struct Fingerprints {
    policies: Option<u64>,
    tls: Option<u64>,
}

/// Watches the policy directory and the TLS files by content. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    state: AppState,
    policies: PolicySource,
    tls: TlsSource,
    seen: Arc<Mutex<Fingerprints>>,
}

impl Reloader {
    /// A reloader for sources whose current content is already in force (fingerprinted now).
    pub fn new(state: AppState, policies: PolicySource, tls: TlsSource) -> Reloader {
        let seen = Fingerprints {
            policies: Some(fingerprint_policies(&policies.dir)),
            tls: Some(fingerprint_files(&[&tls.cert, &tls.key])),
        };
        Reloader {
            state,
            policies,
            tls,
            seen: Arc::new(Mutex::new(seen)),
        }
    }

    /// Checks both sources once and reloads what changed. Blocking file I/O: call it from a
    /// blocking context (the poll loop uses `spawn_blocking`), or directly in tests.
    pub fn check_now(&self) -> ReloadReport {
        // One check at a time: concurrent checks would race on the fingerprints.
        let mut seen = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        ReloadReport {
            policies: self.check_policies(&mut seen),
            tls: self.check_tls(&mut seen),
        }
    }

    fn check_policies(&self, seen: &mut Fingerprints) -> ReloadOutcome {
        let print = fingerprint_policies(&self.policies.dir);
        if seen.policies == Some(print) {
            return ReloadOutcome::Unchanged;
        }
        // Remember the content even when it is rejected: it is reported once, not every poll.
        seen.policies = Some(print);
        let metrics = self.state.metrics();
        match self.policies.load() {
            Ok(set) => {
                let count = set.policies.len();
                super::log_policy_warnings(&set);
                let generation = self.state.replace_policies(set);
                metrics.record_policy_reload(true);
                tracing::info!(
                    dir = %self.policies.dir.display(),
                    generation,
                    policies = count,
                    "policies reloaded"
                );
                ReloadOutcome::Reloaded { generation }
            }
            Err(e) => {
                metrics.record_policy_reload(false);
                let generation = self.state.policies().generation;
                tracing::error!(
                    dir = %self.policies.dir.display(),
                    error = %e,
                    generation,
                    "policy reload rejected; the previous policy set stays in force"
                );
                ReloadOutcome::Rejected {
                    error: e.to_string(),
                }
            }
        }
    }

    fn check_tls(&self, seen: &mut Fingerprints) -> ReloadOutcome {
        let (cert, key) = (&self.tls.cert, &self.tls.key);
        let read = |p: &Path| std::fs::read(p);
        let (cert_pem, key_pem) = match (read(cert), read(key)) {
            (Ok(c), Ok(k)) => (c, k),
            (c, k) => {
                let print = fingerprint_files(&[cert, key]);
                if seen.tls == Some(print) {
                    return ReloadOutcome::Unchanged;
                }
                seen.tls = Some(print);
                let error = [c.err().map(|e| format!("{}: {e}", cert.display()))]
                    .into_iter()
                    .chain([k.err().map(|e| format!("{}: {e}", key.display()))])
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                return self.tls_rejected(error);
            }
        };
        let print = fingerprint([
            (cert.clone(), Ok(cert_pem.clone())),
            (key.clone(), Ok(key_pem.clone())),
        ]);
        if seen.tls == Some(print) {
            return ReloadOutcome::Unchanged;
        }
        seen.tls = Some(print);
        match tls::load_cert_bytes(cert, &cert_pem, key, &key_pem) {
            Ok(loaded) => {
                self.tls.store.replace(loaded.key);
                let metrics = self.state.metrics();
                metrics.certificate_expiry.set(loaded.not_after_unix);
                metrics.record_tls_reload(true);
                tracing::info!(
                    cert = %cert.display(),
                    not_after_unix = loaded.not_after_unix,
                    "serving certificate reloaded"
                );
                ReloadOutcome::Reloaded { generation: 0 }
            }
            Err(e) => self.tls_rejected(e.to_string()),
        }
    }

    fn tls_rejected(&self, error: String) -> ReloadOutcome {
        self.state.metrics().record_tls_reload(false);
        tracing::error!(
            error = %error,
            "serving certificate reload rejected; the previous certificate stays in force"
        );
        ReloadOutcome::Rejected { error }
    }

    /// Checks every `period` until `shutdown` turns true.
    pub async fn poll(self, period: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // The first tick is immediate; the sources were just loaded.
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let me = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || me.check_now()).await {
                        tracing::error!(error = %e, "reload check failed");
                    }
                }
                _ = super::stop_requested(&mut shutdown) => return,
            }
        }
    }
}

/// The policy files `load_dir` reads: `*.yaml` / `*.yml`, not starting with `.`, symlinks
/// followed (a ConfigMap volume's `foo.yaml -> ..data/foo.yaml`).
fn policy_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
                && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One file's content, or why it could not be read.
type Entry = (PathBuf, Result<Vec<u8>, String>);

fn read_entry(path: &Path) -> Entry {
    (
        path.to_path_buf(),
        std::fs::read(path).map_err(|e| e.kind().to_string()),
    )
}

fn fingerprint_policies(dir: &Path) -> u64 {
    match policy_files(dir) {
        Ok(files) => fingerprint(files.iter().map(|f| read_entry(f))),
        Err(e) => fingerprint([(dir.to_path_buf(), Err(e.kind().to_string()))]),
    }
}

fn fingerprint_files(paths: &[&PathBuf]) -> u64 {
    fingerprint(paths.iter().map(|p| read_entry(p)))
}

/// A hash of (path, content or error) pairs. Not cryptographic: it detects changes to files
/// the operator controls.
fn fingerprint(entries: impl IntoIterator<Item = Entry>) -> u64 {
    let mut h = DefaultHasher::new();
    for entry in entries {
        entry.hash(&mut h);
    }
    h.finish()
}
