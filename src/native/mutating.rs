//! MutatingAdmissionPolicy: `defaultLabels` and `injectSidecar` as JSON Patch written in CEL,
//! with the engine's semantics (`src/engine/labels.rs`, `sidecar.rs`): only `add` operations,
//! each guarded by the absence of what it adds, so nothing the user wrote is overwritten and a
//! container of the sidecar's name is never replaced (a strategic-merge apply configuration
//! would merge into it: JSON Patch appends).

use serde_json::{Value, json};

use super::cel;
use super::scope;
use crate::policy::model::InjectionTarget;
use crate::policy::{
    CompiledDefaultLabels, CompiledException, CompiledRule, CompiledSidecar, PolicySet, Template,
    TemplateSegment,
};

/// A JSON Pointer token, escaped (`/` → `~1`, `~` → `~0`).
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `JSONPatch{op: 'add', path: PATH, value: VALUE}` (path a CEL string expression).
fn add(path: &str, value: &str) -> String {
    format!("JSONPatch{{op: 'add', path: {path}, value: {value}}}")
}

/// `[patch]` when `cond`, `[]` otherwise.
fn when(cond: &str, patches: &str) -> String {
    format!("({cond} ? {patches} : [])")
}

/// The concatenation of patch lists.
fn concat(lists: &[String]) -> String {
    if lists.is_empty() {
        "[]".to_owned()
    } else {
        lists.join(" + ")
    }
}

/// What `{{name}}` renders to: `metadata.name`, or the `generateName` stem without trailing
/// separators (`web-` gives `web`); `''` when neither gives a name.
const NAME: &str = "(has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : has(object.metadata.generateName) ? object.metadata.generateName.find('^.*[A-Za-z0-9]') : '')";

/// A value template as a CEL string expression, and the condition under which it renders.
fn render(t: &Template) -> (String, String) {
    let mut parts = Vec::new();
    let mut conds = Vec::new();
    for s in &t.0 {
        match s {
            TemplateSegment::Literal(l) => parts.push(cel::string(l)),
            TemplateSegment::Name => {
                parts.push(NAME.to_owned());
                conds.push(format!("{NAME} != ''"));
            }
            TemplateSegment::Namespace => parts.push("request.namespace".to_owned()),
            TemplateSegment::Kind => parts.push("request.kind.kind".to_owned()),
        }
    }
    let value = if parts.is_empty() {
        "''".to_owned()
    } else {
        parts.join(" + ")
    };
    conds.dedup();
    (value, cel::and(&conds))
}

/// A valid label value: at most 63 characters of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn valid_label_value(value: &str) -> String {
    format!(
        "size({value}) <= 63 && ({value}).matches('^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')"
    )
}

/// The patches adding absent labels and annotations to the metadata `meta` (CEL) at the JSON
/// Pointer `pointer`.
fn metadata_patches(rule: &CompiledDefaultLabels, meta: &str, pointer: &str) -> String {
    let mut lists = Vec::new();
    let mut any_added = Vec::new();
    let mut maps = Vec::new();
    for (map, entries, label) in [
        ("labels", &rule.labels, true),
        ("annotations", &rule.annotations, false),
    ] {
        if entries.is_empty() {
            continue;
        }
        let map_exists = format!("has({meta}) && has({meta}.{map})");
        let mut adds = Vec::new();
        let mut conds = Vec::new();
        for (key, template) in entries {
            let (value, renders) = render(template);
            let mut cond = vec![
                format!("!({map_exists} && {} in {meta}.{map})", cel::string(key)),
                renders,
            ];
            if label {
                cond.push(valid_label_value(&value));
            }
            let cond = cel::and(&cond);
            adds.push(when(
                &cond,
                &format!(
                    "[{}]",
                    add(
                        &cel::string(&format!("{pointer}/{map}/{}", token(key))),
                        &value
                    )
                ),
            ));
            conds.push(cond);
        }
        let adding = cel::or(&conds);
        maps.push((map, map_exists, adding.clone(), adds));
        any_added.push(adding);
    }
    // `metadata` itself may be absent (a pod template's): create it first, then each map.
    lists.push(when(
        &format!("!has({meta}) && ({})", cel::or(&any_added)),
        &format!("[{}]", add(&cel::string(pointer), "{}")),
    ));
    for (map, exists, adding, adds) in maps {
        lists.push(when(
            &format!("!({exists}) && ({adding})"),
            &format!("[{}]", add(&cel::string(&format!("{pointer}/{map}")), "{}")),
        ));
        lists.extend(adds);
    }
    concat(&lists)
}

