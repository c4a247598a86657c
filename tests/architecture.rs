//! The module graph of `src/` has no cycles: at every level, the modules that share a parent
//! (the crate's top-level modules `admission`, `audit`, `cluster`, `engine`, `policy`,
//! `server`, ...; the submodules of each of them; theirs in turn) depend on one another one way
//! only. A cycle is printed with the file and line of every reference it is made of.
//!
//! What counts as a dependency of module A on module B: a reference, in A's code, to B or to
//! anything inside B, written as
//! - a `use` declaration (`use crate::server::AppState;`, `use super::content::{self, X};`,
//!   `pub use state::AppState;`, inside functions and test modules too), or
//! - a path in code starting with `crate::`, `super::` or `self::` (in expressions, types,
//!   patterns, and in the tokens of macro calls such as `tracing::warn!`).
//!
//! Files are parsed with `syn`, so comments and doc comments (`[`crate::cluster`]` links
//! included) are not code and never count, nor are string literals. A path is followed through
//! re-exports (`crate::cluster::Connection` is `cluster::connect`'s), and through the `use`s of
//! the module it names, to the module that defines what it names. A reference from a module to
//! one of its ancestors or descendants (`super::Config` from a submodule, a `mod.rs` naming its
//! children) is not between siblings, so it does not count: the parent is their shared facade.
//!
//! And the top-level modules use one another only as the layer table of docs/architecture.md
//! says (every use listed, every listed use made).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

/// Cycles being removed, each allowed exactly as it is: the parent module, then its submodules
/// that form the cycle. The test fails when such a cycle grows, shrinks or is gone, so that its
/// entry is updated or deleted.
const ALLOWED_CYCLES: &[(&str, &[&str])] = &[];

/// A module by its path from the crate root (`[]` is the crate, `["cluster", "reports"]`
/// is `crate::cluster::reports`).
type ModPath = Vec<String>;

/// A path as written, where it was written.
#[derive(Debug, Clone)]
struct Written {
    /// The module whose code it is in.
    scope: ModPath,
    /// Its segments (`crate`, `super`, `self` included; a glob as `*`).
    segments: Vec<String>,
    file: PathBuf,
    line: usize,
    /// A `use` declaration (its first segment may also be a child module or an import).
    is_use: bool,
}

/// One reference from a module to another, with where it is.
#[derive(Debug, Clone)]
struct Reference {
    from: ModPath,
    to: ModPath,
    file: PathBuf,
    line: usize,
    text: String,
}

/// Everything read from `src/`.
#[derive(Default)]
struct Crate {
    modules: BTreeSet<ModPath>,
    /// Per module: the names its `use` declarations bring in.
    imports: BTreeMap<ModPath, BTreeMap<String, Written>>,
    written: Vec<Written>,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's source files under `dir`, by path relative to `src/`, sorted.
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).expect("under src/").to_path_buf());
        }
    }
}

/// The module of a file (`lib.rs`, `a.rs` or `a/mod.rs`, `a/b.rs`); `None` for `main.rs`,
/// the binary's root (another crate).
fn module_of_file(relative: &Path) -> Option<ModPath> {
    let mut module: ModPath = relative
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    match module.last().map(String::as_str) {
        Some("main") if module.len() == 1 => return None,
        Some("lib") if module.len() == 1 => module.clear(),
        Some("mod") => {
            module.pop();
        }
        _ => {}
    }
    Some(module)
}

fn line_of(span: proc_macro2::Span) -> usize {
    span.start().line
}

/// Collects the modules, `use`s and paths of one file.
struct FileVisitor<'a> {
    krate: &'a mut Crate,
    file: PathBuf,
    scope: ModPath,
}

