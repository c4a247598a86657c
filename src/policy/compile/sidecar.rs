//! `injectSidecar` rules: the container, volumes and mounts checked against the Kubernetes
//! types (with a "did you mean" for misspelled fields) and rendered once as JSON.

use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use serde_json::Value;

use super::{Checker, FieldPath, PathSegment, to_json};
use crate::json::SharedValue;
use crate::policy::model::{API_TOKEN_PATH, InjectSidecar, NO_API_TOKEN_VOLUME};
use crate::policy::names::{check_dns1123_label, check_qualified_name};
use crate::policy::{CompiledRule, CompiledSidecar};

/// Fields of `original` (the file's YAML as JSON) that `typed` (the same value after a trip
/// through the Kubernetes types) lost: unknown or misspelled fields Kubernetes types ignore.
fn dropped_fields(original: &Value, typed: &Value, path: &FieldPath, out: &mut Vec<FieldPath>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                match t.get(k) {
                    None => out.push(path.key(k)),
                    Some(tv) => dropped_fields(v, tv, &path.key(k), out),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                dropped_fields(ov, tv, &path.index(i), out);
            }
        }
        _ => {}
    }
}

/// Every string inside `value` that contains a `{{` template reference, with its path.
fn template_strings(value: &Value, path: &FieldPath, out: &mut Vec<FieldPath>) {
    match value {
        Value::String(s) if s.contains("{{") => out.push(path.clone()),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| template_strings(v, &path.key(k), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| template_strings(v, &path.index(i), out)),
        _ => {}
    }
}

fn check_unknown_fields(
    c: &mut Checker,
    raw: Option<&Value>,
    typed: &Value,
    path: &FieldPath,
    schema_for: fn() -> schemars::Schema,
) {
    let Some(raw) = raw else { return };
    let mut dropped = Vec::new();
    dropped_fields(raw, typed, path, &mut dropped);
    if dropped.is_empty() {
        return;
    }
    let schema = schema_for();
    for field in dropped {
        let (parent, name) = match field.0.split_last() {
            Some((PathSegment::Key(k), parent)) => (parent, k.as_str()),
            _ => continue,
        };
        let relative = &parent[path.0.len()..];
        let suggestion = known_properties(schema.as_value(), relative)
            .and_then(|known| closest(name, &known))
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default();
        c.error(
            field.clone(),
            format!("unknown field `{name}`: Kubernetes would ignore it silently"),
            format!("{suggestion}check the spelling against `kubectl explain pod.spec.containers` (field names are camelCase)"),
        );
    }
}

/// The property names the JSON Schema allows at `path` (relative to the schema's root).
fn known_properties(root: &Value, path: &[PathSegment]) -> Option<Vec<String>> {
    fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                    Some(n) => node = n,
                    None => break,
                },
                None => break,
            }
        }
        node
    }
    let mut node = resolve(root, root);
    for seg in path {
        node = match seg {
            PathSegment::Key(k) => node.get("properties")?.get(k)?,
            PathSegment::Index(_) => node.get("items")?,
        };
        node = resolve(root, node);
    }
    let props = node.get("properties")?.as_object()?;
    Some(props.keys().cloned().collect())
}