/// The JSON Patch expression of a `defaultLabels` rule.
fn default_labels(rule: &CompiledDefaultLabels, skip: &str) -> String {
    let mut lists = Vec::new();
    // The object's metadata; for a Pod, `podTemplate` means the Pod itself.
    let object = metadata_patches(rule, "object.metadata", "/metadata");
    if rule.object {
        lists.push(format!("({object})"));
    } else if rule.pod_template {
        lists.push(when("request.kind.kind == 'Pod'", &format!("({object})")));
    }
    if rule.pod_template {
        // A Job's template is immutable after creation.
        let cronjob = metadata_patches(
            rule,
            "object.spec.jobTemplate.spec.template.metadata",
            "/spec/jobTemplate/spec/template/metadata",
        );
        let template = metadata_patches(
            rule,
            "object.spec.template.metadata",
            "/spec/template/metadata",
        );
        lists.push(format!(
            "(request.kind.kind == 'Pod' || (request.operation == 'UPDATE' && request.kind.kind == 'Job') ? [] : request.kind.kind == 'CronJob' ? ({cronjob}) : ({template}))"
        ));
    }
    format!("{skip} ? [] : {}", concat(&lists))
}

/// The opt-out annotation of `key` says `false` or `disabled` in `meta` (CEL).
fn opted_out(meta: &str, key: &str) -> String {
    let k = cel::string(key);
    format!(
        "(has({meta}.annotations) && {k} in {meta}.annotations && {meta}.annotations[{k}].trim().lowerAscii() in ['false', 'disabled'])"
    )
}

/// The patches injecting the sidecar into the pod spec `spec` (CEL) at the JSON Pointer
/// `pointer`.
fn sidecar_patches(rule: &CompiledSidecar, spec: &str, pointer: &str) -> String {
    let mut lists = Vec::new();
    if !rule.volumes.is_empty() {
        let all: Vec<String> = rule
            .volumes
            .iter()
            .map(|(_, v)| cel::json(v.value()))
            .collect();
        let each: Vec<String> = rule
            .volumes
            .iter()
            .map(|(name, v)| {
                when(
                    &format!("!{spec}.volumes.exists(x, x.name == {})", cel::string(name)),
                    &format!(
                        "[{}]",
                        add(
                            &cel::string(&format!("{pointer}/volumes/-")),
                            &cel::json(v.value())
                        )
                    ),
                )
            })
            .collect();
        lists.push(format!(
            "(has({spec}.volumes) ? {} : [{}])",
            concat(&each),
            add(
                &cel::string(&format!("{pointer}/volumes")),
                &format!("[{}]", all.join(", "))
            )
        ));
    }
    if !rule.volume_mounts.is_empty() {
        let containers = format!("(has({spec}.containers) ? {spec}.containers : [])");
        let index = format!("string({containers}.map(x, x.name).indexOf(c.name))");
        let path = |suffix: &str| {
            format!(
                "{} + {index} + {}",
                cel::string(&format!("{pointer}/containers/")),
                cel::string(&format!("/volumeMounts{suffix}"))
            )
        };
        let all: Vec<String> = rule
            .volume_mounts
            .iter()
            .map(|(_, _, m)| cel::json(m.value()))
            .collect();
        lists.push(format!(
            "{containers}.filter(c, !has(c.volumeMounts)).map(c, {})",
            add(&path(""), &format!("[{}]", all.join(", ")))
        ));
        for (name, mount_path, m) in &rule.volume_mounts {
            lists.push(format!(
                "{containers}.filter(c, has(c.volumeMounts) && !c.volumeMounts.exists(x, x.name == {} || x.mountPath == {})).map(c, {})",
                cel::string(name),
                cel::string(mount_path),
                add(&path("/-"), &cel::json(m.value()))
            ));
        }
    }
    let list = if rule.native_sidecar {
        "initContainers"
    } else {
        "containers"
    };
    let container = cel::json(rule.container.value());
    lists.push(format!(
        "(has({spec}.{list}) ? [{}] : [{}])",
        add(&cel::string(&format!("{pointer}/{list}/-")), &container),
        add(
            &cel::string(&format!("{pointer}/{list}")),
            &format!("[{container}]")
        )
    ));
    concat(&lists)
}

