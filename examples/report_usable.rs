//! How an HTML report (`portcullis audit -o html`) opens in headless Chromium, by the method of
//! BENCHMARKS.md "The HTML report" (the browser tests' own, tests/browser_support/): each page
//! given is opened RUNS times (default 3) in a fresh browser, and the time it became usable is
//! read from the page itself, `performance.getEntriesByName('portcullis-usable')[0].startTime`
//! (the mark its script sets as its last act), in milliseconds from navigation start.
//!
//! ```sh
//! target/release/portcullis audit -o html --group-by team big.yaml > big.html
//! RUNS=5 cargo run --example report_usable -- big.html
//! ```

#[path = "../tests/browser_support/mod.rs"]
mod browser_support;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let pages: Vec<String> = std::env::args().skip(1).collect();
    if pages.is_empty() {
        eprintln!("usage: report_usable PAGE.html...");
        return ExitCode::FAILURE;
    }
    for page in &pages {
        for _ in 0..runs {
            if let Err(e) = once(Path::new(page)) {
                eprintln!("error: {page}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn once(file: &Path) -> Result<(), String> {
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    let mut b = browser_support::Browser::start()?;
    let p = b.page(true)?;
    let opened = Instant::now();
    b.open(&p, file)?;
    let loaded = opened.elapsed().as_secs_f64() * 1000.0;
    let mark = b
        .eval(
            &p,
            "performance.getEntriesByName('portcullis-usable')[0].startTime",
        )?
        .as_f64()
        .unwrap_or(f64::NAN);
    let shown = b.eval(
        &p,
        "[document.querySelector('[data-count=judged]').textContent, document.getElementById('cut') !== null, document.querySelectorAll('#findings .members > li, #findings article.w:not(.group)').length]",
    )?;
    println!(
        "{}: {size} bytes; usable {mark:.0} ms after navigation start (load event seen after {loaded:.0} ms); [judged, cut, workloads named in the findings] {shown}; {} request(s), {} error(s)",
        file.display(),
        b.requests().len(),
        b.errors().len()
    );
    Ok(())
}
