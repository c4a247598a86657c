//! An earlier JSON report (`--baseline REPORT.json`), read back for the HTML report's "since the
//! baseline": its violations, each under [`super::row::finding_key`], so that findings new since
//! then and those fixed since can be told apart whatever moved in the files.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::SCHEMA_VERSION;
use super::row::finding_key;

/// One violation of the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineFinding {
    /// The workload's namespace (`metadata.namespace`), if any.
    pub namespace: Option<String>,
    /// How reports name the workload: `Deployment shop/web`.
    pub workload: String,
    /// The policy.
    pub policy: String,
    /// The rule type.
    pub rule: String,
    /// The container, if any.
    pub container: Option<String>,
    /// The field.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

/// The violations of an earlier JSON report, by [`finding_key`].
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The file it was read from.
    pub file: String,
    /// Its violations.
    pub findings: HashMap<String, BaselineFinding>,
    /// How many workloads it judged (`summary.judged`).
    pub judged: usize,
}

/// Why a baseline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be opened or read.
    #[error("cannot read the baseline {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a JSON report of `portcullis audit -o json`.
    #[error(
        "the baseline {file} is not a JSON report of `portcullis audit -o json` (schemaVersion {SCHEMA_VERSION}): {message}"
    )]
    Format {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    schema_version: u32,
    objects: Vec<Object>,
    summary: Counts,
}

#[derive(Deserialize)]
struct Counts {
    judged: usize,
}

#[derive(Deserialize)]
struct Object {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct Finding {
    policy: String,
    rule: String,
    kind: String,
    container: Option<String>,
    field: String,
    message: String,
}

impl Baseline {
    /// Reads a JSON report of `portcullis audit -o json`.
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let file = path.display().to_string();
        let reader = std::fs::File::open(path).map_err(|source| BaselineError::Read {
            file: file.clone(),
            source,
        })?;
        let report: Report =
            serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader)).map_err(
                |e| {
                    if e.is_io() {
                        BaselineError::Read {
                            file: file.clone(),
                            source: e.into(),
                        }
                    } else {
                        BaselineError::Format {
                            file: file.clone(),
                            message: e.to_string(),
                        }
                    }
                },
            )?;
        Baseline::of(file, report)
    }

    /// Reads a JSON report from its text (`file` names it in errors).
    pub fn from_str(file: &str, text: &str) -> Result<Baseline, BaselineError> {
        let report: Report = serde_json::from_str(text).map_err(|e| BaselineError::Format {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        Baseline::of(file.to_owned(), report)
    }

    fn of(file: String, report: Report) -> Result<Baseline, BaselineError> {
        if report.schema_version != SCHEMA_VERSION {
            return Err(BaselineError::Format {
                file,
                message: format!("its schemaVersion is {}", report.schema_version),
            });
        }
        let mut findings = HashMap::new();
        for o in report.objects {
            let kind = o.kind.unwrap_or_default();
            let workload = {
                let name = o.name.as_deref().unwrap_or("(unnamed)");
                match &o.namespace {
                    Some(ns) => format!("{kind} {ns}/{name}"),
                    None => format!("{kind} {name}"),
                }
            };
            for f in o.findings.into_iter().filter(|f| f.kind == "violation") {
                let key = finding_key(
                    &kind,
                    o.namespace.as_deref(),
                    o.name.as_deref(),
                    &f.policy,
                    &f.rule,
                    f.container.as_deref(),
                    &f.field,
                );
                findings.insert(
                    key,
                    BaselineFinding {
                        namespace: o.namespace.clone(),
                        workload: workload.clone(),
                        policy: f.policy,
                        rule: f.rule,
                        container: f.container,
                        field: f.field,
                        message: f.message,
                    },
                );
            }
        }
        Ok(Baseline {
            file,
            findings,
            judged: report.summary.judged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_read_and_other_reports_refused() {
        let text = r#"{"schemaVersion": 1, "objects": [{"kind": "Deployment", "namespace": "shop", "name": "web",
            "findings": [
              {"policy": "p", "rule": "requireProbes", "kind": "violation", "container": "app", "field": "f", "message": "m"},
              {"policy": "l", "rule": "defaultLabels", "kind": "mutation", "container": null, "field": "g", "message": "n"}]}],
            "summary": {"judged": 1}}"#;
        let b = Baseline::from_str("b.json", text).expect("a baseline");
        assert_eq!(b.findings.len(), 1);
        let f = b.findings.values().next().expect("one");
        assert_eq!(f.workload, "Deployment shop/web");
        assert_eq!(b.judged, 1);
        let err = Baseline::from_str(
            "b.json",
            r#"{"schemaVersion": 2, "objects": [], "summary": {"judged": 0}}"#,
        )
        .expect_err("another schema");
        assert!(err.to_string().contains("schemaVersion is 2"), "{err}");
        let err = Baseline::from_str("b.json", "{}").expect_err("not a report");
        assert!(err.to_string().contains("not a JSON report"), "{err}");
    }
}
