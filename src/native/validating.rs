//! ValidatingAdmissionPolicy: the built-in validation rules translated to CEL with the
//! engine's semantics (`src/engine/probes.rs`, `resources.rs`, `images.rs`, `labels.rs`), and
//! the engine's words (`src/engine/message.rs`).
//!
//! One validation per Portcullis policy and mode in force, in an object of its own or one it
//! shares with policies of the same mode and selection (`super::export`). The API server
//! reports only the first failing validation of a denied request, so a policy's validation's
//! message lists every violation the policy finds, as the webhook's denial does. Violations are
//! built as lists of texts, one list per container (the engine's order: app containers, then
//! init containers; per container, the rule's fields in order), since a v1.32 API server has
//! no `flatten`.
//!
//! A compliant request is decided by a cheap condition (each check's failure condition,
//! negated, with `all()` over the containers: [`Part::clean`]); the texts, the exceptions and
//! the ratchet are evaluated only when some check fails. The API server evaluates a
//! `messageExpression` whether the validation fails or not, so the message is guarded too.

use serde_json::{Value, json};

use super::cel;
use super::cel_rules;
use super::scope;
use crate::policy::model::{
    Mode, RequireImageTag, RequireLabels, RequireProbes, RequireResources, ResourceName,
};
use crate::policy::{CompiledCel, CompiledException, CompiledPolicy, CompiledRule};

/// Which object an expression reads: the request's, or the stored one of an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    New,
    Old,
}

impl Side {
    fn root(self) -> &'static str {
        match self {
            Side::New => "object",
            Side::Old => "oldObject",
        }
    }

    /// The pod spec variable.
    fn spec(self) -> &'static str {
        match self {
            Side::New => "variables.spec",
            Side::Old => "variables.oldSpec",
        }
    }
}

impl From<Side> for cel_rules::Side {
    fn from(side: Side) -> cel_rules::Side {
        match side {
            Side::New => cel_rules::Side::New,
            Side::Old => cel_rules::Side::Old,
        }
    }
}

/// The pod spec of the object `root`, wherever its kind keeps it.
pub(super) fn pod_spec(root: &str) -> String {
    format!(
        "{k} == 'Pod' ? {root}.spec : {k} == 'CronJob' ? {root}.spec.jobTemplate.spec.template.spec : {root}.spec.template.spec",
        k = cel::KIND
    )
}

/// The dotted path of the pod spec, as the engine's messages write it.
pub(super) const SPEC_PATH: &str = "request.kind.kind == 'Pod' ? 'spec' : request.kind.kind == 'CronJob' ? 'spec.jobTemplate.spec.template.spec' : 'spec.template.spec'";

/// The workload as messages name it: `Deployment shop/web`.
const WORKLOAD: &str = "request.kind.kind + ' ' + request.namespace + '/' + (has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : has(object.metadata.generateName) && object.metadata.generateName != '' ? object.metadata.generateName : '<unnamed>')";

/// A list of the pod spec (`containers`, `initContainers`), empty when absent.
fn list(side: Side, name: &str) -> String {
    let spec = side.spec();
    format!("(has({spec}.{name}) ? {spec}.{name} : [])")
}

/// The containers of the pod spec that are native sidecars.
const NATIVE_SIDECAR: &str = "has(c.restartPolicy) && c.restartPolicy == 'Always'";

/// One check of a rule on a container `c` (or on the workload): when it fails, what the
/// finding says. Each part is a CEL string expression.
struct Check {
    /// The failure condition.
    fails: String,
    /// The finding's message.
    message: String,
    /// The dotted field path.
    field: String,
    /// The fix.
    hint: String,
    /// Whether another check of the same container fails whenever this one does (a request
    /// with the limit of the same resource required: a limit stands in for the request), so
    /// that whether any check fails can be decided without it.
    implied: bool,
}

/// How the findings of one rule become texts: its policy, rule type, exceptions, and whether
/// violations the stored object already had are left out (the UPDATE ratchet).
struct Context<'a> {
    policy: &'a str,
    rule: &'static str,
    /// The rule's index in the policy.
    index: usize,
    /// Exceptions in force naming this rule: (index among the policy's exceptions, exception).
    exceptions: Vec<(usize, &'a CompiledException)>,
    ratchet: bool,
    /// Appended to the names of the policy's own variables (`found`, `old`, `exceptionN`), so
    /// that several policies can share one object: empty when the policy has it alone.
    tag: &'a str,
}

