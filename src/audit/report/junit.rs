//! The JUnit XML report of `portcullis audit -o junit`, for CI systems that show test reports:
//! one `<testsuite>` per input file (one for the cluster), one `<testcase>` per workload (a
//! denied one fails, listing every finding; warnings go to `<system-out>`; one not judged is
//! skipped), an `<error>` per unreadable document. A suite is written when its file ends, so
//! memory holds one file's cases (the whole cluster's for `--cluster`).

use std::fmt::Write as _;
use std::io::Write;

use super::row::Row;
use crate::audit::Verdict;
use crate::engine::{Effect, FindingKind};
use crate::junit::{self, Case, CaseResult, Counts};

/// Writes the JUnit report as rows come.
#[derive(Debug, Default)]
pub(super) struct JunitWriter {
    /// The file of the suite being gathered, its cases' XML and counts.
    suite: Option<String>,
    cases: String,
    counts: Counts,
}

impl JunitWriter {
    /// A writer; writes the report's start to `out`.
    pub(super) fn new(out: &mut dyn Write) -> std::io::Result<JunitWriter> {
        out.write_all(junit::DECLARATION.as_bytes())?;
        out.write_all(b"<testsuites name=\"portcullis audit\">\n")?;
        Ok(JunitWriter::default())
    }

    /// Adds the test case of one row (none for objects that are not workloads).
    pub(super) fn push(&mut self, row: &Row, out: &mut dyn Write) -> std::io::Result<()> {
        if row.verdict == Verdict::NotAWorkload {
            return Ok(());
        }
        if self.suite.as_deref() != Some(row.location.file.as_str()) {
            self.flush(out)?;
            self.suite = Some(row.location.file.clone());
        }
        let title = match row.verdict {
            Verdict::Error => format!("unreadable document ({})", row.location),
            _ => row.title(),
        };
        let classname = row
            .namespace
            .clone()
            .unwrap_or_else(|| row.location.file.clone());
        let lines = |effects: &[Effect]| {
            let mut text = String::new();
            for f in row.findings.iter().filter(|f| effects.contains(&f.effect)) {
                let label = match (f.kind, f.effect) {
                    (FindingKind::Notice, _) => "note",
                    (_, e) => e.as_str(),
                };
                let _ = writeln!(text, "{label} {}", f.full_text());
                if let Some(e) = &f.exception {
                    let _ = writeln!(
                        text,
                        "  exception {} (owner {}, expires {}): {}",
                        e.name, e.owner, e.expires, e.reason
                    );
                }
            }
            text
        };
        let denying = lines(&[Effect::Deny]);
        let others = lines(&[Effect::Warn, Effect::Audit, Effect::Excepted]);
        let denials = row
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny)
            .count();
        let message = format!(
            "{title}: {denials} violation{} of enforce policies",
            if denials == 1 { "" } else { "s" }
        );
        let reason = row.reason.clone().unwrap_or_default();
        let result = match row.verdict {
            Verdict::Deny => CaseResult::Failed {
                message: &message,
                kind: "deny",
                text: &denying,
            },
            Verdict::Error => CaseResult::Error {
                message: &reason,
                kind: "UnreadableDocument",
                text: &reason,
            },
            Verdict::Skipped => CaseResult::Skipped { message: &reason },
            Verdict::Warn | Verdict::Pass | Verdict::NotAWorkload => CaseResult::Passed,
        };
        self.counts.tests += 1;
        match result {
            CaseResult::Failed { .. } => self.counts.failures += 1,
            CaseResult::Error { .. } => self.counts.errors += 1,
            CaseResult::Skipped { .. } => {
                *self.counts.skipped.get_or_insert(0) += 1;
            }
            CaseResult::Passed => {}
        }
        let file = (!row.location.file.starts_with('<')).then_some(row.location.file.as_str());
        junit::write_case(
            &mut self.cases,
            &Case {
                name: &title,
                classname: &classname,
                file,
                line: row.location.line,
                result,
                system_out: (!others.is_empty()).then_some(others.as_str()),
            },
        );
        Ok(())
    }

    /// Writes the suite gathered so far.
    fn flush(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let Some(file) = self.suite.take() else {
            return Ok(());
        };
        let mut head = String::new();
        let counts = Counts {
            skipped: Some(self.counts.skipped.unwrap_or(0)),
            ..self.counts
        };
        let on_disk = (!file.starts_with('<')).then_some(file.as_str());
        junit::open_testsuite(&mut head, &file, on_disk, &counts);
        out.write_all(head.as_bytes())?;
        out.write_all(self.cases.as_bytes())?;
        out.write_all(junit::CLOSE_TESTSUITE.as_bytes())?;
        self.cases.clear();
        self.counts = Counts::default();
        Ok(())
    }

    /// Writes the last suite and the report's end.
    pub(super) fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.flush(out)?;
        out.write_all(junit::CLOSE_TESTSUITES.as_bytes())
    }
}
