//! Loading policy directories: ConfigMap volume layout, dot-files, duplicates across files.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use portcullis::lint::load_dir;

fn policy(name: &str, rule: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: {name}\nspec:\n  mode: enforce\n  rules:\n    - {rule}: {{}}\n"
    )
}

#[test]
fn configmap_volume_layout_is_followed_and_bookkeeping_skipped() {
    // What the kubelet writes for a ConfigMap volume: the data in a timestamped directory,
    // `..data` a symlink to it, and each visible key a symlink into `..data`.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let stamped = root.join("..2024_05_01_12_00_00.123456789");
    fs::create_dir(&stamped).expect("mkdir");
    fs::write(
        stamped.join("probes.yaml"),
        policy("require-probes", "requireProbes"),
    )
    .expect("write");
    fs::write(
        stamped.join("resources.yml"),
        policy("require-resources", "requireResources"),
    )
    .expect("write");
    symlink("..2024_05_01_12_00_00.123456789", root.join("..data")).expect("symlink");
    symlink("..data/probes.yaml", root.join("probes.yaml")).expect("symlink");
    symlink("..data/resources.yml", root.join("resources.yml")).expect("symlink");
    // An old timestamped directory the kubelet has not removed yet, and a hidden file: both
    // would duplicate the policies if they were read.
    let old = root.join("..2024_04_30_09_00_00.987654321");
    fs::create_dir(&old).expect("mkdir");
    fs::write(
        old.join("probes.yaml"),
        policy("require-probes", "requireProbes"),
    )
    .expect("write");
    fs::write(root.join(".hidden.yaml"), "not: [valid").expect("write");
    // A link left dangling while the kubelet swaps `..data`, and a non-YAML file.
    symlink("..data/removed.yaml", root.join("removed.yaml")).expect("symlink");
    fs::write(root.join("README.md"), "# policies").expect("write");

    let set = load_dir(root).expect("the ConfigMap layout loads");
    let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["require-probes", "require-resources"]);
    assert_eq!(set.policies[0].source.file, root.join("probes.yaml"));
    assert_eq!(set.policies[0].source.line, 1);
}

#[test]
fn duplicate_names_across_files_report_both_locations() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.yaml"), policy("same", "requireProbes")).expect("write");
    fs::write(
        dir.path().join("b.yaml"),
        format!("# comment\n{}", policy("same", "requireResources")),
    )
    .expect("write");
    let err = load_dir(dir.path()).expect_err("duplicate names are rejected");
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.file, dir.path().join("b.yaml"));
    assert_eq!(d.line, 5);
    assert_eq!(
        d.message,
        format!(
            "metadata.name: duplicate policy name \"same\", also defined at {}:4",
            dir.path().join("a.yaml").display()
        )
    );
}

#[test]
fn problems_in_several_files_are_all_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.yaml"), policy("Bad", "requireProbes")).expect("write");
    fs::write(dir.path().join("b.yaml"), policy("ok", "requireProbs")).expect("write");
    let err = load_dir(dir.path()).expect_err("invalid");
    let located: Vec<(String, usize)> = err
        .diagnostics
        .iter()
        .map(|d| {
            let file = d.file.file_name().map(|f| f.to_string_lossy().into_owned());
            (file.unwrap_or_default(), d.line)
        })
        .collect();
    assert_eq!(
        located,
        vec![("a.yaml".to_owned(), 4), ("b.yaml".to_owned(), 8)]
    );
}

#[test]
fn an_empty_or_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = load_dir(dir.path()).expect_err("no policies");
    assert!(
        err.to_string().contains("no policy documents found"),
        "{err}"
    );
    let err = load_dir(&dir.path().join("absent")).expect_err("missing dir");
    assert!(
        err.to_string().contains("cannot read the policy directory"),
        "{err}"
    );
}

#[test]
fn subdirectories_are_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.yaml"), policy("a", "requireProbes")).expect("write");
    fs::create_dir(dir.path().join("nested.yaml")).expect("mkdir");
    fs::write(
        dir.path().join("nested.yaml").join("b.yaml"),
        policy("b", "requireProbes"),
    )
    .expect("write");
    let set = load_dir(dir.path()).expect("loads");
    assert_eq!(set.policies.len(), 1);
    assert!(Path::new(&set.policies[0].source.file).ends_with("a.yaml"));
}

#[test]
fn policy_validate_lists_policies_or_every_problem() {
    use portcullis::cli::policy::validate;
    use std::process::ExitCode;

    let defaults = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (out, code) = validate(&defaults);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.starts_with("NAME "), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("require-probes "))
        .expect("require-probes is listed");
    assert!(row.contains(" enforce "), "{row}");
    assert!(row.contains("requireProbes"), "{row}");
    assert!(row.contains("require-probes.yaml:"), "{row}");

    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.yaml"), policy("Bad", "requireProbs")).expect("write");
    let (out, code) = validate(&dir.path().join("a.yaml"));
    assert_eq!(code, ExitCode::FAILURE, "{out}");
    assert!(
        out.contains("a.yaml:8: spec.rules[0]: unknown field `requireProbs`"),
        "{out}"
    );
    assert!(out.contains("\n  hint: "), "{out}");
    assert!(out.ends_with("1 problem found\n"), "{out}");
}