impl Context<'_> {
    /// The ratchet key of a finding: (rule, container, field), as the engine compares them.
    fn key(&self, container: Option<&str>, field: &str) -> String {
        format!(
            "{} + {} + '|' + {field}",
            cel::string(&format!("{}|", self.rule)),
            container.map_or("''".to_owned(), |c| format!("{c} + ''"))
        )
    }

    /// The finding's text, as [`crate::engine::Finding::full_text`] writes it.
    fn text(&self, container: Option<&str>, check: &Check) -> String {
        let mut parts = vec![cel::string(&format!("[{}] ", self.policy))];
        if let Some(c) = container {
            parts.push(format!("'container \"' + {c} + '\": '"));
        }
        parts.push(format!("({})", check.message));
        parts.push(format!("' (' + {} + ')'", check.field));
        parts.push(format!("'; fix: ' + ({})", check.hint));
        parts.join(" + ")
    }

    /// Whether an exception in force covers a finding about `container`.
    fn excepted(&self, container: Option<&str>) -> String {
        let terms: Vec<String> = self
            .exceptions
            .iter()
            .filter_map(|(i, e)| {
                let selects = format!("variables.exception{i}{}", self.tag);
                if e.match_.containers.is_empty() {
                    Some(selects)
                } else {
                    container.map(|c| {
                        format!(
                            "{selects} && ({})",
                            cel::any_pattern(c, &e.match_.containers)
                        )
                    })
                }
            })
            .collect();
        cel::or(&terms)
    }

    /// `text` when the check fails and the finding counts, `''` otherwise (new side); the
    /// finding's key when it fails (old side).
    fn entry(&self, side: Side, container: Option<&str>, check: &Check) -> String {
        match side {
            Side::Old => format!(
                "({}) ? {} : ''",
                check.fails,
                self.key(container, &check.field)
            ),
            Side::New => {
                let mut terms = vec![format!("({})", check.fails)];
                if !self.exceptions.is_empty() {
                    terms.push(format!("!({})", self.excepted(container)));
                }
                if self.ratchet {
                    terms.push(format!(
                        "!variables.old{}.exists(g, ({}) in g)",
                        self.tag,
                        self.key(container, &check.field)
                    ));
                }
                format!(
                    "({}) ? {} : ''",
                    terms.join(" && "),
                    self.text(container, check)
                )
            }
        }
    }

    /// The non-empty entries of checks about one container (or the workload), as a list.
    fn group(&self, side: Side, container: Option<&str>, checks: &[Check]) -> String {
        let entries: Vec<String> = checks
            .iter()
            .map(|c| self.entry(side, container, c))
            .collect();
        format!("[{}].filter(t, t != '')", entries.join(", "))
    }
}

/// What a rule (or part of one) gives: its findings, a CEL list of lists of texts (new side)
/// or keys (old side); and `clean`, a cheap boolean that holds exactly when none of its checks
/// fails, exceptions and the ratchet aside. `clean` implies no findings, so a policy object
/// evaluates it first and builds the findings only when something fails (the common,
/// compliant request costs what a hand-written `all()` costs).
struct Part {
    found: String,
    clean: String,
}

impl Part {
    /// Parts side by side: every finding, clean when all are.
    fn join(parts: Vec<Part>) -> Part {
        let (found, clean): (Vec<String>, Vec<String>) =
            parts.into_iter().map(|p| (p.found, p.clean)).unzip();
        Part {
            found: found.join(" + "),
            clean: cel::and(&clean),
        }
    }

    /// The part, or nothing at all when `skip` holds.
    fn unless(self, skip: &str) -> Part {
        Part {
            found: format!("({skip}) ? [] : ({})", self.found),
            clean: format!("({skip}) || ({})", self.clean),
        }
    }
}

