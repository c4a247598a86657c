//! The measurement behind the YAML parser choice (BENCHMARKS.md, "One YAML module: the
//! parser chosen"): Portcullis' parse ([`portcullis::yaml::parse`], serde-saphyr) against
//! serde_yaml_ng (over libyaml, the parser before it) into the same JSON, document by
//! document, alternately, and both on deeply nested input.
//!
//! ```sh
//! bash benches/audit-input.sh                      # target/audit-input.yaml
//! cargo run --release --example yaml_parsers -- target/audit-input.yaml
//! ```
//!
//! CPU time is read from /proc/self/stat (user + system), so other processes on the machine
//! do not count.

use std::time::Instant;

use serde_json::Value;

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold blanks) are blank-separated; utime and
    // stime are the 14th and 15th fields, the 12th and 13th after it.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn with_serde_yaml_ng(doc: &str) -> Result<Value, String> {
    serde_yaml_ng::from_str::<Value>(doc).map_err(|e| e.to_string())
}

fn with_portcullis(doc: &str) -> Result<Value, String> {
    portcullis::yaml::parse(doc).map_err(|e| e.to_string())
}

type Parser = (&'static str, fn(&str) -> Result<Value, String>);

const PARSERS: [Parser; 2] = [
    ("portcullis::yaml (serde-saphyr)", with_portcullis),
    ("serde_yaml_ng (libyaml)", with_serde_yaml_ng),
];

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: yaml_parsers FILE (see benches/audit-input.sh)");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let docs: Vec<&str> = portcullis::yaml::documents(&text)
        .into_iter()
        .map(|c| c.text)
        .collect();
    println!("{path}: {} documents, {} bytes", docs.len(), text.len());
    for round in 1..=3 {
        for (name, parse) in PARSERS {
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            let parsed = docs.iter().filter(|d| parse(d).is_ok()).count();
            println!(
                "round {round}  {name:32} {parsed} parsed  CPU {:.2} s  wall {:.2} s",
                cpu_seconds() - cpu,
                wall.elapsed().as_secs_f64()
            );
        }
    }
    println!("deep input (one document each; both refuse past 128 levels):");
    for levels in [10_000usize, 20_000, 40_000] {
        for opening in ["[", "{a: ", "- "] {
            let doc = opening.repeat(levels);
            for (name, parse) in PARSERS {
                let cpu = cpu_seconds();
                let refused = parse(&doc).is_err();
                println!(
                    "  {opening:?} x {levels:>6}  {name:32} refused: {refused}  CPU {:.3} s",
                    cpu_seconds() - cpu
                );
            }
        }
    }
}
