//! Runs the webhook's whole work on one request body in a loop, for profilers (callgrind):
//! `admission::handle` (parse the AdmissionReview, evaluate, build and encode the answer) on a
//! captured review, exactly what the `/validate` and `/mutate` handlers call.
//!
//! ```text
//! cargo build --release --example profile_review
//! valgrind --tool=callgrind ./target/release/examples/profile_review validate 2000
//! ```
//!
//! Arguments: the endpoint (`validate` or `mutate`), the number of iterations (default
//! 100,000) and the review file (default: the captured Deployment CREATE review of that
//! endpoint, `tests/fixtures/admission/<endpoint>-create-deployment.json`). Run it twice with
//! different counts and divide the difference of the instruction totals by the difference of
//! the counts: that is the cost of one request, without start-up.

use std::path::{Path, PathBuf};

use portcullis::admission;
use portcullis::telemetry::Endpoint;

fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = match args.next().as_deref() {
        Some("validate") | None => Endpoint::Validate,
        Some("mutate") => Endpoint::Mutate,
        Some(other) => {
            eprintln!("unknown endpoint {other:?}: validate or mutate");
            std::process::exit(2);
        }
    };
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = args.next().map(PathBuf::from).unwrap_or_else(|| {
        root.join("tests/fixtures/admission")
            .join(format!("{}-create-deployment.json", endpoint.as_str()))
    });
    let body = match std::fs::read(&file) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            std::process::exit(2);
        }
    };
    let set = match portcullis::lint::load_dir(&root.join("policies")) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let time = portcullis::policy::Timestamp::from_unix(1_767_225_600);
    let started = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..iterations {
        match admission::handle(endpoint, &set, std::hint::black_box(&body), time) {
            Ok(handled) => bytes += handled.body.len(),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                std::process::exit(1);
            }
        }
    }
    let per = started.elapsed() / u32::try_from(iterations).unwrap_or(u32::MAX);
    println!(
        "{iterations} {} reviews of {}, {bytes} answer bytes, {per:?} per review",
        endpoint.as_str(),
        file.display()
    );
}
