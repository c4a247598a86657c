//! Reports of `portcullis test`: text (coloured on a terminal), JSON (`schemaVersion: 1`) and
//! JUnit XML for CI systems.

use std::fmt::Write as _;

use serde::Serialize;

use super::{RuleCoverage, SuiteResult};
use crate::audit::report::{JsonFinding, Style, json_finding};
use crate::junit::{self, Case, CaseResult, Counts};
use crate::policy::load::Diagnostic;

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// The suites run, in file order.
    pub suites: Vec<SuiteResult>,
    /// Unreadable test files, and suites that could not run.
    pub errors: Vec<Diagnostic>,
    /// Coverage of every rule of the set.
    pub coverage: Vec<RuleCoverage>,
    /// Whether missing coverage fails the run.
    pub require_coverage: bool,
}

/// Counts over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Cases run.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Unreadable test files and suites that could not run.
    pub errors: usize,
    /// Rules of the set.
    pub rules: usize,
    /// Rules with a case where they fire and one where they pass.
    pub covered: usize,
}

impl Run {
    /// The counts.
    pub fn summary(&self) -> Summary {
        let cases: Vec<_> = self.suites.iter().flat_map(|s| &s.cases).collect();
        let passed = cases.iter().filter(|c| c.passed()).count();
        Summary {
            cases: cases.len(),
            passed,
            failed: cases.len() - passed,
            errors: self.errors.len(),
            rules: self.coverage.len(),
            covered: self.coverage.iter().filter(|c| c.covered()).count(),
        }
    }

    /// The exit code: 2 when tests or policies could not be read, else 1 when a case failed,
    /// else 3 when `--require-coverage` finds a rule not covered, else 0.
    pub fn exit_code(&self) -> u8 {
        let s = self.summary();
        if s.errors > 0 {
            2
        } else if s.failed > 0 {
            1
        } else if self.require_coverage && s.covered < s.rules {
            3
        } else {
            0
        }
    }

    /// `result: FAIL (2 of 31 cases failed)`, `result: PASS (31 cases)`.
    pub fn result_line(&self) -> String {
        let s = self.summary();
        let mut why = Vec::new();
        if s.errors > 0 {
            why.push(format!(
                "{} unreadable test file{} or suite{}",
                s.errors,
                if s.errors == 1 { "" } else { "s" },
                if s.errors == 1 { "" } else { "s" }
            ));
        }
        if s.failed > 0 {
            why.push(format!("{} of {} cases failed", s.failed, s.cases));
        }
        if self.require_coverage && s.covered < s.rules {
            why.push(format!(
                "{} of {} rules not covered",
                s.rules - s.covered,
                s.rules
            ));
        }
        if why.is_empty() {
            format!("result: PASS ({} cases)", s.cases)
        } else {
            format!("result: FAIL ({})", why.join(", "))
        }
    }
}

fn coverage_gap(c: &RuleCoverage) -> String {
    let missing = match (c.fires, c.passes) {
        (false, false) => "no case where it fires, no case where it passes",
        (false, true) => "no case where it fires",
        (true, false) => "no case where it passes",
        (true, true) => "covered",
    };
    match c.validation {
        Some(i) => format!("{}/{}.validations[{i}]: {missing}", c.policy, c.rule),
        None => format!("{}/{}: {missing}", c.policy, c.rule),
    }
}

