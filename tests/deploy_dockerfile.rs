//! deploy/Dockerfile and .dockerignore, checked without a Docker engine: a multi-stage build
//! whose final stage is distroless/static, non-root (the user the Deployment runs as), holding
//! only the binary and the default policies where the Deployment expects them; a build context
//! that admits what the build copies and no private keys.

use std::path::Path;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_uppercase(),
            args: args.trim().to_owned(),
        });
        current.clear();
    }
    assert!(current.is_empty(), "dangling continuation line");
    out
}

/// The instructions of each stage, split at FROM.
fn stages(all: &[Instruction]) -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for i in all {
        if i.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(i.clone());
    }
    stages
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).expect(path)
}

fn deployment() -> Value {
    let text = read("deploy/base/deployment.yaml");
    serde_yaml_ng::from_str(&text).expect("deployment.yaml parses")
}

#[test]
fn the_image_is_multi_stage_static_non_root_with_only_the_binary_and_policies() {
    let all = instructions(&read("deploy/Dockerfile"));
    let stages = stages(&all);
    assert!(stages.len() >= 2, "multi-stage");
    let (build, last) = (&stages[0], stages.last().expect("final stage"));

    // Build stage: a Rust toolchain at least as new as the crate's rust-version, building the
    // binary from the lock file.
    let from = &build[0].args;
    let alias = from
        .rsplit_once(" AS ")
        .map(|(_, a)| a.trim())
        .expect("named build stage");
    let image = from.split_whitespace().next().expect("image");
    let version = image
        .strip_prefix("rust:")
        .and_then(|v| v.split('-').next())
        .expect("a rust: image with a version");
    let manifest: toml_like::Manifest = toml_like::read(&read("Cargo.toml"));
    assert_eq!(version, manifest.rust_version, "toolchain = rust-version");
    let run = build
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(run.contains("cargo build --release --locked"), "{run}");

    // Final stage: distroless static, non-root, only the binary and the policies.
    let final_image = &last[0].args;
    assert!(
        final_image.starts_with("gcr.io/distroless/static") && final_image.contains(":nonroot"),
        "{final_image}"
    );
    let user = last
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .expect("USER");
    let uid: u64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("numeric user");
    assert_ne!(uid, 0);
    let pod_user = &deployment()["spec"]["template"]["spec"]["securityContext"]["runAsUser"];
    assert_eq!(
        pod_user.as_u64(),
        Some(uid),
        "the Deployment runs as the image's user"
    );

    let copies: Vec<&str> = last
        .iter()
        .filter(|i| i.keyword == "COPY" || i.keyword == "ADD")
        .map(|i| i.args.as_str())
        .collect();
    assert_eq!(
        copies.len(),
        2,
        "only the binary and the policies: {copies:?}"
    );
    let binary = copies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("--from={alias} ")))
        .and_then(|c| c.split_whitespace().nth(1))
        .expect("the binary copied from the build stage");
    let policies = copies
        .iter()
        .find_map(|c| c.strip_prefix("policies/*.yaml "))
        .expect("the default policies copied");
    let policies = policies.trim_end_matches('/');

    let entrypoint: Vec<String> = serde_json::from_str(
        &last
            .iter()
            .find(|i| i.keyword == "ENTRYPOINT")
            .expect("ENTRYPOINT")
            .args,
    )
    .expect("exec form");
    assert_eq!(entrypoint, [binary]);
    let env = last
        .iter()
        .filter(|i| i.keyword == "ENV")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>();
    assert!(
        env.contains(&format!("PORTCULLIS_POLICIES={policies}").as_str()),
        "{env:?}"
    );

    // The Deployment mounts its ConfigMap exactly over the image's policies and runs `serve`.
    let container = &deployment()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"][0], "serve");
    let mounted = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["mountPath"] == policies);
    assert!(mounted, "the policies ConfigMap is mounted at {policies}");
}

#[test]
fn the_build_context_admits_what_the_build_copies_and_no_secrets() {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "an allow-list: exclude everything first"
    );
    let allowed: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.strip_prefix('!'))
        .map(|r| r.trim_end_matches('/'))
        .collect();
    let all = instructions(&read("deploy/Dockerfile"));
    for copy in all
        .iter()
        .filter(|i| i.keyword == "COPY" && !i.args.starts_with("--from"))
    {
        let parts: Vec<&str> = copy.args.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            let top = source.split('/').next().expect("path");
            assert!(
                allowed.contains(&top),
                "{source} is not in the build context"
            );
        }
    }
    for secret in ["certs", ".portcullis-dev", "target", ".git"] {
        assert!(
            !allowed.contains(&secret),
            "{secret} must stay out of the image context"
        );
    }
}

/// The one Cargo.toml field this test needs, without a TOML parser dependency.
mod toml_like {
    pub struct Manifest {
        pub rust_version: String,
    }

    pub fn read(text: &str) -> Manifest {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("rust-version"))
            .expect("rust-version in Cargo.toml");
        let value = line
            .split('=')
            .nth(1)
            .expect("value")
            .trim()
            .trim_matches('"');
        Manifest {
            rust_version: value.to_owned(),
        }
    }
}