impl FileVisitor<'_> {
    fn record(&mut self, segments: Vec<String>, line: usize, is_use: bool) {
        self.krate.written.push(Written {
            scope: self.scope.clone(),
            segments,
            file: self.file.clone(),
            line,
            is_use,
        });
    }

    /// The leaves of a `use` tree, each as a full path with the name it brings in.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, line_of(p.ident.span()).max(line));
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                self.use_leaf(prefix, &name, &name, line_of(n.ident.span()));
            }
            syn::UseTree::Rename(r) => {
                let alias = r.rename.to_string();
                self.use_leaf(
                    prefix,
                    &r.ident.to_string(),
                    &alias,
                    line_of(r.ident.span()),
                );
            }
            syn::UseTree::Glob(g) => {
                let mut segments = prefix.clone();
                segments.push("*".to_owned());
                self.record(segments, line_of(g.star_token.spans[0]), true);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, line);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], name: &str, alias: &str, line: usize) {
        // `use a::b::{self}` names `a::b`.
        let mut segments = prefix.to_vec();
        if name != "self" {
            segments.push(name.to_owned());
        }
        let alias = if alias == "self" {
            prefix.last().cloned().unwrap_or_default()
        } else {
            alias.to_owned()
        };
        let written = Written {
            scope: self.scope.clone(),
            segments: segments.clone(),
            file: self.file.clone(),
            line,
            is_use: true,
        };
        if alias != "_" {
            self.krate
                .imports
                .entry(self.scope.clone())
                .or_default()
                .insert(alias, written);
        }
        self.record(segments, line, true);
    }

    /// `crate::a::b`, `super::a`, `self::a` in the tokens of a macro call.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            if let TokenTree::Group(g) = &trees[i] {
                self.tokens(g.stream());
                i += 1;
                continue;
            }
            let start = match &trees[i] {
                TokenTree::Ident(id)
                    if matches!(id.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    id.clone()
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            let mut segments = vec![start.to_string()];
            let mut j = i + 1;
            while let (
                Some(TokenTree::Punct(a)),
                Some(TokenTree::Punct(b)),
                Some(TokenTree::Ident(id)),
            ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
            {
                if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':' {
                    break;
                }
                segments.push(id.to_string());
                j += 3;
            }
            if segments.len() > 1 {
                self.record(segments, line_of(start.span()), false);
            }
            i = j.max(i + 1);
        }
    }
}

impl<'ast> Visit<'ast> for FileVisitor<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let mut scope = self.scope.clone();
        scope.push(m.ident.to_string());
        self.krate.modules.insert(scope.clone());
        if m.content.is_some() {
            let outer = std::mem::replace(&mut self.scope, scope);
            syn::visit::visit_item_mod(self, m);
            self.scope = outer;
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree, line_of(u.use_token.span));
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(first) = path.segments.first()
            && path.leading_colon.is_none()
            && matches!(first.ident.to_string().as_str(), "crate" | "super" | "self")
            && path.segments.len() > 1
        {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.record(segments, line_of(first.ident.span()), false);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    // `pub(in crate::x)` restricts visibility; it uses nothing.
    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}

    // Attributes: doc comments (and their links), derives, lints. Not code that uses a module.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

/// Reads the files (path relative to `src/`, text) of a crate.
fn read_crate_from(files: &[(PathBuf, String)]) -> Crate {
    let mut krate = Crate::default();
    krate.modules.insert(Vec::new());
    let files: Vec<(&PathBuf, ModPath, &String)> = files
        .iter()
        .filter_map(|(path, text)| Some((path, module_of_file(path)?, text)))
        .collect();
    for (_, module, _) in &files {
        krate.modules.insert(module.clone());
    }
    for (path, module, text) in files {
        let file = syn::parse_file(text)
            .unwrap_or_else(|e| panic!("cannot parse src/{}: {e}", path.display()));
        let mut visitor = FileVisitor {
            krate: &mut krate,
            file: Path::new("src").join(path),
            scope: module,
        };
        visitor.visit_file(&file);
    }
    krate
}

/// Reads `src/`.
fn read_crate() -> Crate {
    let mut paths = Vec::new();
    source_files(&src(), &mut paths);
    let files: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(src().join(&p))
                .unwrap_or_else(|e| panic!("cannot read src/{}: {e}", p.display()));
            (p, text)
        })
        .collect();
    read_crate_from(&files)
}