/// The JSON Patch expression of an `injectSidecar` rule.
fn inject_sidecar(rule: &CompiledSidecar, set: &PolicySet, skip: &str) -> String {
    let mut common = vec![skip.to_owned()];
    common.push(match rule.target {
        InjectionTarget::Template => scope::controller_owned(set),
        InjectionTarget::Pod => "request.kind.kind != 'Pod'".to_owned(),
    });
    // Pod specs and a Job's pod template are immutable after creation.
    common.push("request.operation == 'UPDATE' && request.kind.kind in ['Pod', 'Job']".to_owned());
    if let Some(key) = &rule.opt_out_annotation {
        let cronjob = "object.spec.jobTemplate.spec.template.metadata";
        let template = "object.spec.template.metadata";
        common.push(format!(
            "{} || (request.kind.kind == 'CronJob' ? has({cronjob}) && {} : request.kind.kind != 'Pod' && has({template}) && {})",
            opted_out("object.metadata", key),
            opted_out(cronjob, key),
            opted_out(template, key)
        ));
    }
    if !rule.native_sidecar {
        common.push(
            "request.kind.kind in ['Job', 'CronJob'] || (request.kind.kind == 'Pod' && has(object.spec.restartPolicy) && object.spec.restartPolicy in ['Never', 'OnFailure'])".to_owned(),
        );
    }
    let declares_port = rule
        .container
        .value()
        .get("ports")
        .and_then(Value::as_array)
        .is_some_and(|ports| {
            ports.iter().any(|p| {
                ["containerPort", "hostPort"]
                    .iter()
                    .any(|k| p.get(k).is_some_and(|v| !v.is_null()))
            })
        });
    let name = cel::string(&rule.name);
    // Per kind, the pod spec at its own path (no shared variable: each branch reads its own).
    let branch = |spec: &str, pointer: &str| {
        let mut skips = vec![format!(
            "(has({spec}.containers) && {spec}.containers.exists(c, c.name == {name})) || (has({spec}.initContainers) && {spec}.initContainers.exists(c, c.name == {name}))"
        )];
        if declares_port {
            skips.push(format!("has({spec}.hostNetwork) && {spec}.hostNetwork"));
        }
        format!(
            "({}) ? [] : ({})",
            cel::or(&skips),
            sidecar_patches(rule, spec, pointer)
        )
    };
    format!(
        "({}) ? [] : request.kind.kind == 'Pod' ? ({}) : request.kind.kind == 'CronJob' ? ({}) : ({})",
        cel::or(&common),
        branch("object.spec", "/spec"),
        branch(
            "object.spec.jobTemplate.spec.template.spec",
            "/spec/jobTemplate/spec/template/spec"
        ),
        branch("object.spec.template.spec", "/spec/template/spec"),
    )
}

/// The `variables` and `mutations` of the mutating policy object for `rules` (the mutation
/// rules of one policy, `enforce` where it applies), each rule skipped where an exception in
/// force covers it. `None` when there is no mutation rule.
pub(super) fn mutations(
    policy: &str,
    rules: &[&CompiledRule],
    exceptions: &[&CompiledException],
    set: &PolicySet,
) -> Option<(Vec<Value>, Vec<Value>)> {
    let mut variables =
        vec![json!({"name": "spec", "expression": super::validating::pod_spec("object")})];
    for (i, e) in exceptions.iter().enumerate() {
        variables.push(json!({
            "name": format!("exception{i}"),
            "expression": cel::exception_selects(&e.match_),
        }));
    }
    let mut out = Vec::new();
    for rule in rules {
        // Mutation findings are about the workload (no container): an exception that lists
        // containers never covers them.
        let excepted: Vec<String> = exceptions
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.match_.containers.is_empty() && scope::names_rule(e, policy, rule.type_name())
            })
            .map(|(i, _)| format!("variables.exception{i}"))
            .collect();
        let skip = format!("({})", cel::or(&excepted));
        let expression = match rule {
            CompiledRule::DefaultLabels(d) => {
                let mut skips = vec![skip, scope::controller_owned(set)];
                skips.dedup();
                default_labels(d, &format!("({})", cel::or(&skips)))
            }
            CompiledRule::InjectSidecar(s) => inject_sidecar(s, set, &skip),
            _ => continue,
        };
        out.push(json!({
            "patchType": "JSONPatch",
            "jsonPatch": {"expression": expression},
        }));
    }
    (!out.is_empty()).then_some((variables, out))
}
