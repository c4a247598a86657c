//! Loading: reads policy files (multi-document YAML) from a directory or a string, parses them
//! strictly and compiles them into a [`PolicySet`].

use std::path::{Path, PathBuf};

use super::compile::{CompileError, compile_document};
use super::model::PolicyDocument;
use super::{PolicySet, Source};

/// One problem in a policy file, located by file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Why a policy set could not be loaded: every problem found, each with file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads every `*.yaml` / `*.yml` file of a directory (not recursive, sorted by name; files and
/// directories starting with `.` are skipped, as Kubernetes ConfigMap volumes keep their
/// bookkeeping there) as one policy set.
pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| single(dir, 0, format!("cannot read policy directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
                && p.is_file()
        })
        .collect();
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| single(&file, 0, format!("cannot read policy file: {e}")))?;
        sources.push((file, text));
    }
    load_sources(&sources)
}

/// Loads policies from one YAML string (multi-document allowed), named `file` in messages.
pub fn load_str(file: &Path, text: &str) -> Result<PolicySet, LoadError> {
    load_sources(&[(file.to_path_buf(), text.to_owned())])
}

fn single(file: &Path, line: usize, message: String) -> LoadError {
    LoadError {
        diagnostics: vec![Diagnostic {
            file: file.to_path_buf(),
            line,
            message,
            hint: String::new(),
        }],
    }
}

fn load_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, LoadError> {
    let mut diagnostics = Vec::new();
    let mut policies = Vec::new();
    for (file, text) in sources {
        for de in serde_yaml_ng::Deserializer::from_str(text) {
            let doc = match serde::Deserialize::deserialize(de) {
                Ok(Some(doc)) => doc,
                Ok(None) => continue,
                Err(e) => {
                    let e: serde_yaml_ng::Error = e;
                    let line = e.location().map(|l| l.line()).unwrap_or(1);
                    diagnostics.push(Diagnostic {
                        file: file.clone(),
                        line,
                        message: e.to_string(),
                        hint: String::new(),
                    });
                    continue;
                }
            };
            let doc: PolicyDocument = doc;
            let source = Source {
                file: file.clone(),
                line: 1,
            };
            match compile_document(doc, source) {
                Ok(p) => policies.push(p),
                Err(errors) => {
                    diagnostics.extend(errors.into_iter().map(|e: CompileError| Diagnostic {
                        file: file.clone(),
                        line: 1,
                        message: format!("{}: {}", e.path, e.message),
                        hint: e.hint,
                    }))
                }
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(PolicySet::new(policies))
    } else {
        Err(LoadError { diagnostics })
    }
}