/// The text report.
pub fn text(run: &Run, style: Style) -> String {
    let mut out = String::new();
    for e in &run.errors {
        let _ = writeln!(out, "{} {e}\n", style.red("ERROR"));
    }
    for suite in &run.suites {
        let _ = writeln!(
            out,
            "{} {}",
            style.bold(&suite.name),
            style.dim(&format!("({}:{})", suite.file.display(), suite.line))
        );
        for case in &suite.cases {
            if case.passed() {
                let _ = writeln!(out, "  {} {}", style.green("PASS"), case.name);
            } else {
                let _ = writeln!(
                    out,
                    "  {} {} {}",
                    style.red("FAIL"),
                    case.name,
                    style.dim(&format!("({}:{})", suite.file.display(), case.line))
                );
                for f in &case.failures {
                    for (i, line) in f.lines().enumerate() {
                        let painted = if line.starts_with('+') && !line.starts_with("+++") {
                            style.green(line)
                        } else if line.starts_with('-') && !line.starts_with("---") {
                            style.red(line)
                        } else {
                            line.to_owned()
                        };
                        let bullet = if i == 0 { "- " } else { "  " };
                        let _ = writeln!(out, "       {bullet}{painted}");
                    }
                }
            }
        }
        out.push('\n');
    }
    let s = run.summary();
    let _ = writeln!(
        out,
        "coverage: {} of {} rules fire in some case and pass in another",
        s.covered, s.rules
    );
    for c in run.coverage.iter().filter(|c| !c.covered()) {
        let _ = writeln!(out, "  {}", style.yellow(&coverage_gap(c)));
    }
    let _ = writeln!(
        out,
        "{} case{}: {} passed, {} failed",
        s.cases,
        if s.cases == 1 { "" } else { "s" },
        s.passed,
        s.failed
    );
    let result = run.result_line();
    let _ = writeln!(
        out,
        "{}",
        if run.exit_code() == 0 {
            style.green(&result)
        } else {
            style.red(&result)
        }
    );
    out
}

/// The JSON report of `portcullis test -o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonRun {
    /// Always 1; fields are only ever added.
    pub schema_version: u32,
    /// One entry per suite.
    pub suites: Vec<JsonSuite>,
    /// Unreadable test files and suites that could not run (`file:line: message`).
    pub errors: Vec<String>,
    /// Every rule of the set.
    pub coverage: Vec<JsonCoverage>,
    /// Counts.
    pub summary: Summary,
    /// `pass` or `fail`.
    pub result: &'static str,
}

/// One suite of the JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonSuite {
    /// `metadata.name`.
    pub name: String,
    /// The test file.
    pub file: String,
    /// Its first line.
    pub line: usize,
    /// The cases.
    pub cases: Vec<JsonCase>,
}

/// One case of the JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonCase {
    /// The case's name.
    pub name: String,
    /// Its line.
    pub line: usize,
    /// `pass` or `fail`.
    pub result: &'static str,
    /// Why it failed.
    pub failures: Vec<String>,
    /// Whether the request was admitted.
    pub allowed: bool,
    /// Why it was not judged, if it was not.
    pub skip_reason: Option<String>,
    /// Every finding, as in `portcullis audit -o json`.
    pub findings: Vec<JsonFinding>,
    /// The JSON Patch.
    pub patch: serde_json::Value,
}

/// One rule's coverage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonCoverage {
    /// The policy.
    pub policy: String,
    /// The rule type.
    pub rule: &'static str,
    /// For a `cel` rule: which validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
    /// Some case has a finding of it.
    pub fires: bool,
    /// Some case selected the policy and the rule found nothing.
    pub passes: bool,
}

/// The JSON report.
pub fn json(run: &Run) -> JsonRun {
    JsonRun {
        schema_version: 1,
        suites: run
            .suites
            .iter()
            .map(|s| JsonSuite {
                name: s.name.clone(),
                file: s.file.display().to_string(),
                line: s.line,
                cases: s
                    .cases
                    .iter()
                    .map(|c| JsonCase {
                        name: c.name.clone(),
                        line: c.line,
                        result: if c.passed() { "pass" } else { "fail" },
                        failures: c.failures.clone(),
                        allowed: c.decision.allowed,
                        skip_reason: c.decision.skipped.as_ref().map(ToString::to_string),
                        findings: c.decision.findings.iter().map(json_finding).collect(),
                        patch: serde_json::to_value(&c.decision.patch)
                            .unwrap_or(serde_json::Value::Null),
                    })
                    .collect(),
            })
            .collect(),
        errors: run.errors.iter().map(ToString::to_string).collect(),
        coverage: run
            .coverage
            .iter()
            .map(|c| JsonCoverage {
                policy: c.policy.clone(),
                rule: c.rule,
                validation: c.validation,
                fires: c.fires,
                passes: c.passes,
            })
            .collect(),
        summary: run.summary(),
        result: if run.exit_code() == 0 { "pass" } else { "fail" },
    }
}