/// The known name closest to a misspelled one (case-insensitive equal, or at most two edits
/// apart, ignoring ASCII case); the first of equally close ones.
fn closest(name: &str, known: &[String]) -> Option<String> {
    let name = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::levenshtein(&name, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Compiles an `injectSidecar` rule: checks the container, volumes and mounts (names, paths,
/// fields the Kubernetes types would drop), and renders them once as JSON.
pub(super) fn compile(
    c: &mut Checker,
    s: &InjectSidecar,
    path: &FieldPath,
    raw: Option<&Value>,
) -> CompiledRule {
    let cpath = path.key("container");
    let typed_container = to_json(&s.container);
    check_unknown_fields(
        c,
        raw.and_then(|r| r.get("container")),
        &typed_container,
        &cpath,
        || schemars::schema_for!(Container),
    );
    for (i, v) in s.volumes.iter().enumerate() {
        check_unknown_fields(
            c,
            raw.and_then(|r| r.pointer(&format!("/volumes/{i}"))),
            &to_json(v),
            &path.key("volumes").index(i),
            || schemars::schema_for!(Volume),
        );
    }
    for (i, m) in s.volume_mounts.iter().enumerate() {
        check_unknown_fields(
            c,
            raw.and_then(|r| r.pointer(&format!("/volumeMounts/{i}"))),
            &to_json(m),
            &path.key("volumeMounts").index(i),
            || schemars::schema_for!(VolumeMount),
        );
    }

    let container = &s.container;
    if let Err(e) = check_dns1123_label(&container.name) {
        c.error(
            cpath.key("name"),
            format!("container name {:?} {e}", container.name),
            "container names are DNS-1123 labels such as `log-shipper`",
        );
    }
    if container
        .image
        .as_deref()
        .is_none_or(|i| i.trim().is_empty())
    {
        c.error(
            cpath.key("image"),
            "the sidecar container has no image",
            "set `image:` to a pinned image such as `fluent/fluent-bit:3.2.4`",
        );
    }
    match (s.native_sidecar, container.restart_policy.as_deref()) {
        (_, None) | (true, Some("Always")) => {}
        (true, Some(other)) => c.error(
            cpath.key("restartPolicy"),
            format!("restartPolicy {other:?} on a native sidecar: only \"Always\" is valid"),
            "delete restartPolicy: nativeSidecar: true sets `restartPolicy: Always` itself",
        ),
        (false, Some(other)) => c.error(
            cpath.key("restartPolicy"),
            format!("restartPolicy {other:?} is only valid on init containers: the apiserver would reject every injected Pod"),
            "delete restartPolicy and set `nativeSidecar: true` to inject a native sidecar",
        ),
    }

    let mut templated = Vec::new();
    template_strings(&typed_container, &cpath, &mut templated);
    for (i, v) in s.volumes.iter().enumerate() {
        template_strings(&to_json(v), &path.key("volumes").index(i), &mut templated);
    }
    for (i, m) in s.volume_mounts.iter().enumerate() {
        template_strings(
            &to_json(m),
            &path.key("volumeMounts").index(i),
            &mut templated,
        );
    }
    for p in templated {
        c.error(
            p,
            "`{{...}}` references are not expanded in sidecar templates",
            "template references ({{name}}, {{namespace}}, {{kind}}) work only in defaultLabels values; use the downward API (`valueFrom.fieldRef`) for per-Pod values",
        );
    }

    let vpath = path.key("volumes");
    let mut volume_names: Vec<&str> = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        if let Err(e) = check_dns1123_label(&v.name) {
            c.error(
                vpath.index(i).key("name"),
                format!("volume name {:?} {e}", v.name),
                "volume names are DNS-1123 labels such as `app-logs`",
            );
        }
        if volume_names.contains(&v.name.as_str()) {
            c.error(
                vpath.index(i).key("name"),
                format!("duplicate volume name {:?}", v.name),
                "give each volume a distinct name",
            );
        }
        volume_names.push(&v.name);
    }
    let check_mounts = |c: &mut Checker, mounts: &[VolumeMount], mpath: &FieldPath, whose: &str| {
        let mut paths: Vec<&str> = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            let p = mpath.index(i);
            if !volume_names.contains(&m.name.as_str()) {
                c.error(
                    p.key("name"),
                    format!(
                        "{whose} mounts volume {:?}, which the rule's `volumes` do not define: the apiserver would reject every injected Pod",
                        m.name
                    ),
                    format!(
                        "add a volume named {:?} to the rule's `volumes`, or mount one of: {}",
                        m.name,
                        if volume_names.is_empty() { "(none defined)".to_owned() } else { volume_names.join(", ") }
                    ),
                );
            }
            if m.mount_path.is_empty() {
                c.error(
                    p.key("mountPath"),
                    "mountPath is empty",
                    "set an absolute path such as /var/log/app",
                );
            } else if m.mount_path.split('/').any(|part| part == "..") {
                c.error(
                    p.key("mountPath"),
                    format!("mountPath {:?} contains '..'", m.mount_path),
                    "use an absolute path without '..'",
                );
            }
            if paths.contains(&m.mount_path.as_str()) {
                c.error(
                    p.key("mountPath"),
                    format!("mountPath {:?} is mounted twice", m.mount_path),
                    "give each mount its own path",
                );
            }
            paths.push(&m.mount_path);
        }
    };
    check_mounts(
        c,
        &s.volume_mounts,
        &path.key("volumeMounts"),
        "an app container",
    );
    check_mounts(
        c,
        container.volume_mounts.as_deref().unwrap_or_default(),
        &cpath.key("volumeMounts"),
        "the sidecar",
    );
    if let Some(key) = &s.opt_out_annotation
        && let Err(e) = check_qualified_name(key)
    {
        c.error(
            path.key("optOutAnnotation"),
            format!("invalid annotation key {key:?}: {e}"),
            "annotation keys have label key syntax, e.g. `portcullis.dev/inject-log-shipper`",
        );
    }

    let mut rendered = container.clone();
    if s.native_sidecar {
        rendered.restart_policy = Some("Always".to_owned());
    }
    let mut volumes: Vec<(String, Value)> = s
        .volumes
        .iter()
        .map(|v| (v.name.clone(), to_json(v)))
        .collect();
    // No API token unless the policy asks for one (or the template mounts something there).
    let mounts_token_path = rendered
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path.trim_end_matches('/') == API_TOKEN_PATH);
    if !s.service_account_token && !mounts_token_path {
        rendered.volume_mounts.get_or_insert_with(Vec::new).push(
            k8s_openapi::api::core::v1::VolumeMount {
                name: NO_API_TOKEN_VOLUME.to_owned(),
                mount_path: API_TOKEN_PATH.to_owned(),
                read_only: Some(true),
                ..Default::default()
            },
        );
        if !volumes.iter().any(|(name, _)| name == NO_API_TOKEN_VOLUME) {
            volumes.push((
                NO_API_TOKEN_VOLUME.to_owned(),
                serde_json::json!({"emptyDir": {}, "name": NO_API_TOKEN_VOLUME}),
            ));
        }
    }
    CompiledRule::InjectSidecar(Box::new(CompiledSidecar {
        name: container.name.clone(),
        // A Container serializes to a JSON object.
        container: SharedValue::new(to_json(&rendered)),
        volumes: volumes
            .into_iter()
            .map(|(name, v)| (name, SharedValue::new(v)))
            .collect(),
        volume_mounts: s
            .volume_mounts
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.mount_path.clone(),
                    SharedValue::new(to_json(m)),
                )
            })
            .collect(),
        native_sidecar: s.native_sidecar,
        target: s.target,
        opt_out_annotation: s.opt_out_annotation.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written edit distance `closest` used before `strsim`, kept to show that the
    /// hints did not change.
    fn closest_before(name: &str, known: &[String]) -> Option<String> {
        fn distance(a: &str, b: &str) -> usize {
            let b: Vec<char> = b.chars().collect();
            let mut prev: Vec<usize> = (0..=b.len()).collect();
            for (i, ca) in a.chars().enumerate() {
                let mut cur = vec![i + 1; b.len() + 1];
                for (j, cb) in b.iter().enumerate() {
                    cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1);
                }
                prev = cur;
            }
            prev[b.len()]
        }
        known
            .iter()
            .map(|k| {
                let d = if k.eq_ignore_ascii_case(name) {
                    0
                } else {
                    distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase())
                };
                (d, k)
            })
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k.clone())
    }

    /// Misspellings of `word`: one and two characters dropped, doubled, replaced or swapped,
    /// and the case changed.
    fn misspellings(word: &str) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let mut out = vec![word.to_ascii_uppercase(), word.to_ascii_lowercase()];
        for i in 0..chars.len() {
            let mut dropped = chars.clone();
            dropped.remove(i);
            out.push(dropped.iter().collect());
            if i + 1 < dropped.len() {
                let mut twice = dropped.clone();
                twice.remove(i + 1);
                out.push(twice.iter().collect());
            }
            let mut doubled = chars.clone();
            doubled.insert(i, chars[i]);
            out.push(doubled.iter().collect());
            let mut replaced = chars.clone();
            replaced[i] = 'q';
            out.push(replaced.iter().collect());
            if i + 1 < chars.len() {
                let mut swapped = chars.clone();
                swapped.swap(i, i + 1);
                out.push(swapped.iter().collect());
                replaced.swap(i, i + 1);
                out.push(replaced.iter().collect());
            }
        }
        out
    }

    #[test]
    fn did_you_mean_hints_are_the_same_as_before() {
        let key = |k: &str| PathSegment::Key(k.to_owned());
        // The names a hint chooses from: a container's, a probe's, its resources', a volume's
        // and a mount's fields.
        let lists: Vec<Vec<String>> = [
            (schemars::schema_for!(Container), vec![]),
            (schemars::schema_for!(Container), vec![key("livenessProbe")]),
            (schemars::schema_for!(Container), vec![key("resources")]),
            (schemars::schema_for!(Volume), vec![]),
            (schemars::schema_for!(VolumeMount), vec![]),
        ]
        .iter()
        .map(|(schema, path)| known_properties(schema.as_value(), path).expect("properties"))
        .collect();
        let mut compared = 0;
        let mut hinted = 0;
        for known in &lists {
            assert!(known.len() >= 3, "{known:?}");
            for word in known {
                let typos = misspellings(word);
                let odd = ["", "x", "ünïcode", "readinessprobe", "volumemounts"];
                for typo in typos.iter().map(String::as_str).chain(odd) {
                    let now = closest(typo, known);
                    assert_eq!(now, closest_before(typo, known), "{typo:?} in {known:?}");
                    compared += 1;
                    hinted += usize::from(now.is_some());
                }
            }
        }
        // Most misspellings get a hint; some are too far from every name.
        assert!(hinted > compared / 2, "{hinted} of {compared}");
        assert_eq!(
            closest("readinesProbe", &lists[0]).as_deref(),
            Some("readinessProbe")
        );
    }
}
