//! Shared helpers for the deploy/ and certs tests: a copy of the repository's deploy/ and
//! policies/ in a temporary directory (so a developer's own certs/ never leaks in, and a fresh
//! clone behaves the same), `portcullis certs` run into it, and `kubectl kustomize` renderings
//! parsed into objects.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The repository root.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The portcullis binary Cargo built for these tests.
pub const PORTCULLIS: &str = env!("CARGO_BIN_EXE_portcullis");

/// What `kubectl apply -k` would be pointed at, relative to the repository root.
pub const BASE: &str = "deploy/base";
/// `kubectl apply -k deploy/`: base plus the certs/ component.
pub const DEFAULT: &str = "deploy";
/// The cert-manager overlay.
pub const CERT_MANAGER: &str = "deploy/overlays/cert-manager";
/// The audit-first overlay.
pub const AUDIT_FIRST: &str = "deploy/overlays/audit-first";
/// The native-sync overlay (`serve --native-sync` and its role).
pub const NATIVE_SYNC: &str = "deploy/overlays/native-sync";

/// A copy of the repository parts deploy/ needs, in a temporary directory.
pub struct Checkout {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
}

impl Checkout {
    /// deploy/, policies/ and certs/README.md copied (as a fresh clone has them); no
    /// generated certificates.
    pub fn fresh() -> Checkout {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&Path::new(ROOT).join("deploy"), &dir.path().join("deploy"));
        copy_tree(
            &Path::new(ROOT).join("policies"),
            &dir.path().join("policies"),
        );
        std::fs::create_dir_all(dir.path().join("certs")).expect("certs dir");
        std::fs::copy(
            Path::new(ROOT).join("certs/README.md"),
            dir.path().join("certs/README.md"),
        )
        .expect("certs/README.md is committed");
        Checkout { dir }
    }

    /// A fresh copy after `portcullis certs` (run in it, with its defaults).
    pub fn with_certs() -> Checkout {
        let checkout = Checkout::fresh();
        let out = Command::new(PORTCULLIS)
            .arg("certs")
            .current_dir(checkout.path())
            .output()
            .expect("run portcullis certs");
        assert!(
            out.status.success(),
            "portcullis certs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        checkout
    }

    /// The root of the copy.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `kubectl kustomize <dir>` of a directory relative to the copy, parsed.
    pub fn render(&self, dir: &str) -> Rendered {
        match kustomize(&self.path().join(dir)) {
            Ok(objects) => Rendered { objects },
            Err(e) => panic!("{dir}: {e}"),
        }
    }

    /// `kubectl kustomize <dir>`, or its error text.
    pub fn try_render(&self, dir: &str) -> Result<Rendered, String> {
        kustomize(&self.path().join(dir)).map(|objects| Rendered { objects })
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn kustomize(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| {
            format!(
                "cannot run kubectl ({e}): the deploy tests render deploy/ with \
                 `kubectl kustomize`; install kubectl >= 1.21 (.ci/run does)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "kubectl kustomize {} failed (deploy/ needs kubectl >= 1.21, whose kustomize \
             supports components):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| e.to_string())?;
    let mut objects = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(doc).map_err(|e| format!("rendered YAML: {e}"))?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The objects of one rendering.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Every object, in kustomize's order.
    pub objects: Vec<Value>,
}

impl Rendered {
    /// All objects of a kind.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// The one object of a kind (panics unless there is exactly one).
    pub fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(
            all.len(),
            1,
            "expected exactly one {kind}, got {}",
            all.len()
        );
        all[0]
    }

    /// The object of a kind and name.
    pub fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The rendering as one multi-document YAML text (for the audit reader).
    pub fn to_yaml(&self) -> String {
        self.objects
            .iter()
            .map(|o| serde_yaml_ng::to_string(o).expect("to yaml"))
            .collect::<Vec<_>>()
            .join("---\n")
    }

    /// The only webhook of the configuration of that kind.
    pub fn webhook(&self, kind: &str) -> &Value {
        let config = self.one(kind);
        let hooks = config["webhooks"].as_array().expect("webhooks");
        assert_eq!(hooks.len(), 1, "{kind}: one webhook: {hooks:?}");
        &hooks[0]
    }

    /// The webhook container of the Deployment.
    pub fn container(&self) -> &Value {
        let containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        containers
            .iter()
            .find(|c| c["name"] == "portcullis")
            .expect("container portcullis")
    }

    /// An environment variable of the webhook container.
    pub fn env(&self, name: &str) -> Option<String> {
        self.container()["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str().map(str::to_owned))
    }
}

/// Base64-decodes a string field (Secret data, caBundle).
pub fn decode(value: &Value) -> String {
    let text = value.as_str().expect("a base64 string");
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).expect("base64");
    String::from_utf8(bytes).expect("utf-8 PEM")
}

/// Writes the files of a rendered ConfigMap's `data` into `dir`.
pub fn write_config_map(config_map: &Value, dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("dir");
    config_map["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(file, text)| {
            let path = dir.join(file);
            std::fs::write(&path, text.as_str().expect("text")).expect("write");
            path
        })
        .collect()
}
