//! The README's screenshot of the HTML report: renders the report of the shipped fixtures
//! (`policies/`, `tests/manifests/`) with the `portcullis` binary built beside this example,
//! opens it in headless Chromium (tests/browser_support/) and writes `docs/images/report.png`,
//! and beside it `docs/images/report.png.txt`: the command and the SHA-256 of the page it
//! printed, which tests/docs.rs checks against a fresh rendering (a page that changed needs a
//! new screenshot).
//!
//! ```sh
//! cargo build && cargo run --example report_screenshot
//! ```

#[path = "../tests/browser_support/mod.rs"]
mod browser_support;

use std::path::Path;
use std::process::{Command, ExitCode};

/// The arguments of `portcullis` that render the page of the screenshot.
const ARGS: &[&str] = &[
    "audit",
    "-o",
    "html",
    "--policies",
    "policies",
    "--group-by",
    "team",
    "--at",
    "2026-12-01",
    "tests/manifests",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/examples/report_screenshot -> target/<profile>/portcullis
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("portcullis"))
        .filter(|b| b.is_file())
        .ok_or("the portcullis binary is not built beside this example: run `cargo build` first")?;
    let out = Command::new(&binary)
        .args(ARGS)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "portcullis {}: {}",
            ARGS.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let html = dir.path().join("report.html");
    std::fs::write(&html, &out.stdout).map_err(|e| e.to_string())?;
    let mut browser = browser_support::Browser::start()?;
    let page = browser.page(true)?;
    browser.open(&page, &html)?;
    let png = browser.screenshot(&page, true, 1800.0)?;
    let images = root.join("docs/images");
    std::fs::create_dir_all(&images).map_err(|e| e.to_string())?;
    std::fs::write(images.join("report.png"), png).map_err(|e| e.to_string())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &out.stdout);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let note = format!(
        "# docs/images/report.png is the page this command prints, in headless Chromium (1400 px\n\
         # wide, its first 1800 px), made by `cargo build && cargo run --example\n\
         # report_screenshot`. tests/docs.rs renders the page again: when its SHA-256 differs,\n\
         # the screenshot is out of date.\n\
         command: portcullis {}\n\
         sha256: {hex}\n",
        ARGS.join(" ")
    );
    std::fs::write(images.join("report.png.txt"), note).map_err(|e| e.to_string())?;
    println!(
        "wrote docs/images/report.png ({} bytes of HTML, sha256 {hex})",
        out.stdout.len()
    );
    Ok(())
}
