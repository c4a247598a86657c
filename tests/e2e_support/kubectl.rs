//! kubectl against the test cluster, as a user types it, with the output kept for assertions.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one kubectl run printed.
#[derive(Debug, Clone)]
pub struct Out {
    /// The command line, for messages.
    pub command: String,
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error (kubectl's `Warning:` lines and errors).
    pub stderr: String,
}

impl Out {
    /// Standard output; panics with the whole run when kubectl failed.
    #[track_caller]
    pub fn ok(self) -> String {
        assert!(self.success, "`{}` failed:\n{}", self.command, self.stderr);
        self.stdout
    }

    /// Standard error; panics when kubectl succeeded.
    #[track_caller]
    pub fn err(self) -> String {
        assert!(
            !self.success,
            "`{}` succeeded but should have failed:\n{}{}",
            self.command, self.stdout, self.stderr
        );
        self.stderr
    }

    /// Standard output parsed as JSON; panics when kubectl failed.
    #[track_caller]
    pub fn json(self) -> Value {
        let command = self.command.clone();
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("`{command}`: not JSON ({e}): {out}"))
    }

    /// kubectl's `Warning: ...` lines (without the prefix).
    pub fn warnings(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("Warning: "))
            .map(str::to_owned)
            .collect()
    }
}

/// kubectl with the test cluster's admin kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// The kubeconfig.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache (per cluster, not the user's ~/.kube).
    pub cache_dir: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            c.env_remove(var);
        }
        c
    }

    /// Runs `kubectl ARGS`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None)
    }

    /// Runs `kubectl ARGS` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: Option<&str>) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}): the end-to-end tests need kubectl on PATH")
        });
        if let Some(text) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        Out {
            command: format!("kubectl {}", args.join(" ")),
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl ARGS -f -` with `object` (JSON) on standard input: `apply`, `create`,
    /// `replace`, with any flags (`-n`, `--dry-run=server`, `-o json`).
    pub fn with_object(&self, args: &[&str], object: &Value) -> Out {
        let mut all = args.to_vec();
        all.extend(["-f", "-"]);
        self.run_with_stdin(&all, Some(&object.to_string()))
    }

    /// `kubectl get KIND NAME -n NS -o json`, or `None` when it does not exist.
    pub fn get(&self, namespace: &str, kind: &str, name: &str) -> Option<Value> {
        let out = self.run(&["get", kind, name, "-n", namespace, "-o", "json"]);
        if !out.success && out.stderr.contains("NotFound") {
            return None;
        }
        Some(out.json())
    }

    /// The items of `kubectl get KIND -n NS -o json` (optionally with `-l SELECTOR`).
    pub fn list(&self, namespace: &str, kind: &str, selector: Option<&str>) -> Vec<Value> {
        let mut args = vec!["get", kind, "-n", namespace, "-o", "json"];
        if let Some(s) = selector {
            args.extend(["-l", s]);
        }
        match self.run(&args).json()["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        }
    }

    /// `kubectl get --raw PATH` (the apiserver's /metrics, /readyz).
    pub fn raw(&self, path: &str) -> Out {
        self.run(&["get", "--raw", path])
    }
}
