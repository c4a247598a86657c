//! The documentation stays true (docs/development.md, "Documentation"): README.md, SECURITY.md,
//! BENCHMARKS.md, certs/README.md and docs/*.md are read as a newcomer reads them, and
//!
//! - every relative link and `#anchor` resolves, and every page of docs/ is linked from the README;
//! - every repository file a page names by path (`src/engine/rule.rs`) exists;
//! - every Portcullis document in a fenced yaml block (Policy, PolicyException, PolicyTest, a rule
//!   snippet) is accepted by the loader and its lint, unless marked as a counter-example, which
//!   must be refused;
//! - every `portcullis <subcommand> --flag` in a code block or an inline code span names a
//!   subcommand and flags clap knows (`portcullis::cli::Cli`), and the flag table of
//!   docs/webhook.md lists exactly the flags of `serve`, with their environment and defaults;
//! - the README's two commands are the ones .ci/run and this suite run, and `portcullis serve`
//!   with no flags answers the README's curl as the README shows;
//! - every `PORTCULLIS_*` variable named is read by the binary or the harnesses;
//! - the kubectl dry runs shown are what the webhook answers for that object;
//! - console blocks marked `<!-- docs: output -->` print what they show when run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use portcullis::policy::model::Rule;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PORTCULLIS: &str = env!("CARGO_BIN_EXE_portcullis");

/// The rule types of the policy format: a yaml list of single-key maps naming one of these is a
/// rule snippet, checked inside a policy.
const RULE_TYPES: &[&str] = &Rule::TYPE_NAMES;

// ---------------------------------------------------------------------------------------------
// Reading the pages

/// A markdown page: its path relative to the repository root, and what it is made of.
struct Page {
    path: PathBuf,
    blocks: Vec<Block>,
    /// Paragraphs and table rows outside fenced blocks, each with its first line.
    paragraphs: Vec<(usize, String)>,
    /// Heading anchors, as GitHub computes them.
    anchors: BTreeSet<String>,
}

/// A fenced code block.
struct Block {
    /// The line of the opening fence.
    line: usize,
    /// The info string's first word (`yaml`, `sh`, `console`, `text`, ...).
    lang: String,
    /// `<!-- docs: MARKER -->` on the last non-blank line before the fence.
    marker: Option<String>,
    body: String,
}

impl Page {
    fn whence(&self, line: usize) -> String {
        format!("{}:{line}", self.path.display())
    }
}

fn documentation() -> Vec<Page> {
    let mut paths: Vec<PathBuf> = [
        "README.md",
        "SECURITY.md",
        "BENCHMARKS.md",
        "certs/README.md",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(ROOT).expect("under the root").to_path_buf())
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(&path))
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            parse_page(path, &text)
        })
        .collect()
}

fn parse_page(path: PathBuf, text: &str) -> Page {
    let mut blocks = Vec::new();
    let mut paragraphs: Vec<(usize, String)> = Vec::new();
    let mut headings = Vec::new();
    let mut last_prose: Option<String> = None;
    let mut lines = text.lines().enumerate().peekable();
    let mut paragraph: Option<(usize, String)> = None;
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        if let Some(fence) = fence {
            paragraphs.extend(paragraph.take());
            let width = trimmed
                .chars()
                .take_while(|c| fence.starts_with(*c))
                .count();
            let lang = trimmed[width..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned();
            let marker = last_prose.as_deref().and_then(|l| {
                let l = l.trim();
                l.strip_prefix("<!-- docs:")
                    .and_then(|m| m.strip_suffix("-->"))
                    .map(|m| m.trim().to_owned())
            });
            let mut body = String::new();
            for (_, inner) in lines.by_ref() {
                let t = inner.trim_start();
                let closing = t.trim_end();
                let fence_char = fence.chars().next().unwrap_or('`');
                if closing.len() >= width && closing.chars().all(|c| c == fence_char) {
                    break;
                }
                let strip = inner.len() - t.len();
                body.push_str(if strip >= indent { &inner[indent..] } else { t });
                body.push('\n');
            }
            blocks.push(Block {
                line: i + 1,
                lang,
                marker,
                body,
            });
            last_prose = None;
            continue;
        }
        if line.trim().is_empty() {
            paragraphs.extend(paragraph.take());
            continue;
        }
        last_prose = Some(line.to_owned());
        if let Some(h) = trimmed.strip_prefix('#') {
            let h = h.trim_start_matches('#');
            if h.starts_with(' ') && indent == 0 {
                paragraphs.extend(paragraph.take());
                headings.push(h.trim().to_owned());
                paragraphs.push((i + 1, h.trim().to_owned()));
                continue;
            }
        }
        // Table rows are paragraphs of their own (a row never continues onto the next line).
        if trimmed.starts_with('|') {
            paragraphs.extend(paragraph.take());
            paragraphs.push((i + 1, line.to_owned()));
            continue;
        }
        match &mut paragraph {
            Some((_, p)) => {
                p.push(' ');
                p.push_str(trimmed);
            }
            None => paragraph = Some((i + 1, trimmed.to_owned())),
        }
    }
    paragraphs.extend(paragraph.take());
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for h in headings {
        let slug = slug(&h);
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug } else { format!("{slug}-{n}") });
        *n += 1;
    }
    Page {
        path,
        blocks,
        paragraphs,
        anchors,
    }
}

/// GitHub's heading anchor: lower case, punctuation other than `-` and `_` dropped, spaces
/// become `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The code spans of a paragraph (text between single backticks).
fn code_spans(paragraph: &str) -> Vec<&str> {
    paragraph.split('`').skip(1).step_by(2).collect()
}

