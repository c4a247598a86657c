//! The HTML report in a real browser: headless Chromium (Debian's `chromium`) opens the report
//! of the shipped fixtures and of the report fixtures (schedules, exceptions, a baseline) and
//! checks, from the rendered page, that its numbers are the JSON report's, that filtering
//! works with JavaScript on and off, that the page made no network request and logged no
//! error (tests/browser_support/). Screenshots are kept in `target/report-screenshots/`.
//!
//! Without chromium the cases are listed as ignored (and fail if run with --include-ignored);
//! under `CI=true` a missing chromium fails the run.

mod browser_support;

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

use browser_support::report::{Expect, check_report};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `portcullis audit ARGS` from the repository root: its standard output.
fn audit(args: &[&str]) -> Result<Vec<u8>, Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("run portcullis: {e}"))?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(format!(
            "portcullis audit {args:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// The HTML report of `args` (in a temporary directory) and the JSON report of the same.
fn reports(
    args: &[&str],
    html_args: &[&str],
) -> Result<(tempfile::TempDir, std::path::PathBuf, Value), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let html = dir.path().join("report.html");
    let mut with_html = vec!["-o", "html"];
    with_html.extend(html_args);
    with_html.extend(args);
    std::fs::write(&html, audit(&with_html)?).map_err(|e| e.to_string())?;
    let mut with_json = vec!["-o", "json"];
    with_json.extend(args);
    let json: Value = serde_json::from_slice(&audit(&with_json)?).map_err(|e| e.to_string())?;
    Ok((dir, html, json))
}

fn shipped_fixtures() -> Result<(), Failed> {
    let args = [
        "--policies",
        "policies",
        "--at",
        "2026-12-01",
        "tests/manifests",
    ];
    let (_dir, html, json) = reports(&args, &["--group-by", "team"])?;
    let teams = BTreeMap::from([("shop".to_owned(), "shop".to_owned())]);
    let checked = check_report(
        &html,
        &json,
        "shipped-fixtures",
        &Expect {
            groups: Some(("team", teams)),
            baseline: None,
        },
    )?;
    println!(
        "shipped fixtures: usable {:.0} ms after navigation start; screenshot {}",
        checked.usable_ms,
        checked.screenshot.display()
    );
    Ok(())
}

fn schedules_exceptions_and_a_baseline() -> Result<(), Failed> {
    let policies = "tests/fixtures/report/policies";
    let before = audit(&[
        "-o",
        "json",
        "--policies",
        policies,
        "--at",
        "2026-12-01",
        "tests/fixtures/report/manifests-before.yaml",
    ])?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let baseline = dir.path().join("before.json");
    std::fs::write(&baseline, &before).map_err(|e| e.to_string())?;
    let baseline_arg = baseline.display().to_string();
    let args = [
        "--policies",
        policies,
        "--at",
        "2026-12-01",
        "tests/fixtures/report/manifests.yaml",
    ];
    let (_dir, html, json) = reports(&args, &["--group-by", "team", "--baseline", &baseline_arg])?;
    let before: Value = serde_json::from_slice(&before).map_err(|e| e.to_string())?;
    let teams = BTreeMap::from([
        ("team-shop".to_owned(), "shop".to_owned()),
        ("team-payments".to_owned(), "payments".to_owned()),
    ]);
    let checked = check_report(
        &html,
        &json,
        "report-fixtures",
        &Expect {
            groups: Some(("team", teams)),
            baseline: Some(&before),
        },
    )?;
    println!(
        "report fixtures: usable {:.0} ms after navigation start; screenshot {}",
        checked.usable_ms,
        checked.screenshot.display()
    );
    Ok(())
}

/// One case: its body.
type Case = fn() -> Result<(), Failed>;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let cases: [(&str, Case); 2] = [
        ("html_report_of_the_shipped_fixtures", shipped_fixtures),
        (
            "html_report_with_schedules_exceptions_and_a_baseline",
            schedules_exceptions_and_a_baseline,
        ),
    ];
    if let Some(why) = browser_support::unavailable() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            eprintln!("error: the browser tests cannot run under CI=true: {why}");
            return ExitCode::FAILURE;
        }
        println!("SKIPPED the HTML report in a browser: {why}");
        let trials = cases
            .iter()
            .map(|(name, _)| {
                let why = why.clone();
                Trial::test(*name, move || Err(format!("not run: {why}").into()))
                    .with_ignored_flag(true)
            })
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let trials = cases
        .into_iter()
        .map(|(name, run)| Trial::test(name, run))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