/// The JUnit XML report: a `<testsuite>` per test document (a `<testcase>` per case), one for
/// unreadable files (`<error>`), and one for coverage (a `<testcase>` per rule, failing when
/// not covered under `--require-coverage`, skipped otherwise).
pub fn junit(run: &Run) -> String {
    let s = run.summary();
    let coverage_failures = if run.require_coverage {
        s.rules - s.covered
    } else {
        0
    };
    let mut out = String::from(junit::DECLARATION);
    junit::open_testsuites(
        &mut out,
        "portcullis test",
        &Counts {
            tests: s.cases + s.errors + s.rules,
            failures: s.failed + coverage_failures,
            errors: s.errors,
            skipped: None,
        },
    );
    for suite in &run.suites {
        let file = suite.file.display().to_string();
        junit::open_testsuite(
            &mut out,
            &suite.name,
            Some(&file),
            &Counts {
                tests: suite.cases.len(),
                failures: suite.cases.iter().filter(|c| !c.passed()).count(),
                ..Counts::default()
            },
        );
        for case in &suite.cases {
            let failures = case.failures.join("\n");
            let message = case
                .failures
                .first()
                .and_then(|f| f.lines().next())
                .unwrap_or("");
            junit::write_case(
                &mut out,
                &Case {
                    name: &case.name,
                    classname: &suite.name,
                    file: Some(&file),
                    line: Some(case.line),
                    result: if case.passed() {
                        CaseResult::Passed
                    } else {
                        CaseResult::Failed {
                            message,
                            kind: "PolicyTestFailure",
                            text: &failures,
                        }
                    },
                    system_out: None,
                },
            );
        }
        out.push_str(junit::CLOSE_TESTSUITE);
    }
    if !run.errors.is_empty() {
        junit::open_testsuite(
            &mut out,
            "unreadable tests",
            None,
            &Counts {
                tests: run.errors.len(),
                errors: run.errors.len(),
                ..Counts::default()
            },
        );
        for e in &run.errors {
            let name = format!("{}:{}", e.file.display(), e.line);
            let text = e.to_string();
            junit::write_case(
                &mut out,
                &Case {
                    name: &name,
                    classname: "unreadable tests",
                    file: None,
                    line: None,
                    result: CaseResult::Error {
                        message: &e.message,
                        kind: "UnreadableTest",
                        text: &text,
                    },
                    system_out: None,
                },
            );
        }
        out.push_str(junit::CLOSE_TESTSUITE);
    }
    junit::open_testsuite(
        &mut out,
        "coverage",
        None,
        &Counts {
            tests: s.rules,
            failures: coverage_failures,
            ..Counts::default()
        },
    );
    for c in &run.coverage {
        let name = format!("{}/{}", c.policy, c.rule);
        let gap = coverage_gap(c);
        junit::write_case(
            &mut out,
            &Case {
                name: &name,
                classname: "coverage",
                file: None,
                line: None,
                result: if c.covered() {
                    CaseResult::Passed
                } else if run.require_coverage {
                    CaseResult::Failed {
                        message: &gap,
                        kind: "MissingCoverage",
                        text: &gap,
                    }
                } else {
                    CaseResult::Skipped { message: &gap }
                },
                system_out: None,
            },
        );
    }
    out.push_str(junit::CLOSE_TESTSUITE);
    out.push_str(junit::CLOSE_TESTSUITES);
    out
}