impl Crate {
    /// The absolute path a written path names (`None`: outside the crate).
    fn absolute(&self, w: &Written, depth: usize) -> Option<Vec<String>> {
        let (first, rest) = w.segments.split_first()?;
        let mut base = w.scope.clone();
        let rest = match first.as_str() {
            "crate" => {
                base.clear();
                rest
            }
            "self" => rest,
            "super" => {
                base.pop()?;
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                rest
            }
            name if w.is_use => {
                let mut child = w.scope.clone();
                child.push(name.to_owned());
                if self.modules.contains(&child) {
                    &w.segments[..]
                } else {
                    let import = self.imports.get(&w.scope)?.get(name)?;
                    if depth > 16 || std::ptr::eq(import, w) {
                        return None;
                    }
                    let mut target = self.absolute(import, depth + 1)?;
                    target.extend(rest.iter().cloned());
                    return Some(target);
                }
            }
            _ => return None,
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module that defines what an absolute path names, following re-exports.
    fn module_of(&self, path: &[String], depth: usize) -> ModPath {
        let mut module: ModPath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.modules.contains(&child) {
                module = child;
                continue;
            }
            if depth < 16
                && let Some(import) = self.imports.get(&module).and_then(|m| m.get(segment))
                && let Some(mut target) = self.absolute(import, 0)
            {
                target.extend(path[i + 1..].iter().cloned());
                return self.module_of(&target, depth + 1);
            }
            break;
        }
        module
    }

    fn references(&self) -> Vec<Reference> {
        self.written
            .iter()
            .filter_map(|w| {
                let absolute = self.absolute(w, 0)?;
                Some(Reference {
                    from: w.scope.clone(),
                    to: self.module_of(&absolute, 0),
                    file: w.file.clone(),
                    line: w.line,
                    text: w.segments.join("::"),
                })
            })
            .collect()
    }
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Per parent module: the edges between its children, each with its references.
type Levels = BTreeMap<ModPath, BTreeMap<(String, String), Vec<Reference>>>;

fn levels(references: Vec<Reference>) -> Levels {
    let mut levels: Levels = BTreeMap::new();
    for r in references {
        let shared = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
        // One inside the other (or the same module): not between siblings.
        if shared == r.from.len() || shared == r.to.len() {
            continue;
        }
        let parent = r.from[..shared].to_vec();
        let edge = (r.from[shared].clone(), r.to[shared].clone());
        levels
            .entry(parent)
            .or_default()
            .entry(edge)
            .or_default()
            .push(r);
    }
    levels
}

/// The strongly connected components of more than one node (Tarjan).
fn cycles(nodes: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeSet<(String, String)>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            let next: Vec<&'a str> = self
                .edges
                .iter()
                .filter(|(a, _)| a == v)
                .map(|(_, b)| b.as_str())
                .collect();
            for w in next {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for n in nodes {
        if !t.index.contains_key(n.as_str()) {
            t.visit(n);
        }
    }
    t.out
}

/// One cycle through the first module of a component: the shortest way back to it.
fn one_cycle(component: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> Vec<String> {
    let start = component.first().expect("a component has modules").clone();
    // Breadth first from `start` inside the component, until an edge leads back to it.
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut frontier = vec![start.clone()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for v in frontier {
            for (_, w) in edges
                .iter()
                .filter(|(a, b)| *a == v && component.contains(b))
            {
                if *w == start {
                    let mut cycle = vec![v.clone()];
                    let mut at = v.clone();
                    while let Some(prev) = came_from.get(&at) {
                        cycle.push(prev.clone());
                        at = prev.clone();
                    }
                    cycle.reverse();
                    return cycle;
                }
                if !came_from.contains_key(w) && *w != start {
                    came_from.insert(w.clone(), v.clone());
                    next.push(w.clone());
                }
            }
        }
        frontier = next;
    }
    unreachable!("a strongly connected component has a cycle through each of its modules")
}

fn describe(
    parent: &[String],
    component: &BTreeSet<String>,
    edges: &BTreeMap<(String, String), Vec<Reference>>,
) -> String {
    let set: BTreeSet<(String, String)> = edges.keys().cloned().collect();
    let cycle = one_cycle(component, &set);
    let qualified = |m: &str| {
        let mut p = parent.to_vec();
        p.push(m.to_owned());
        name(&p)
    };
    let mut out = format!(
        "import cycle between the modules of {}: {} -> {}\n",
        name(parent),
        cycle
            .iter()
            .map(|m| qualified(m))
            .collect::<Vec<_>>()
            .join(" -> "),
        qualified(&cycle[0]),
    );
    for (i, from) in cycle.iter().enumerate() {
        let to = &cycle[(i + 1) % cycle.len()];
        let refs = &edges[&(from.clone(), to.clone())];
        out += &format!("  {} -> {}:\n", qualified(from), qualified(to));
        for r in refs.iter().take(6) {
            out += &format!(
                "    {}:{}: {} (in {})\n",
                r.file.display(),
                r.line,
                r.text,
                name(&r.from)
            );
        }
        if refs.len() > 6 {
            out += &format!("    ... and {} more\n", refs.len() - 6);
        }
    }
    if component.len() > cycle.len() {
        out += &format!(
            "  (the cycle's component also holds: {})\n",
            component
                .iter()
                .filter(|m| !cycle.contains(m))
                .map(|m| qualified(m))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// Every cycle at every level, as text, and the allowed cycles seen.
fn find_cycles(krate: &Crate) -> (Vec<String>, BTreeSet<(String, BTreeSet<String>)>) {
    let mut problems = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for (parent, edges) in levels(krate.references()) {
        let nodes: BTreeSet<String> = edges
            .keys()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        let set: BTreeSet<(String, String)> = edges.keys().cloned().collect();
        for component in cycles(&nodes, &set) {
            let allowed = ALLOWED_CYCLES.iter().any(|(p, members)| {
                *p == name(&parent)
                    && members
                        .iter()
                        .map(|m| (*m).to_owned())
                        .collect::<BTreeSet<_>>()
                        == component
            });
            if allowed {
                allowed_seen.insert((name(&parent), component));
            } else {
                problems.push(describe(&parent, &component, &edges));
            }
        }
    }
    (problems, allowed_seen)
}

#[test]
fn no_import_cycle_between_modules() {
    let krate = read_crate();
    let (mut problems, allowed_seen) = find_cycles(&krate);
    for (parent, members) in ALLOWED_CYCLES {
        let members: BTreeSet<String> = members.iter().map(|m| (*m).to_owned()).collect();
        if !allowed_seen.contains(&((*parent).to_owned(), members.clone())) {
            problems.push(format!(
                "the allowed cycle between {parent}'s {members:?} is not there as listed (gone, or \
                 changed: see the cycles above if any): update or delete its entry in ALLOWED_CYCLES"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "\n{}\nA module may use another only if that one does not use it back, directly or \
         through others (tests/architecture.rs says what counts).",
        problems.join("\n")
    );
}

/// What counts, on a small crate: `use` (through a re-export), paths in code and in macro
/// calls, `super::super::`; not doc comments, doc links, comments or strings. And the cycle is
/// printed by file and line.
#[test]
fn imports_count_and_comments_do_not() {
    let files = [
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n"),
        (
            "a.rs",
            "//! See [`crate::d`].\n\
             use crate::b::Thing;\n\
             fn f() -> u8 { log!(\"{}\", crate::c::g()); 1 }\n\
             /// [`crate::d::x`] and crate::d::y\n\
             fn h() {} // crate::d::z\n\
             const S: &str = \"crate::d::w\";\n\
             #[cfg(test)]\nmod tests { use super::*; }\n",
        ),
        ("b/mod.rs", "mod inner;\npub use inner::Thing;\n"),
        (
            "b/inner.rs",
            "pub struct Thing;\nfn k() -> u8 {\n    super::super::a::f()\n}\n",
        ),
        ("c.rs", "pub fn g() -> u8 { 0 }\n"),
        ("d.rs", "pub fn x() {}\n"),
        ("main.rs", "use portcullis::a;\nfn main() {}\n"),
    ];
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    let krate = read_crate_from(&files);
    let mut found: Vec<(String, String, String)> = krate
        .references()
        .iter()
        .map(|r| {
            (
                name(&r.from),
                name(&r.to),
                format!("{}:{}", r.file.display(), r.line),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("a", "b::inner", "src/a.rs:2"),
        ("a", "c", "src/a.rs:3"),
        ("a::tests", "a", "src/a.rs:8"),
        ("b", "b::inner", "src/b/mod.rs:2"),
        ("b::inner", "a", "src/b/inner.rs:3"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(found, expected);
    let (problems, _) = find_cycles(&krate);
    assert_eq!(
        problems,
        ["import cycle between the modules of crate: a -> b -> a\n  \
          a -> b:\n    src/a.rs:2: crate::b::Thing (in a)\n  \
          b -> a:\n    src/b/inner.rs:3: super::super::a::f (in b::inner)\n"]
    );
}

// ---------------------------------------------------------------------------------------------
// The layers of docs/architecture.md

/// The layer table of docs/architecture.md (after `<!-- architecture: layers -->`): each
/// top-level module with the top-level modules it may use.
fn documented_layers(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let table = page
        .split("<!-- architecture: layers -->")
        .nth(1)
        .expect("docs/architecture.md has no `<!-- architecture: layers -->` table");
    let mut layers = BTreeMap::new();
    for row in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [module, _job, uses] = cells[..] else {
            panic!("docs/architecture.md: a layer row of other than three cells: {row}");
        };
        let names = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let module = names(module)
            .pop()
            .unwrap_or_else(|| panic!("docs/architecture.md: no module in row {row}"));
        layers.insert(module, names(uses).into_iter().collect());
    }
    layers
}

/// Where the code and the layer table disagree: a top-level module using another the table does
/// not let it use (with where), a listed use the code does not make, a module missing from the
/// table or a row for a module that does not exist.
fn layer_problems(krate: &Crate, layers: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut used: BTreeMap<(String, String), Reference> = BTreeMap::new();
    for r in krate.references() {
        if let (Some(from), Some(to)) = (r.from.first(), r.to.first())
            && from != to
        {
            used.entry((from.clone(), to.clone())).or_insert(r);
        }
    }
    let modules: BTreeSet<String> = krate
        .modules
        .iter()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].clone())
        .collect();
    let mut problems = Vec::new();
    for m in &modules {
        if !layers.contains_key(m) {
            problems.push(format!("module `{m}` is not in the layer table"));
        }
    }
    for (m, uses) in layers {
        if !modules.contains(m) {
            problems.push(format!(
                "the layer table lists `{m}`, which is not a module of src/"
            ));
        }
        for u in uses {
            if !used.contains_key(&(m.clone(), u.clone())) {
                problems.push(format!(
                    "the layer table says `{m}` may use `{u}`, and it does not: remove it"
                ));
            }
        }
    }
    for ((from, to), r) in &used {
        if !layers.get(from).is_some_and(|uses| uses.contains(to)) {
            problems.push(format!(
                "`{from}` uses `{to}`, which the layer table does not let it use: {}:{}: {}",
                r.file.display(),
                r.line,
                r.text
            ));
        }
    }
    problems
}

#[test]
fn the_layers_are_the_documented_ones() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let page = std::fs::read_to_string(&path).expect("docs/architecture.md");
    let problems = layer_problems(&read_crate(), &documented_layers(&page));
    assert!(
        problems.is_empty(),
        "\n{}\nThe layer table of docs/architecture.md is the rule for what each top-level \
         module may use: change the code, or the table (and say why in the page).",
        problems.join("\n")
    );
}

/// On a small crate: an undocumented use is found with its file and line, as are a listed use
/// that is not made, and a module missing from the table.
#[test]
fn a_use_against_the_layers_is_found() {
    let files = [
        ("lib.rs", "pub mod low;\npub mod high;\npub mod extra;\n"),
        ("low.rs", "use crate::high::f;\npub fn g() {}\n"),
        ("high.rs", "pub fn f() {}\n"),
        ("extra.rs", "\n"),
    ];
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    let page = "<!-- architecture: layers -->\n| module | job | may use |\n|---|---|---|\n\
                | `low` | bottom | — |\n| `high` | top | `low` |\n";
    let problems = layer_problems(&read_crate_from(&files), &documented_layers(page));
    assert_eq!(
        problems,
        [
            "module `extra` is not in the layer table",
            "the layer table says `high` may use `low`, and it does not: remove it",
            "`low` uses `high`, which the layer table does not let it use: src/low.rs:1: \
             crate::high::f",
        ]
    );
}