/// A paragraph without its code spans.
fn without_code(paragraph: &str) -> String {
    paragraph
        .split('`')
        .step_by(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The targets of the inline links `[text](target)` of a text.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        out.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Links and anchors

/// Every problem with the links of `pages` (empty: all resolve).
fn link_problems(pages: &[Page]) -> Vec<String> {
    let by_path: BTreeMap<&Path, &Page> = pages.iter().map(|p| (p.path.as_path(), p)).collect();
    let mut problems = Vec::new();
    for page in pages {
        let dir = page.path.parent().unwrap_or(Path::new(""));
        for (line, paragraph) in &page.paragraphs {
            for target in link_targets(&without_code(paragraph)) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let resolved = if file.is_empty() {
                    page.path.clone()
                } else {
                    normalize(&dir.join(file))
                };
                if !file.is_empty() && !Path::new(ROOT).join(&resolved).exists() {
                    problems.push(format!(
                        "{}: link to {target}: {} does not exist",
                        page.whence(*line),
                        resolved.display()
                    ));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                match by_path.get(resolved.as_path()) {
                    Some(target_page) if target_page.anchors.contains(anchor) => {}
                    Some(target_page) => problems.push(format!(
                        "{}: link to {target}: {} has no heading with the anchor #{anchor} (it has: {})",
                        page.whence(*line),
                        resolved.display(),
                        target_page.anchors.iter().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    None => problems.push(format!(
                        "{}: link to {target}: anchors are only checked in the documentation pages",
                        page.whence(*line)
                    )),
                }
            }
        }
    }
    problems
}

/// `a/../b` → `b`, `./a` → `a`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_link_and_anchor_resolves() {
    let pages = documentation();
    let problems = link_problems(&pages);
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_page_of_docs_is_linked_from_the_readme() {
    let pages = documentation();
    let readme = pages
        .iter()
        .find(|p| p.path == Path::new("README.md"))
        .expect("README");
    let linked: BTreeSet<PathBuf> = readme
        .paragraphs
        .iter()
        .flat_map(|(_, p)| link_targets(&without_code(p)))
        .map(|t| normalize(Path::new(t.split('#').next().unwrap_or(""))))
        .collect();
    let missing: Vec<_> = pages
        .iter()
        .filter(|p| p.path.starts_with("docs"))
        .filter(|p| !linked.contains(&p.path))
        .map(|p| p.path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "not linked from README.md: {missing:?}");
    for page in ["SECURITY.md", "BENCHMARKS.md"] {
        assert!(
            linked.contains(Path::new(page)),
            "README.md does not link {page}"
        );
    }
}

#[test]
fn a_broken_link_or_anchor_is_found() {
    let page = parse_page(
        PathBuf::from("docs/example.md"),
        "# Example\n\nSee [the CLI](cli.md#no-such-heading), [gone](missing.md), \
         [here](#example) and [flags](webhook.md#flags-and-environment).\n",
    );
    let mut pages = documentation();
    pages.push(page);
    let problems: Vec<_> = link_problems(&pages)
        .into_iter()
        .filter(|p| p.starts_with("docs/example.md"))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("#no-such-heading"), "{problems:#?}");
    assert!(
        problems[1].contains("docs/missing.md does not exist"),
        "{problems:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Files named

/// The top-level directories whose files the documentation names by path.
const REPOSITORY_DIRS: &[&str] = &[
    "src/",
    "tests/",
    "deploy/",
    "benches/",
    "examples/",
    "policies/",
    "fuzz/",
    "docs/",
];

/// Every file or directory a page names that does not exist: code spans that are repository
/// paths (`src/engine/rule.rs`, `deploy/rbac/`, `examples/profile_review` for its `.rs`; a
/// `#anchor` or `:line` after it is dropped; a pattern with `*`, `{...}` or `<...>` is not a
/// path), and, in the plain-text diagrams of
/// docs/architecture.md, every Rust file (`server/handlers.rs`, under `src/`).
fn named_file_problems(pages: &[Page], root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |page: &Page, line: usize, path: &str| {
        let example = path.starts_with("examples/") && root.join(format!("{path}.rs")).exists();
        if !root.join(path).exists() && !example {
            problems.push(format!(
                "{}: names {path}, which does not exist",
                page.whence(line)
            ));
        }
    };
    for page in pages {
        for (line, paragraph) in &page.paragraphs {
            for span in code_spans(paragraph) {
                let path = span.split(['#', ':']).next().unwrap_or("");
                if REPOSITORY_DIRS.iter().any(|d| path.starts_with(d))
                    && !path.contains(['*', '<', '{', ' '])
                {
                    check(page, *line, path);
                }
            }
        }
        if page.path == Path::new("docs/architecture.md") {
            for block in page.blocks.iter().filter(|b| b.lang == "text") {
                for word in block.body.split(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.')
                }) {
                    if word.ends_with(".rs") {
                        let path = if word.starts_with("src/") {
                            word.to_owned()
                        } else {
                            format!("src/{word}")
                        };
                        check(page, block.line, &path);
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn every_file_named_exists() {
    let pages = documentation();
    let problems = named_file_problems(&pages, Path::new(ROOT));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_file_named_that_does_not_exist_is_found() {
    let page = parse_page(
        PathBuf::from("docs/architecture.md"),
        "# Example\n\nThe engine is `src/engine/evaluate.rs`, the router `src/server/router.rs`, \
         tests in `tests/fuzz_regressions/<target>/` and `docs/*.md`.\n\n\
         ```text\nserver/handlers.rs ──▶ admission/gone.rs\n```\n",
    );
    let problems = named_file_problems(&[page], Path::new(ROOT));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("src/server/router.rs"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("src/admission/gone.rs"),
        "{problems:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Policy documents

/// What a yaml block is, for the loader.
enum Yaml {
    /// Policies (and possibly exceptions), checked as a set of their own.
    Policies(String),
    /// Exceptions (no policies): checked with the default policies, which they refer to.
    Exceptions(String),
    /// `kind: PolicyTest` documents.
    Tests(String),
    /// Not a Portcullis document (a Kubernetes object, a kustomization, ...).
    Other,
}

fn classify(body: &str) -> Result<Yaml, String> {
    let mut kinds = BTreeSet::new();
    let mut snippet = None;
    for doc in serde_yaml_ng::Deserializer::from_str(body) {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("not valid YAML: {e}"))?;
        if value["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("portcullis.dev/"))
        {
            kinds.insert(value["kind"].as_str().unwrap_or("").to_owned());
        } else if let Some(items) = value.as_array() {
            let rules = items.iter().all(|item| {
                item.as_object().is_some_and(|m| {
                    m.len() == 1 && m.keys().all(|k| RULE_TYPES.contains(&k.as_str()))
                })
            });
            if rules && !items.is_empty() {
                snippet = Some(value.clone());
            }
        }
    }
    if let Some(rules) = snippet {
        let policy = json!({
            "apiVersion": "portcullis.dev/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": "docs-rule-snippet"},
            "spec": {"mode": "enforce", "rules": rules},
        });
        return serde_yaml_ng::to_string(&policy)
            .map(Yaml::Policies)
            .map_err(|e| e.to_string());
    }
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    match kinds.as_slice() {
        [] => Ok(Yaml::Other),
        ["PolicyTest"] => Ok(Yaml::Tests(body.to_owned())),
        ["PolicyException"] => Ok(Yaml::Exceptions(body.to_owned())),
        k if k.contains(&"Policy") && !k.contains(&"PolicyTest") => {
            Ok(Yaml::Policies(body.to_owned()))
        }
        k => Err(format!(
            "a mix of kinds the loader never reads together: {k:?}"
        )),
    }
}

/// Loads a classified block: Ok(()) when the loader (and its lint) accepts it.
fn load(yaml: &Yaml, name: &Path) -> Result<(), String> {
    match yaml {
        Yaml::Policies(text) => portcullis::lint::load_str(name, text)
            .map(drop)
            .map_err(|e| e.to_string()),
        Yaml::Exceptions(text) => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            for entry in
                std::fs::read_dir(Path::new(ROOT).join("policies")).map_err(|e| e.to_string())?
            {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let to = dir.path().join(path.file_name().unwrap_or_default());
                    std::fs::copy(&path, to).map_err(|e| e.to_string())?;
                }
            }
            std::fs::write(dir.path().join("zz-docs-exception.yaml"), text)
                .map_err(|e| e.to_string())?;
            portcullis::lint::load_dir(dir.path())
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Yaml::Tests(text) => {
            let (suites, problems) = portcullis::policytest::parse_file(name, text);
            if problems.is_empty() && !suites.is_empty() {
                Ok(())
            } else {
                Err(problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
        Yaml::Other => Ok(()),
    }
}

#[test]
fn every_policy_document_shown_is_accepted_by_the_loader() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in documentation() {
        for block in page
            .blocks
            .iter()
            .filter(|b| matches!(b.lang.as_str(), "yaml" | "yml"))
        {
            let whence = page.whence(block.line);
            let marker = block.marker.as_deref().unwrap_or("");
            if marker.starts_with("fragment") {
                continue;
            }
            let yaml = match classify(&block.body) {
                Ok(y) => y,
                Err(e) => {
                    problems.push(format!("{whence}: {e} (mark it <!-- docs: fragment (why) --> if it is meant to be partial)"));
                    continue;
                }
            };
            if matches!(yaml, Yaml::Other) {
                if block.body.contains("portcullis.dev/v1alpha1") {
                    problems.push(format!("{whence}: a Portcullis document the test cannot check: mark it <!-- docs: fragment (why) -->"));
                }
                continue;
            }
            checked += 1;
            let result = load(&yaml, Path::new(&whence));
            match (marker.starts_with("counter-example"), result) {
                (false, Err(e)) => problems.push(format!("{whence}: refused by the loader:\n{e}")),
                (true, Ok(())) => problems.push(format!(
                    "{whence}: marked as a counter-example, but the loader accepts it"
                )),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The policy format page alone shows a policy and seven rule snippets.
    assert!(checked >= 10, "only {checked} policy documents found");
}

#[test]
fn a_broken_policy_document_is_refused() {
    let yaml = classify("- requireProbes:\n    livenes: true\n").expect("a rule snippet");
    assert!(matches!(yaml, Yaml::Policies(_)));
    let err = load(&yaml, Path::new("example.md:1")).expect_err("a misspelled field");
    assert!(err.contains("unknown field `livenes`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Commands and flags

/// Splits a line into shell words (quotes removed, no expansion).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// The arguments of each Portcullis invocation on a command line (after `portcullis`,
/// `kubectl portcullis` or `cargo run ... --`). `pipes`: `|` separates commands (in a
/// synopsis it separates alternatives).
fn invocations(line: &str, pipes: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut segment: Vec<String> = Vec::new();
    let mut segments = Vec::new();
    for w in words(line) {
        let w = w.trim_start_matches("$(").to_owned();
        if w.starts_with('#') {
            break;
        }
        let separator = matches!(w.as_str(), "&&" | "||" | ";") || (pipes && w == "|");
        if separator {
            segments.push(std::mem::take(&mut segment));
            continue;
        }
        let end = w.ends_with(';');
        segment.push(w.trim_end_matches(';').to_owned());
        if end {
            segments.push(std::mem::take(&mut segment));
        }
    }
    segments.push(segment);
    for seg in segments {
        let mut rest: &[String] = &seg;
        while let Some(first) = rest.first() {
            let env = first.contains('=') && !first.starts_with('-');
            if first == "$" || first == "(" || first == "sudo" || env {
                rest = &rest[1..];
            } else {
                break;
            }
        }
        let args: Option<&[String]> = match rest {
            [first, args @ ..] if first == "portcullis" || first.ends_with("/portcullis") => {
                Some(args)
            }
            [kubectl, plugin, args @ ..] if kubectl == "kubectl" && plugin == "portcullis" => {
                Some(args)
            }
            [cargo, run, ..] if cargo == "cargo" && run == "run" => {
                let example = rest.iter().any(|w| w == "--example" || w == "--bin");
                rest.iter()
                    .position(|w| w == "--")
                    .filter(|_| !example)
                    .map(|i| &rest[i + 1..])
            }
            _ => None,
        };
        if let Some(args) = args {
            let args = args
                .iter()
                .take_while(|a| {
                    !(a.starts_with('>') || a.starts_with("2>") || a.starts_with('<') || *a == ")")
                })
                .map(|a| {
                    a.trim_end_matches("...")
                        .trim_matches(|c| matches!(c, '[' | ']' | '(' | ')' | ','))
                        .to_owned()
                })
                .filter(|a| !a.is_empty())
                .collect();
            out.push(args);
        }
    }
    out
}

/// Checks one invocation against clap's definition: the subcommand (and nested subcommand)
/// exists, and so does every flag, for that subcommand.
fn check_invocation(root: &clap::Command, args: &[String]) -> Result<(), String> {
    let mut cmd = root;
    let mut path = vec!["portcullis".to_owned()];
    let mut i = 0;
    while i < args.len() && cmd.has_subcommands() {
        let a = &args[i];
        if a.starts_with('-') {
            break;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                cmd = sub;
                path.push(a.clone());
                i += 1;
            }
            None => {
                return Err(format!(
                    "`{}` has no subcommand `{a}` (it has: {})",
                    path.join(" "),
                    cmd.get_subcommands()
                        .map(|s| s.get_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    for a in &args[i..] {
        if a == "-" || a == "--" || !a.starts_with('-') {
            continue;
        }
        for flag in a.split('/') {
            let known = if let Some(long) = flag.strip_prefix("--") {
                let long = long.split('=').next().unwrap_or("");
                cmd.get_arguments().any(|arg| {
                    arg.get_long_and_visible_aliases()
                        .is_some_and(|names| names.contains(&long))
                })
            } else if let Some(short) = flag.strip_prefix('-').and_then(|s| s.chars().next()) {
                cmd.get_arguments().any(|arg| {
                    arg.get_short_and_visible_aliases()
                        .is_some_and(|names| names.contains(&short))
                })
            } else {
                true
            };
            if !known {
                return Err(format!("`{}` has no flag `{flag}`", path.join(" ")));
            }
        }
    }
    Ok(())
}

fn cli() -> clap::Command {
    let mut cmd = portcullis::cli::Cli::command();
    cmd.build();
    cmd
}

/// Every Portcullis invocation of the pages: (where, arguments).
fn all_invocations(pages: &[Page]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for page in pages {
        for block in &page.blocks {
            let lang = block.lang.as_str();
            if !matches!(lang, "sh" | "bash" | "shell" | "console" | "text" | "") {
                continue;
            }
            let mut joined = String::new();
            for (n, line) in block.body.lines().enumerate() {
                let line = if lang == "console" {
                    match line.strip_prefix("$ ") {
                        Some(l) => l,
                        None => continue,
                    }
                } else {
                    line
                };
                if let Some(l) = line.strip_suffix('\\') {
                    joined.push_str(l);
                    continue;
                }
                joined.push_str(line);
                for args in invocations(&joined, lang != "text") {
                    out.push((page.whence(block.line + 1 + n), args));
                }
                joined.clear();
            }
        }
        for (line, paragraph) in &page.paragraphs {
            for span in code_spans(paragraph) {
                for args in invocations(span, true) {
                    out.push((page.whence(*line), args));
                }
            }
        }
    }
    out
}

#[test]
fn every_command_shown_names_a_subcommand_and_flags_that_exist() {
    let root = cli();
    let pages = documentation();
    let all = all_invocations(&pages);
    let problems: Vec<String> = all
        .iter()
        .filter_map(|(whence, args)| {
            check_invocation(&root, args)
                .err()
                .map(|e| format!("{whence}: portcullis {}: {e}", args.join(" ")))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every subcommand appears somewhere with a flag, so the check is not vacuous.
    for sub in ["serve", "audit", "mutate", "certs", "test", "policy"] {
        assert!(
            all.iter().any(|(_, a)| a.first().is_some_and(|s| s == sub)
                && a.iter().any(|f| f.starts_with("--"))),
            "no `portcullis {sub} --flag` found in the documentation"
        );
    }
}

#[test]
fn a_removed_flag_or_subcommand_is_found() {
    let root = cli();
    let page = parse_page(
        PathBuf::from("docs/example.md"),
        "# Example\n\nRun `portcullis audit --colour never k8s/`.\n\n```sh\n\
         portcullis audit -o json k8s/ | jq .\nkubectl portcullis mutate --diff -f app.yaml\n\
         portcullis policy check policies/\ncargo run --release -- serve --tls-cert-file x\n```\n",
    );
    let found = all_invocations(&[page]);
    let verdicts: Vec<_> = found
        .iter()
        .map(|(_, args)| check_invocation(&root, args))
        .collect();
    // The block's four invocations (jq is not one), then the inline one.
    assert_eq!(verdicts.len(), 5, "{found:?}");
    assert_eq!(verdicts[0], Ok(()), "{found:?}");
    assert_eq!(verdicts[1], Ok(()), "{found:?}");
    let errors: Vec<_> = verdicts.into_iter().filter_map(Result::err).collect();
    assert_eq!(
        errors,
        [
            "`portcullis policy` has no subcommand `check` (it has: validate, schema, export, help)",
            "`portcullis serve` has no flag `--tls-cert-file`",
            "`portcullis audit` has no flag `--colour`",
        ]
    );
}

/// The flag table of docs/webhook.md lists every flag of `portcullis serve` and nothing else,
/// each with clap's environment variable and, where the table gives one literally, its default.
#[test]
fn the_webhook_flag_table_is_the_serve_command() {
    let root = cli();
    let serve = root.find_subcommand("serve").expect("serve");
    let pages = documentation();
    let page = pages
        .iter()
        .find(|p| p.path == Path::new("docs/webhook.md"))
        .expect("docs/webhook.md");
    let mut documented = BTreeMap::new();
    for (line, row) in &page.paragraphs {
        let row = row.replace("\\|", "/");
        let cells: Vec<&str> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Some(flag) = cells.first().and_then(|c| c.strip_prefix("`--")) else {
            continue;
        };
        let flag = flag.split([' ', '`']).next().unwrap_or("").to_owned();
        let cell = |i: usize| cells.get(i).map(|c| (*c).to_owned());
        documented.insert(flag, (*line, cell(1), cell(2)));
    }
    let mut problems = Vec::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") || arg.is_hide_set() {
            continue;
        }
        let Some((line, env, default)) = documented.remove(long) else {
            problems.push(format!("--{long} is not in the table"));
            continue;
        };
        let env_clap = arg.get_env().map(|e| format!("`{}`", e.to_string_lossy()));
        if env_clap != env {
            problems.push(format!(
                "docs/webhook.md:{line}: --{long}: environment {env:?}, clap says {env_clap:?}"
            ));
        }
        let default_clap: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default_clap = default_clap.join(",");
        let literal = default
            .as_deref()
            .and_then(|d| d.strip_prefix('`'))
            .and_then(|d| d.strip_suffix('`'));
        if let Some(d) = literal
            && default_clap != d
        {
            problems.push(format!(
                "docs/webhook.md:{line}: --{long}: default `{d}`, clap says `{default_clap}`"
            ));
        }
    }
    for (flag, (line, _, _)) in documented {
        problems.push(format!(
            "docs/webhook.md:{line}: --{flag} is not a flag of `portcullis serve`"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The README's two commands

fn block_marked<'a>(pages: &'a [Page], path: &str, marker: &str) -> &'a Block {
    let page = pages
        .iter()
        .find(|p| p.path == Path::new(path))
        .expect(path);
    page.blocks
        .iter()
        .find(|b| b.marker.as_deref() == Some(marker))
        .unwrap_or_else(|| panic!("{path}: no block marked <!-- docs: {marker} -->"))
}

fn command_lines(body: &str) -> Vec<&str> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_readme_commands_are_the_ones_ci_and_the_suite_run() {
    let pages = documentation();
    let quickstart = block_marked(&pages, "README.md", "quickstart");
    assert_eq!(
        command_lines(&quickstart.body),
        ["cargo run --release -- serve", "cargo test"],
        "the README's quick start is two commands"
    );
    // CI runs the README's test command (with --locked), after the checks docs/development.md
    // lists, exactly as listed.
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect(".ci/run");
    let ci_commands: Vec<&str> = command_lines(&ci);
    let listed = block_marked(&pages, "docs/development.md", "ci");
    let listed = command_lines(&listed.body);
    assert_eq!(listed.last(), Some(&"cargo test --locked"));
    for command in listed {
        assert!(
            ci_commands.contains(&command),
            "docs/development.md lists `{command}`, which .ci/run does not run"
        );
    }
}

/// The README's first command as a newcomer runs it, in a directory holding only `policies/`:
/// no flags (the ports come from their environment variables, so that tests running beside it
/// cannot collide), a development certificate generated, and the README's curl answered with
/// the denial the README shows.
#[test]
fn serve_without_flags_answers_the_readme_curl() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(ROOT).join("policies"),
        &dir.path().join("policies"),
    );
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    };
    let (addr, admin) = (port(), port());
    let mut command = Command::new(PORTCULLIS);
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("PORTCULLIS_ADDR", addr.to_string())
        .env("PORTCULLIS_ADMIN_ADDR", admin.to_string())
        .env_remove("KUBECONFIG")
        .stdout(std::fs::File::create(dir.path().join("stdout")).expect("stdout file"))
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("PORTCULLIS_") && !key.ends_with("ADDR") {
            command.env_remove(key);
        }
    }
    let mut child = command.spawn().expect("portcullis serve");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let printed = loop {
            let printed = std::fs::read_to_string(dir.path().join("stdout")).unwrap_or_default();
            if printed.contains("LS0t") {
                break printed;
            }
            assert!(Instant::now() < deadline, "nothing printed: {printed}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            printed.starts_with("No --tls-cert/--tls-key given: generated the development CA"),
            "{printed}"
        );
        assert!(
            printed.contains("caBundle for a webhook configuration:"),
            "{printed}"
        );
        let ca = std::fs::read_to_string(dir.path().join(".portcullis-dev/ca.crt"))
            .expect(".portcullis-dev/ca.crt");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA"))
                .resolve("localhost", addr)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ready = client
                    .get(format!("http://{admin}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ready {
                    break;
                }
                assert!(Instant::now() < deadline, "never ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Every metric the server exposes is in docs/webhook.md's table (counters are
            // documented with their `_total` samples).
            let metrics = client
                .get(format!("http://{admin}/metrics"))
                .send()
                .await
                .expect("/metrics")
                .text()
                .await
                .expect("text");
            let documented = documented_metrics();
            for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
                let mut parts = line.split_whitespace().skip(2);
                let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let name = if kind == "counter" {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                assert!(
                    documented.contains(&name),
                    "{name} is not in docs/webhook.md's metric table"
                );
            }
            let body = std::fs::read(
                Path::new(ROOT).join("tests/fixtures/admission/validate-create-pod-bare.json"),
            )
            .expect("fixture");
            let answer: Value = client
                .post(format!("https://localhost:{}/validate", addr.port()))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("the README's curl")
                .json()
                .await
                .expect("json");
            assert_eq!(answer["response"]["allowed"], false, "{answer}");
            assert_eq!(answer["response"]["status"]["code"], 403, "{answer}");
            let message = answer["response"]["status"]["message"]
                .as_str()
                .expect("message");
            let pages = documentation();
            let readme = pages
                .iter()
                .find(|p| p.path == Path::new("README.md"))
                .expect("README");
            let shown = readme
                .blocks
                .iter()
                .find(|b| b.lang == "text" && b.body.starts_with("Portcullis denied"))
                .expect("the README shows the denial");
            let actual: Vec<&str> = message.lines().collect();
            let shown: Vec<&str> = shown.body.lines().collect();
            assert!(
                glob_lines(&shown, &actual),
                "the README shows:\n{}\nthe webhook answers:\n{message}",
                shown.join("\n")
            );
        });
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output blocks

/// `expected` matches `actual` line by line; a line `...` in `expected` matches any number of
/// lines.
fn glob_lines(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e.trim() == "..." => {
            (0..=actual.len()).any(|skip| glob_lines(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| a.trim_end() == e.trim_end() && glob_lines(rest, more)),
    }
}

/// The commands of a console block, each with the output it shows.
fn console_steps(body: &str) -> Vec<(String, Vec<&str>)> {
    let mut steps: Vec<(String, Vec<&str>)> = Vec::new();
    for line in body.lines() {
        match line.strip_prefix("$ ") {
            Some(command) => steps.push((command.to_owned(), Vec::new())),
            None => {
                if let Some((_, out)) = steps.last_mut() {
                    out.push(line);
                }
            }
        }
    }
    steps
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[test]
fn output_blocks_print_what_they_show() {
    let bin = Path::new(PORTCULLIS).parent().expect("binary directory");
    let path = std::env::join_paths(
        std::iter::once(bin.to_path_buf()).chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )
    .expect("PATH");
    let mut problems = Vec::new();
    let mut ran = 0;
    for page in documentation() {
        for block in page
            .blocks
            .iter()
            .filter(|b| b.marker.as_deref() == Some("output"))
        {
            let whence = page.whence(block.line);
            assert_eq!(
                block.lang, "console",
                "{whence}: an output block is a console block"
            );
            let mut status = None;
            for (command, shown) in console_steps(&block.body) {
                if command == "echo $?" {
                    let code = status.map(|c: i32| c.to_string()).unwrap_or_default();
                    if shown != [code.as_str()] {
                        problems.push(format!(
                            "{whence}: exit code {code}, the block shows {shown:?}"
                        ));
                    }
                    continue;
                }
                if words(&command).iter().any(|w| w == "jq") && !on_path("jq") {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "{whence}: `{command}` needs jq (apt-get install jq)"
                    );
                    eprintln!("{whence}: skipped, jq is not installed: {command}");
                    continue;
                }
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(format!("{{ {command} ; }} 2>&1"))
                    .current_dir(ROOT)
                    .env("PATH", &path)
                    .env("NO_COLOR", "1")
                    .env_remove("PORTCULLIS_POLICIES")
                    .output()
                    .expect("sh");
                ran += 1;
                status = out.status.code();
                let printed = String::from_utf8_lossy(&out.stdout);
                let actual: Vec<&str> = printed.lines().collect();
                if !glob_lines(&shown, &actual) {
                    problems.push(format!(
                        "{whence}: `{command}`\n--- the block shows:\n{}\n--- it prints:\n{printed}",
                        shown.join("\n")
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(ran >= 5, "only {ran} commands run");
}

#[test]
fn output_matching_allows_gaps_only_where_shown() {
    assert!(glob_lines(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(glob_lines(&["a", "...", "b"], &["a", "b"]));
    assert!(!glob_lines(&["a", "d"], &["a", "b", "d"]));
    assert!(!glob_lines(&["a", "..."], &["b"]));
}

// ---------------------------------------------------------------------------------------------
// What kubectl prints on a dry run: the webhook's own words

/// The answers of both endpoints for `object` (CREATE in its namespace), judged as the webhook
/// judges it: `(warnings of /mutate, then of /validate; the denial message, if any)`.
fn dry_run(
    policies: &portcullis::policy::PolicySet,
    object: &Value,
) -> (Vec<String>, Option<String>) {
    use portcullis::telemetry::Endpoint;
    let namespace = object["metadata"]["namespace"].clone();
    let mut answers = Vec::new();
    for (endpoint, fixture) in [
        (Endpoint::Mutate, "mutate-create-deployment.json"),
        (Endpoint::Validate, "validate-create-deployment.json"),
    ] {
        let path = Path::new(ROOT)
            .join("tests/fixtures/admission")
            .join(fixture);
        let mut review: Value =
            serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
        review["request"]["object"] = object.clone();
        review["request"]["namespace"] = namespace.clone();
        review["request"]["name"] = object["metadata"]["name"].clone();
        let body = serde_json::to_vec(&review).expect("encode");
        let handled = portcullis::admission::handle(
            endpoint,
            policies,
            &body,
            portcullis::policy::Timestamp::now(),
        )
        .expect("answered");
        answers.push(serde_json::from_slice::<Value>(&handled.body).expect("answer"));
    }
    let warnings = answers
        .iter()
        .flat_map(|a| {
            a["response"]["warnings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|w| w.as_str().unwrap_or_default().to_owned())
        .collect();
    let denial = answers[1]["response"]["status"]["message"]
        .as_str()
        .filter(|_| answers[1]["response"]["allowed"] == false)
        .map(str::to_owned);
    (warnings, denial)
}

fn console_block<'a>(pages: &'a [Page], path: &str, starts_with: &str) -> &'a str {
    let page = pages
        .iter()
        .find(|p| p.path == Path::new(path))
        .expect(path);
    &page
        .blocks
        .iter()
        .find(|b| b.lang == "console" && b.body.starts_with(starts_with))
        .unwrap_or_else(|| panic!("{path}: no console block starting with {starts_with:?}"))
        .body
}

fn warning_lines(block: &str) -> Vec<String> {
    block
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .map(str::to_owned)
        .collect()
}

/// `kubectl create deployment web --image=nginx:1.27 -n shop --dry-run=client -o yaml`.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": {"app": "web"}, "name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"image": "nginx:1.27", "name": "nginx", "resources": {}}]},
            },
        },
    })
}

/// docs/deploying.md's dry runs (the default policies deny; under the audit-first overlay's
/// `--max-mode warn` both webhooks warn) and the README's (`require-image-tag` in `warn`) show
/// the webhook's own words, in kubectl's order (mutating webhook first).
#[test]
fn dry_run_examples_show_what_the_webhook_answers() {
    let pages = documentation();
    let defaults = portcullis::lint::load_dir(&Path::new(ROOT).join("policies")).expect("defaults");

    let denied = console_block(&pages, "docs/deploying.md", "Error from server (Forbidden)");
    let (_, denial) = dry_run(&defaults, &created_deployment());
    let denial = denial.expect("the default policies deny it");
    let shown = denied
        .split_once("denied the request: ")
        .map(|(_, m)| m.trim_end())
        .expect("the denial message");
    assert_eq!(shown, denial);

    let warned = console_block(&pages, "docs/deploying.md", "Warning: would apply");
    let audit_first = defaults
        .clone()
        .with_max_mode(portcullis::policy::model::Mode::Warn);
    let (warnings, denial) = dry_run(&audit_first, &created_deployment());
    assert_eq!(denial, None);
    assert_eq!(warning_lines(warned), warnings);
    assert!(
        warned
            .trim_end()
            .ends_with("deployment.apps/web created (server dry run)")
    );

    // The README: policies/optional-rules.yaml's require-image-tag switched to warn, and a
    // Deployment with probes and resources (tests/manifests/apps/shop/web.yaml) on nginx:latest.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&Path::new(ROOT).join("policies"), dir.path());
    let optional = dir.path().join("optional-rules.yaml");
    let text = std::fs::read_to_string(&optional).expect("optional-rules.yaml");
    let switched = text.replacen("mode: \"off\"", "mode: warn", 1);
    assert!(switched.find("mode: warn") < switched.find("name: disallow-default-namespace"));
    std::fs::write(&optional, switched).expect("write");
    let set =
        portcullis::lint::load_dir(dir.path()).expect("policies with require-image-tag in warn");
    // The README's policy file is that policy, switched to warn.
    let readme_policy = pages
        .iter()
        .find(|p| p.path == Path::new("README.md"))
        .and_then(|p| p.blocks.iter().find(|b| b.lang == "yaml"))
        .expect("the README's policy file");
    let shown: Value = serde_yaml_ng::from_str(&readme_policy.body).expect("yaml");
    let switched = std::fs::read_to_string(&optional).expect("optional-rules.yaml");
    let shipped = serde_yaml_ng::Deserializer::from_str(&switched)
        .next()
        .expect("a document");
    let shipped: Value = serde::Deserialize::deserialize(shipped).expect("yaml");
    assert_eq!(
        shown, shipped,
        "README.md's policy is policies/optional-rules.yaml's first, in warn"
    );
    let manifest =
        std::fs::read_to_string(Path::new(ROOT).join("tests/manifests/apps/shop/web.yaml"))
            .expect("web.yaml");
    let first = serde_yaml_ng::Deserializer::from_str(&manifest)
        .next()
        .expect("a document");
    let mut web: Value = serde::Deserialize::deserialize(first).expect("yaml");
    web["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:latest");
    let readme = console_block(&pages, "README.md", "$ kubectl apply --dry-run=server");
    let (warnings, denial) = dry_run(&set, &web);
    assert_eq!(denial, None);
    assert_eq!(warning_lines(readme), warnings);
    assert!(
        readme
            .trim_end()
            .ends_with("deployment.apps/web created (server dry run)")
    );
}

/// Every `PORTCULLIS_*` variable the pages name is read by the binary (clap's `env` of some
/// flag) or by the test and benchmark harnesses (tests/, benches/, .ci/run).
#[test]
fn every_environment_variable_named_exists() {
    fn envs(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            envs(sub, out);
        }
    }
    let mut known = BTreeSet::new();
    envs(&cli(), &mut known);
    let mut harness = String::new();
    fn read_all(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry"))
        {
            let path = entry.path();
            if path.is_dir() {
                read_all(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "sh")
                && !path.ends_with("tests/docs.rs")
            {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    for dir in ["tests", "benches"] {
        read_all(&Path::new(ROOT).join(dir), &mut harness);
    }
    harness.push_str(&std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect(".ci/run"));
    let mut problems = Vec::new();
    for page in documentation() {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&page.path)).expect("page");
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("PORTCULLIS_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                if !known.contains(&name) && !harness.contains(&name) {
                    problems.push(format!("{}: {name} is read by nothing", page.whence(i + 1)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// The metric names of docs/webhook.md's table (`portcullis_...`).
fn documented_metrics() -> BTreeSet<String> {
    let pages = documentation();
    let page = pages
        .iter()
        .find(|p| p.path == Path::new("docs/webhook.md"))
        .expect("docs/webhook.md");
    page.paragraphs
        .iter()
        .filter_map(|(_, row)| row.trim().strip_prefix("| `portcullis_"))
        .map(|rest| format!("portcullis_{}", rest.split('`').next().unwrap_or("")))
        .collect()
}

/// The metric table of docs/webhook.md names exactly the metrics src/telemetry.rs registers
/// (counters with `_total`, metrics registered with a unit with `_seconds`).
#[test]
fn the_metric_table_is_what_the_server_registers() {
    let source =
        std::fs::read_to_string(Path::new(ROOT).join("src/telemetry.rs")).expect("telemetry.rs");
    let mut registered = BTreeSet::new();
    for call in [".register(", ".register_with_unit("] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at + call.len()..];
            let name = rest
                .split('"')
                .nth(1)
                .expect("a metric name after register(");
            registered.insert((name.to_owned(), call.contains("unit")));
        }
    }
    assert!(registered.len() >= 30, "{registered:?}");
    let mut documented = documented_metrics();
    let mut problems = Vec::new();
    for (name, unit) in &registered {
        let base = format!("portcullis_{name}");
        let candidates = if *unit {
            vec![format!("{base}_seconds")]
        } else {
            vec![format!("{base}_total"), base]
        };
        match candidates.iter().find(|c| documented.contains(*c)) {
            Some(found) => {
                documented.remove(&found.clone());
            }
            None => problems.push(format!(
                "{} is not in docs/webhook.md's metric table",
                candidates.join(" or ")
            )),
        }
    }
    for name in documented {
        problems.push(format!(
            "docs/webhook.md names {name}, which src/telemetry.rs does not register"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The README's screenshot of the HTML report

/// `docs/images/report.png` is a screenshot of the page `docs/images/report.png.txt`'s command
/// prints, made by the command the README gives: the page rendered now must have the SHA-256
/// recorded when the screenshot was taken, so any change to what the page shows needs a new
/// screenshot.
#[test]
fn the_readme_screenshot_is_of_the_current_report() {
    const REMAKE: &str = "cargo build && cargo run --example report_screenshot";
    let note = std::fs::read_to_string(Path::new(ROOT).join("docs/images/report.png.txt"))
        .expect("docs/images/report.png.txt");
    let field = |name: &str| {
        note.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("docs/images/report.png.txt has no {name:?} line"))
            .trim()
            .to_owned()
    };
    let command = field("command: portcullis ");
    let recorded = field("sha256: ");
    let args: Vec<&str> = command.split_whitespace().collect();
    let out = Command::new(PORTCULLIS)
        .args(&args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .output()
        .expect("run portcullis");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "portcullis {command}: {out:?}"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &out.stdout);
    let now: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        now, recorded,
        "the HTML report of `portcullis {command}` changed since docs/images/report.png was taken: run `{REMAKE}` and commit the new picture"
    );
    let png = std::fs::read(Path::new(ROOT).join("docs/images/report.png")).expect("the PNG");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "docs/images/report.png is not a PNG"
    );
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    assert!(
        readme.contains("docs/images/report.png"),
        "the README shows the screenshot"
    );
    assert!(
        readme.contains(REMAKE),
        "the README says how the screenshot is made"
    );
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples/report_screenshot.rs"))
        .expect("the example");
    let listed = args.iter().all(|a| example.contains(&format!("\"{a}\"")));
    assert!(
        listed,
        "examples/report_screenshot.rs renders `portcullis {command}`"
    );
}
