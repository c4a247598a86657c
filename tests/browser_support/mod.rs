//! A real browser for tests, benchmarks and the README's screenshot: headless Chromium
//! (Debian's `chromium`) driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by a NUL byte, commands on the browser's
//! file descriptor 3, answers and events on 4), so no port, no websocket and no client crate:
//! a command is one JSON object written, its answer the message with the same `id`.
//!
//! Chromium runs with a new empty profile and without its own background connections
//! (update checks, sync, safe browsing), so every network request a page makes is the page's.
#![allow(dead_code)]

pub mod report;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one command may take before the browser is taken to be stuck.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary: `chromium` (Debian), else `chromium-browser`, on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Why the browser tests cannot run, if they cannot: for the skip line (or, under `CI=true`,
/// the failure).
pub fn unavailable() -> Option<String> {
    match find_chromium() {
        Some(_) => None,
        None => Some(
            "chromium is not on PATH (Debian: apt-get install chromium; `bash .ci/run` installs it)"
                .to_owned(),
        ),
    }
}

/// One headless Chromium.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    /// Events received while waiting for answers, in order.
    pub events: Vec<Value>,
    profile: tempfile::TempDir,
    log: PathBuf,
}

/// A page (a target the browser is attached to, in flat mode: commands carry its session).
#[derive(Debug, Clone)]
pub struct Page {
    /// The DevTools session of the page.
    pub session: String,
}

impl Browser {
    /// Starts Chromium with a new empty profile; its output goes to a log file in the profile.
    pub fn start() -> Result<Browser, String> {
        let chromium = find_chromium().ok_or("chromium is not on PATH")?;
        let profile = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let log = profile.path().join("chromium.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        // The shell gives Chromium the pipe ends on fds 3 (commands) and 4 (answers).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>&2")
            .arg(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let answers = child.stdout.take().ok_or("no stdout")?;
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                let Ok(v) = serde_json::from_slice::<Value>(&buf) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Ok(Browser {
            child,
            commands,
            messages,
            next_id: 0,
            events: Vec::new(),
            profile,
            log,
        })
    }

    /// Sends a command (to `session`, or the browser) and waits for its answer's `result`.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .and_then(|()| self.commands.flush())
            .map_err(|e| format!("{method}: cannot write to chromium: {e}{}", self.log_tail()))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.messages.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{method}: no answer from chromium in {TIMEOUT:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{method}: chromium ended{}", self.log_tail()));
                }
            };
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = m.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(m.get("result").cloned().unwrap_or(Value::Null));
            }
            self.events.push(m);
        }
    }

    /// Waits until an event named `method` arrives (or was received already since `from`,
    /// an index into [`Browser::events`]).
    pub fn wait_event(&mut self, method: &str, from: usize) -> Result<Value, String> {
        if let Some(e) = self.events[from.min(self.events.len())..]
            .iter()
            .find(|e| e["method"] == method)
        {
            return Ok(e.clone());
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => {
                    let found = m["method"] == method;
                    self.events.push(m.clone());
                    if found {
                        return Ok(m);
                    }
                }
                Err(_) => return Err(format!("no {method} event from chromium in {TIMEOUT:?}")),
            }
        }
    }

    /// Opens a new page (1400 × 900 CSS pixels) with the network, runtime, log and page
    /// domains on, so that their events are recorded; scripts off when `javascript` is false.
    pub fn page(&mut self, javascript: bool) -> Result<Page, String> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        let s = Some(session.as_str());
        for domain in [
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
        ] {
            self.call(s, domain, json!({}))?;
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        if !javascript {
            self.call(
                s,
                "Emulation.setScriptExecutionDisabled",
                json!({"value": true}),
            )?;
        }
        Ok(Page { session })
    }

    /// Navigates `page` to a file and waits for its load event.
    pub fn open(&mut self, page: &Page, file: &Path) -> Result<String, String> {
        let url = file_url(file)?;
        let from = self.events.len();
        let nav = self.call(Some(&page.session), "Page.navigate", json!({"url": url}))?;
        if let Some(e) = nav.get("errorText") {
            return Err(format!("navigating to {url}: {e}"));
        }
        loop {
            let e = self.wait_event("Page.loadEventFired", from)?;
            if e["sessionId"] == page.session.as_str() {
                return Ok(url);
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value (as JSON).
    pub fn eval(&mut self, page: &Page, expression: &str) -> Result<Value, String> {
        let r = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// A PNG of the page: the viewport, or the whole page when `full` (at most `max_height`
    /// CSS pixels of it).
    pub fn screenshot(
        &mut self,
        page: &Page,
        full: bool,
        max_height: f64,
    ) -> Result<Vec<u8>, String> {
        let mut params = json!({"format": "png"});
        // Sections a browser renders only when scrolled to (`content-visibility: auto`) are
        // rendered for the picture, from the top.
        self.eval(
            page,
            "document.querySelectorAll('section.ns').forEach(s => s.style.contentVisibility = 'visible'); window.scrollTo(0, 0)",
        )?;
        if full {
            let metrics = self.call(Some(&page.session), "Page.getLayoutMetrics", json!({}))?;
            let size = &metrics["cssContentSize"];
            let width = size["width"].as_f64().unwrap_or(1400.0);
            let height = size["height"].as_f64().unwrap_or(900.0).min(max_height);
            params["captureBeyondViewport"] = json!(true);
            params["clip"] = json!({"x": 0, "y": 0, "width": width, "height": height, "scale": 1});
        }
        let shot = self.call(Some(&page.session), "Page.captureScreenshot", params)?;
        let data = shot["data"].as_str().ok_or("no screenshot data")?;
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot: {e}"))
    }

    /// Every network request the pages made (`Network.requestWillBeSent`): their URLs.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every error the pages logged: console errors and assertions, uncaught exceptions, log
    /// entries of level error.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str() {
                Some("Runtime.consoleAPICalled")
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    Some(format!("console: {}", e["params"]["args"]))
                }
                Some("Runtime.exceptionThrown") => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                Some("Log.entryAdded") if e["params"]["entry"]["level"] == "error" => {
                    Some(format!("log: {}", e["params"]["entry"]))
                }
                _ => None,
            })
            .collect()
    }

    /// The end of Chromium's log, for an error message.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("\nchromium's log:\n{tail}")
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `file:///abs/path` with the path's bytes outside the unreserved set percent-encoded.
pub fn file_url(file: &Path) -> Result<String, String> {
    let abs = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut url = String::from("file://");
    for b in abs.display().to_string().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}