/// Whether one of `checks` fails (decided by the checks no other implies).
fn any_fails(checks: &[Check]) -> String {
    cel::or(
        &checks
            .iter()
            .filter(|c| !c.implied)
            .map(|c| c.fails.clone())
            .collect::<Vec<_>>(),
    )
}

/// The groups (one per container) of checks on the containers of `list_expr`.
fn per_container(
    ctx: &Context<'_>,
    side: Side,
    list_expr: &str,
    filter: Option<&str>,
    checks: &[Check],
) -> Part {
    // Only containers with a failing check build their texts: a compliant container costs
    // its checks' conditions, nothing more.
    let any_fails = any_fails(checks);
    let keep = match filter {
        Some(f) => format!("({f}) && ({any_fails})"),
        None => any_fails,
    };
    Part {
        found: format!(
            "{list_expr}.filter(c, {keep}).map(c, {}).filter(g, size(g) > 0)",
            ctx.group(side, Some("c.name"), checks)
        ),
        clean: format!("{list_expr}.all(c, !({keep}))"),
    }
}

/// The field path of container `c` in `list` (`containers`, `initContainers`).
fn container_path(side: Side, list_name: &str, suffix: &str) -> String {
    format!(
        "variables.specPath + '.{list_name}[' + string({names}.map(x, x.name).indexOf(c.name)) + ']{suffix}'",
        names = list(side, list_name)
    )
}

const PROBES: [(&str, bool, &str); 3] = [
    (
        "livenessProbe",
        true,
        "add a livenessProbe (httpGet, tcpSocket, grpc or exec) so the kubelet restarts the container when it hangs",
    ),
    (
        "readinessProbe",
        true,
        "add a readinessProbe (httpGet, tcpSocket, grpc or exec) so traffic only reaches the container once it is ready",
    ),
    (
        "startupProbe",
        false,
        "add a startupProbe so slow starts are not mistaken for hangs",
    ),
];

/// Whether the workload runs to completion: Jobs, CronJobs, Pods with `restartPolicy` `Never`
/// or `OnFailure` (a controller's template can only say `Always`).
fn runs_to_completion(side: Side) -> String {
    let spec = side.spec();
    format!(
        "request.kind.kind in ['Job', 'CronJob'] || (request.kind.kind == 'Pod' && has({spec}.restartPolicy) && {spec}.restartPolicy in ['Never', 'OnFailure'])"
    )
}

fn probe_checks(rule: &RequireProbes, side: Side, list_name: &str) -> Vec<Check> {
    let wanted = [rule.liveness, rule.readiness, rule.startup];
    PROBES
        .iter()
        .zip(wanted)
        .filter(|(_, want)| *want)
        .map(|((field, _, hint), _)| {
            let handlers = format!("['exec', 'grpc', 'httpGet', 'tcpSocket'].filter(h, h in c.{field})");
            // How many handlers are set, without a comprehension (the common, passing case).
            let count = ["exec", "grpc", "httpGet", "tcpSocket"]
                .map(|h| format!("(has(c.{field}.{h}) ? 1 : 0)"))
                .join(" + ");
            Check {
                fails: format!("!has(c.{field}) || {count} != 1"),
                message: format!(
                    "!has(c.{field}) ? 'no {field}' : size({handlers}) == 0 ? '{field} has no handler' : '{field} has ' + string(size({handlers})) + ' handlers (' + {handlers}.join(', ') + ')'"
                ),
                field: container_path(side, list_name, &format!(".{field}")),
                hint: format!(
                    "!has(c.{field}) ? {} : size({handlers}) == 0 ? {} : {}",
                    cel::string(hint),
                    cel::string("set exactly one of httpGet, tcpSocket, grpc or exec: the apiserver refuses a probe without one"),
                    cel::string("keep exactly one of httpGet, tcpSocket, grpc or exec: the apiserver refuses a probe with more than one"),
                ),
                implied: false,
            }
        })
        .collect()
}

