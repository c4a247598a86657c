//! Criterion benchmark of `portcullis audit`'s work: read a directory of manifests (YAML and
//! JSON, multi-document, Lists), judge every object and render the text and JSON reports.
//! The directory is tests/manifests copied 20 times into a temporary directory. Measured two
//! ways: all at once, one thread (read, then judge, then render), and streamed on every core
//! as `portcullis audit` runs it.
//! Run with `cargo bench --bench audit`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis::audit::read::{self, Input};
use portcullis::audit::report::{self, Style};
use portcullis::audit::{self, JudgeOptions, Outcome};
use portcullis::policy::PolicySet;

/// How many copies of tests/manifests the benchmark directory holds.
const COPIES: usize = 20;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn audit(policies: &PolicySet, inputs: &[Input]) -> (Vec<Outcome>, String, String) {
    let entries = read::read_inputs(inputs);
    let outcomes = audit::judge(
        policies,
        entries,
        &JudgeOptions::at(portcullis::policy::Timestamp::from_unix(1_767_225_600)),
    );
    let text = report::text_report(&outcomes, Style { color: false });
    let json = serde_json::to_string_pretty(&report::json_report(&outcomes)).expect("json");
    (outcomes, text, json)
}

/// What `portcullis audit` runs: [`audit::stream`] (every core, in input order), here into
/// both report writers at once, as [`audit`] renders both.
fn streamed(policies: &PolicySet, inputs: &[Input]) -> (usize, Vec<u8>, Vec<u8>) {
    let options = JudgeOptions::at(portcullis::policy::Timestamp::from_unix(1_767_225_600));
    let text_format = report::Format::Text(Style { color: false });
    let mut text = report::ReportWriter::new(text_format, Vec::new()).expect("writer");
    let mut json = report::ReportWriter::new(report::Format::Json, Vec::new()).expect("writer");
    audit::stream(
        inputs,
        policies,
        &options,
        &|o| {
            (
                report::piece(text_format, &o),
                report::piece(report::Format::Json, &o),
            )
        },
        &mut |s| {
            if let audit::Streamed::Outcome((t, j)) = s {
                text.push(t).expect("push");
                json.push(j).expect("push");
            }
        },
    )
    .expect("no standard input here");
    let (summary, text) = text.finish().expect("finish");
    let (_, json) = json.finish().expect("finish");
    (summary.objects + summary.errors, text, json)
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policies = portcullis::lint::load_dir(&root.join("policies")).expect("policies");
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..COPIES {
        copy_dir(
            &root.join("tests/manifests"),
            &dir.path().join(format!("copy-{i:02}")),
        );
    }
    let inputs = [Input::Path(dir.path().to_path_buf())];
    let (outcomes, _, _) = audit(&policies, &inputs);
    let documents = outcomes.len();
    assert!(documents > 100, "only {documents} documents read");

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(documents as u64));
    group.bench_function(
        format!("directory-{documents}-documents/default-policies"),
        |b| b.iter(|| audit(black_box(&policies), black_box(&inputs))),
    );
    assert_eq!(streamed(&policies, &inputs).0, documents);
    group.bench_function(
        format!("directory-{documents}-documents/default-policies/streamed"),
        |b| b.iter(|| streamed(black_box(&policies), black_box(&inputs))),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