fn require_probes(ctx: &Context<'_>, rule: &RequireProbes, side: Side) -> Part {
    let mut parts = vec![per_container(
        ctx,
        side,
        &list(side, "containers"),
        None,
        &probe_checks(rule, side, "containers"),
    )];
    if rule.native_sidecars {
        parts.push(per_container(
            ctx,
            side,
            &list(side, "initContainers"),
            Some(NATIVE_SIDECAR),
            &probe_checks(rule, side, "initContainers"),
        ));
    }
    let all = Part::join(parts);
    if rule.include_run_to_completion {
        all
    } else {
        all.unless(&runs_to_completion(side))
    }
}

fn example(r: ResourceName) -> &'static str {
    match r {
        ResourceName::Cpu => "100m",
        ResourceName::Memory => "128Mi",
        ResourceName::EphemeralStorage => "1Gi",
    }
}

fn resource_checks(rule: &RequireResources, side: Side, list_name: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let has = |section: &str, n: &str| {
        format!(
            "(has(c.resources) && has(c.resources.{section}) && {} in c.resources.{section})",
            cel::string(n)
        )
    };
    for (section, names, why) in [
        (
            "requests",
            &rule.requests,
            "so the scheduler can place the Pod",
        ),
        ("limits", &rule.limits, "to cap what the container may use"),
    ] {
        let singular = &section[..section.len() - 1];
        for name in names {
            let n = name.as_str();
            // An absent request defaults to the limit of the same resource.
            let set = if section == "requests" {
                format!("{} || {}", has("requests", n), has("limits", n))
            } else {
                has("limits", n)
            };
            checks.push(Check {
                fails: format!("!({set})"),
                message: cel::string(&format!("no {n} {singular}")),
                field: container_path(side, list_name, &format!(".resources.{section}.{n}")),
                hint: cel::string(&format!(
                    "set resources.{section}.{n} (e.g. {}) {why}",
                    example(*name)
                )),
                // No request and no limit: the limit's check fails too.
                implied: section == "requests" && rule.limits.contains(name),
            });
        }
    }
    checks
}

fn require_resources(ctx: &Context<'_>, rule: &RequireResources, side: Side) -> Part {
    let mut parts = vec![per_container(
        ctx,
        side,
        &list(side, "containers"),
        None,
        &resource_checks(rule, side, "containers"),
    )];
    if rule.init_containers {
        parts.push(per_container(
            ctx,
            side,
            &list(side, "initContainers"),
            None,
            &resource_checks(rule, side, "initContainers"),
        ));
    }
    Part::join(parts)
}

fn image_checks(rule: &RequireImageTag, side: Side, list_name: &str) -> Vec<Check> {
    // [registry[:port]/]repo[:tag][@digest]: a ':' before the last '/' is a port.
    let rest = "(c.image.contains('@') ? c.image.substring(0, c.image.indexOf('@')) : c.image)";
    let last = format!("{rest}.substring({rest}.lastIndexOf('/') + 1)");
    let tagged = format!("{last}.contains(':')");
    let tag = format!("({tagged} ? {last}.substring({last}.lastIndexOf(':') + 1) : '')");
    let name = format!(
        "({tagged} ? {rest}.substring(0, size({rest}) - size({last}) + {last}.lastIndexOf(':')) : {rest})"
    );
    let digest = "c.image.contains('@')";
    let image = "'image \"' + c.image + '\" '";
    let field = container_path(side, list_name, ".image");
    let present = "has(c.image) && c.image != ''";
    if rule.require_digest {
        vec![Check {
            fails: format!("{present} && !{digest}"),
            message: format!("{image} + 'is not pinned by digest'"),
            field,
            hint: format!("'use ' + {name} + '@sha256:<digest> (e.g. from `crane digest`)'"),
            implied: false,
        }]
    } else {
        let forbidden = cel::string_list(&rule.forbidden_tags);
        vec![Check {
            fails: format!("{present} && !{digest} && ({tag} == '' || {tag} in {forbidden})"),
            message: format!(
                "{tag} == '' ? {image} + 'has no tag (it resolves to :latest)' : {image} + 'uses the forbidden tag :' + {tag}"
            ),
            field,
            hint: format!("'pin a version, e.g. ' + {name} + ':1.2.3'"),
            implied: false,
        }]
    }
}

fn require_image_tag(ctx: &Context<'_>, rule: &RequireImageTag, side: Side) -> Part {
    Part::join(vec![
        per_container(
            ctx,
            side,
            &list(side, "containers"),
            None,
            &image_checks(rule, side, "containers"),
        ),
        per_container(
            ctx,
            side,
            &list(side, "initContainers"),
            None,
            &image_checks(rule, side, "initContainers"),
        ),
    ])
}

fn require_labels(ctx: &Context<'_>, rule: &RequireLabels, side: Side) -> Part {
    use crate::policy::model::MetadataTarget;
    let root = side.root();
    let object = rule.target.contains(&MetadataTarget::Object);
    let template = rule.target.contains(&MetadataTarget::PodTemplate);
    let checks = |meta: &str, path: &str| -> Vec<Check> {
        rule.labels
            .iter()
            .map(|key| {
                let k = cel::string(key);
                Check {
                    fails: format!(
                        "!(has({meta}.labels) && {k} in {meta}.labels && {meta}.labels[{k}] != '')"
                    ),
                    message: cel::string(&format!("missing label {key}")),
                    field: format!("{path} + {}", cel::string(&format!(".labels[\"{key}\"]"))),
                    hint: format!(
                        "{} + {path} + '.labels'",
                        cel::string(&format!("add the label {key} to "))
                    ),
                    implied: false,
                }
            })
            .collect()
    };
    let mut parts = Vec::new();
    let mut clean = Vec::new();
    // The object's own metadata; for a Pod, `podTemplate` means the Pod itself.
    let object_checks = checks(&format!("{root}.metadata"), "'metadata'");
    let object_group = format!("[{}]", ctx.group(side, None, &object_checks));
    let object_clean = format!("!({})", any_fails(&object_checks));
    if object {
        parts.push(object_group);
        clean.push(object_clean);
    } else if template {
        parts.push(format!(
            "(request.kind.kind == 'Pod' ? {object_group} : [])"
        ));
        clean.push(format!("request.kind.kind != 'Pod' || {object_clean}"));
    }
    if template {
        let meta = format!(
            "(request.kind.kind == 'CronJob' ? {root}.spec.jobTemplate.spec.template.metadata : {root}.spec.template.metadata)"
        );
        let path = "(request.kind.kind == 'CronJob' ? 'spec.jobTemplate.spec.template.metadata' : 'spec.template.metadata')";
        let template_checks = checks(&meta, path);
        parts.push(format!(
            "(request.kind.kind == 'Pod' ? [] : [{}])",
            ctx.group(side, None, &template_checks)
        ));
        clean.push(format!(
            "request.kind.kind == 'Pod' || !({})",
            any_fails(&template_checks)
        ));
    }
    Part {
        found: format!("({}).filter(g, size(g) > 0)", parts.join(" + ")),
        clean: cel::and(&clean),
    }
}

fn disallow_namespaces(ctx: &Context<'_>, patterns: &[String], side: Side) -> Part {
    let check = Check {
        fails: cel::any_pattern(cel::NAMESPACE, patterns),
        message: "'workloads may not run in namespace \"' + request.namespace + '\"'".to_owned(),
        field: "'metadata.namespace'".to_owned(),
        hint: cel::string("deploy into your team's namespace (kubectl -n <namespace>)"),
        implied: false,
    };
    Part {
        clean: format!("!({})", check.fails),
        found: format!(
            "[{}].filter(g, size(g) > 0)",
            ctx.group(side, None, &[check])
        ),
    }
}

/// The CEL of one validation rule: a list of lists of texts (new side) or keys (old side),
/// and when it is clean. `None` for mutation rules.
fn rule_findings(ctx: &Context<'_>, rule: &CompiledRule, side: Side) -> Option<Part> {
    let part = match rule {
        CompiledRule::RequireProbes(r) => require_probes(ctx, r, side),
        CompiledRule::RequireResources(r) => require_resources(ctx, r, side),
        CompiledRule::RequireImageTag(r) => require_image_tag(ctx, r, side),
        CompiledRule::RequireLabels(r) => require_labels(ctx, r, side),
        CompiledRule::DisallowNamespaces(r) => disallow_namespaces(ctx, &r.namespaces, side),
        CompiledRule::Cel(r) => {
            let excepted = |c: Option<&str>| ctx.excepted(c);
            let scope = cel_rules::Scope {
                policy: ctx.policy,
                index: ctx.index,
                tag: ctx.tag,
                ratchet: ctx.ratchet,
                excepted: (!ctx.exceptions.is_empty())
                    .then_some(&excepted as cel_rules::Excepted<'_>),
            };
            let p = cel_rules::findings(&scope, r, side.into()).ok()?;
            Part {
                found: p.found,
                clean: p.clean,
            }
        }
        CompiledRule::InjectSidecar(_) | CompiledRule::DefaultLabels(_) => {
            return None;
        }
    };
    Some(Part {
        found: format!("({})", part.found),
        clean: format!("({})", part.clean),
    })
}

/// The `variables` and `validations` of a policy object for `policy`'s validation rules in
/// `mode`; the policy's own variables are named with `tag` appended (see [`Context::tag`]).
/// `None` when the policy has no validation rule.
pub(super) fn validations(
    policy: &CompiledPolicy,
    mode: Mode,
    exceptions: &[&CompiledException],
    tag: &str,
) -> Option<(Vec<Value>, Vec<Value>)> {
    let ratchet = mode == Mode::Enforce;
    let context = |index: usize, rule: &CompiledRule, ratchet: bool| Context {
        policy: &policy.name,
        rule: rule.type_name(),
        index,
        exceptions: exceptions
            .iter()
            .enumerate()
            .filter(|(_, e)| scope::names_rule(e, &policy.name, rule.type_name()))
            .map(|(i, e)| (i, *e))
            .collect(),
        ratchet,
        tag,
    };
    let parts: Vec<Part> = policy
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| rule_findings(&context(i, r, ratchet), r, Side::New))
        .collect();
    let cel: Vec<(usize, &CompiledCel)> = policy
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            CompiledRule::Cel(c) if cel_rules::unsupported(r).is_none() => Some((i, c.as_ref())),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let Part { found, clean } = Part::join(parts);
    let mut variables = vec![
        json!({"name": "spec", "expression": pod_spec("object")}),
        json!({"name": "specPath", "expression": SPEC_PATH}),
        json!({"name": "workload", "expression": WORKLOAD}),
    ];
    for (i, e) in exceptions.iter().enumerate() {
        variables.push(json!({
            "name": format!("exception{i}{tag}"),
            "expression": cel::exception_selects(&e.match_),
        }));
    }
    variables.extend(cel_rules::variables(&cel, tag, cel_rules::Side::New));
    if ratchet {
        let old: Vec<String> = policy
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rule_findings(&context(i, r, false), r, Side::Old))
            .map(|p| p.found)
            .collect();
        variables.push(json!({"name": "oldSpec", "expression": format!(
            "request.operation == 'UPDATE' && oldObject != null ? ({}) : {{}}",
            pod_spec("oldObject")
        )}));
        variables.extend(cel_rules::variables(&cel, tag, cel_rules::Side::Old));
        variables.push(json!({"name": format!("old{tag}"), "expression": format!(
            "request.operation == 'UPDATE' && oldObject != null ? {} : []",
            old.join(" + ")
        )}));
    }
    variables.push(json!({"name": format!("found{tag}"), "expression": found}));
    let count = format!("variables.found{tag}.map(g, size(g)).sum()");
    let texts = format!("variables.found{tag}.map(g, g.join(' | ')).join(' | ')");
    let message = match mode {
        Mode::Enforce => format!(
            "'Portcullis denied ' + variables.workload + ': ' + string({count}) + ({count} == 1 ? ' violation: ' : ' violations: ') + {texts}"
        ),
        _ => format!("variables.workload + ': ' + {texts}"),
    };
    // The API server evaluates every messageExpression of a matching policy, failing or not
    // (each in its own activation: variables are computed again), so the message, too, is
    // built only when a check fails.
    let validation = json!({
        "expression": format!("{clean} || size(variables.found{tag}) == 0"),
        "messageExpression": format!("{clean} ? '' : {message}"),
        "message": format!("Portcullis policy {} found violations", policy.name),
        "reason": "Forbidden",
    });
    Some((variables, vec![validation]))
}
