//! CEL rules (`- cel: {...}`): what they find, what is refused at load (with file, line and
//! column), and the cost bound: pathological expressions are refused at load or answered
//! within the budget on the largest object the webhook accepts.

mod common;

use std::path::Path;

use common::{request_of, review};
use portcullis::engine::{Decision, Effect, Request, evaluate};
use portcullis::policy::{PolicySet, Timestamp};
use serde_json::{Value, json};

fn policy(rule: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: team-rule}}\nspec:\n  mode: enforce\n  rules:\n  - cel:\n{rule}"
    )
}

fn load(rule: &str) -> PolicySet {
    portcullis::lint::load_str(Path::new("cel.yaml"), &policy(rule))
        .unwrap_or_else(|e| panic!("the policy loads: {e}"))
}

/// The load error's text.
fn refused(rule: &str) -> String {
    match portcullis::lint::load_str(Path::new("cel.yaml"), &policy(rule)) {
        Ok(_) => panic!("the policy was accepted:\n{rule}"),
        Err(e) => e.to_string(),
    }
}

fn at() -> Timestamp {
    "2026-01-01".parse().expect("a date")
}

fn judge(set: &PolicySet, object: &Value) -> Decision {
    evaluate(set, &Request::create(object, at()))
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": containers}}}
    })
}

/// (container, field, message) of each violation.
fn violations(d: &Decision) -> Vec<(String, String, String)> {
    d.violations()
        .map(|f| {
            (
                f.container.clone().unwrap_or_default(),
                f.field.clone(),
                f.message.clone(),
            )
        })
        .collect()
}

#[test]
fn a_false_validation_denies_with_its_message() {
    let set = load(
        r#"      validations:
      - expression: "object.spec.replicas >= 2"
        message: "at least two replicas"
      - expression: "object.metadata.name.startsWith('w')"
"#,
    );
    let d = judge(&set, &deployment(json!([{"name": "a", "image": "x"}])));
    assert!(!d.allowed);
    assert_eq!(
        violations(&d),
        [(
            String::new(),
            String::new(),
            "at least two replicas".to_owned()
        )]
    );
}

#[test]
fn without_a_message_the_api_servers_words() {
    let set = load("      validations:\n      - expression: \"object.spec.replicas >= 2\"\n");
    let d = judge(&set, &deployment(json!([])));
    assert_eq!(
        violations(&d)[0].2,
        "failed expression: object.spec.replicas >= 2"
    );
}

#[test]
fn a_message_expression_gives_the_message_and_falls_back_when_it_fails() {
    let set = load(
        r#"      validations:
      - expression: "object.spec.replicas >= 2"
        messageExpression: "'replicas is ' + string(object.spec.replicas)"
      - expression: "object.spec.replicas >= 3"
        message: "fallback"
        messageExpression: "object.nope.nope"
"#,
    );
    let d = judge(&set, &deployment(json!([])));
    let messages: Vec<String> = violations(&d).into_iter().map(|v| v.2).collect();
    assert_eq!(messages, ["replicas is 1", "fallback"]);
}

#[test]
fn pod_spec_and_pod_metadata_are_the_template_wherever_the_kind_keeps_it() {
    let set = load(
        r#"      validations:
      - expression: "!podSpec.?hostNetwork.orValue(false)"
        message: "hostNetwork is not allowed"
      - expression: "has(podMetadata.labels) && 'app' in podMetadata.labels"
        message: "the pod template needs an app label"
"#,
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x"}]}});
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {},
            "spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x"}]}}}}}});
    let msgs = |d: &Decision| violations(d).into_iter().map(|v| v.2).collect::<Vec<_>>();
    assert_eq!(msgs(&judge(&set, &pod)), ["hostNetwork is not allowed"]);
    assert_eq!(
        msgs(&judge(&set, &cron)),
        [
            "hostNetwork is not allowed",
            "the pod template needs an app label"
        ]
    );
    let d = judge(&set, &deployment(json!([{"name": "a", "image": "x"}])));
    assert!(d.allowed, "{:?}", violations(&d));
}

#[test]
fn the_per_container_form_names_each_container_and_its_field() {
    let set = load(
        r#"      forEachContainer: true
      variables:
      - name: registry
        expression: "'registry.corp/'"
      validations:
      - expression: "container.image.startsWith(variables.registry)"
        messageExpression: "'image ' + container.image + ' is not from ' + variables.registry"
"#,
    );
    let mut object = deployment(json!([
        {"name": "ok", "image": "registry.corp/web:1"},
        {"name": "bad", "image": "docker.io/web:1"}
    ]));
    object["spec"]["template"]["spec"]["initContainers"] =
        json!([{"name": "init", "image": "busybox"}]);
    object["spec"]["template"]["spec"]["ephemeralContainers"] =
        json!([{"name": "debug", "image": "busybox"}]);
    let d = judge(&set, &object);
    assert_eq!(
        violations(&d),
        [
            (
                "bad".to_owned(),
                "spec.template.spec.containers[1]".to_owned(),
                "image docker.io/web:1 is not from registry.corp/".to_owned()
            ),
            (
                "init".to_owned(),
                "spec.template.spec.initContainers[0]".to_owned(),
                "image busybox is not from registry.corp/".to_owned()
            ),
            (
                "debug".to_owned(),
                "spec.template.spec.ephemeralContainers[0]".to_owned(),
                "image busybox is not from registry.corp/".to_owned()
            ),
        ]
    );
}

#[test]
fn a_runtime_error_is_a_violation_with_the_error() {
    let set = load("      validations:\n      - expression: \"object.spec.paused == 1\"\n");
    let d = judge(&set, &deployment(json!([])));
    assert!(!d.allowed, "fail closed");
    let m = &violations(&d)[0].2;
    assert!(
        m.starts_with("expression 'object.spec.paused == 1' resulted in error: "),
        "{m}"
    );
}

#[test]
fn match_conditions_decide_whether_the_rule_applies() {
    let set = load(
        r#"      matchConditions:
      - name: not-demo
        expression: "object.metadata.namespace != 'demo'"
      validations:
      - expression: "false"
"#,
    );
    assert!(judge(&set, &deployment(json!([]))).allowed);
    let mut elsewhere = deployment(json!([]));
    elsewhere["metadata"]["namespace"] = json!("prod");
    assert!(!judge(&set, &elsewhere).allowed);
}

/// As the API server: a condition that gives `false` skips the rule even when another one,
/// before or after it, fails; with none false, a failure is the violation.
#[test]
fn a_false_match_condition_wins_over_another_ones_error() {
    let rule = |first: &str, second: &str| {
        format!(
            "      matchConditions:\n      - name: first\n        expression: \"{first}\"\n      \
             - name: second\n        expression: \"{second}\"\n      validations:\n      \
             - expression: \"false\"\n"
        )
    };
    let broken = "object.spec.paused == true";
    for (first, second) in [(broken, "false"), ("false", broken)] {
        let d = judge(&load(&rule(first, second)), &deployment(json!([])));
        assert!(d.allowed, "{first} / {second}: {:?}", violations(&d));
    }
    let d = judge(&load(&rule("true", broken)), &deployment(json!([])));
    let v = violations(&d);
    assert!(!d.allowed && v.len() == 1, "{v:?}");
    assert!(
        v[0].2
            .starts_with("matchCondition 'second' resulted in error: "),
        "{v:?}"
    );
}

#[test]
fn a_variable_is_evaluated_only_when_read_and_its_error_named() {
    let set = load(
        r#"      variables:
      - name: broken
        expression: "object.spec.paused"
      - name: replicas
        expression: "object.spec.replicas"
      validations:
      - expression: "variables.replicas == 1 || variables.broken == 1"
      - expression: "variables.replicas == 5 || variables.broken == 1"
"#,
    );
    let d = judge(&set, &deployment(json!([])));
    let v = violations(&d);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].2
            .contains("composited variable \"broken\" fails to evaluate"),
        "{v:?}"
    );
}

/// `request.kind` and `request.resource` as a VAP sees them: from the AdmissionReview in the
/// webhook (its `resource`, as sent), from the object's apiVersion and kind elsewhere.
#[test]
fn request_kind_and_resource_carry_version_and_resource() {
    let set = load(
        r#"      validations:
      - expression: "request.kind.version == 'v1' && request.kind.group == 'apps' && request.resource.group == 'apps' && request.resource.version == 'v1'"
        message: "kind"
      - expression: "request.resource.resource == 'deployments'"
        message: "resource"
"#,
    );
    let d = judge(&set, &deployment(json!([{"name": "a", "image": "x"}])));
    assert!(d.allowed, "{:?}", violations(&d));
    let mut r = review("validate-update-deployment-replicas.json");
    let review = |r: &Value| {
        portcullis::admission::parse_review(&serde_json::to_vec(r).expect("JSON"))
            .expect("a review")
    };
    let d = review(&r).evaluate(&set, at());
    assert!(d.allowed, "{:?}", violations(&d));
    // The webhook takes the resource from the review, not from the kind.
    r["request"]["resource"]["resource"] = json!("deployments-as-sent");
    let d = review(&r).evaluate(&set, at());
    let v = violations(&d);
    assert!(v.len() == 1 && v[0].2 == "resource", "{v:?}");
}

#[test]
fn request_old_object_and_namespace_object_are_bound() {
    let set = load(
        r#"      validations:
      - expression: "request.operation == 'UPDATE' && oldObject.spec.replicas == 3"
        message: "an update from three replicas"
      - expression: "namespaceObject == null"
"#,
    );
    let mut r = review("validate-update-deployment-replicas.json");
    r["request"]["oldObject"]["spec"]["replicas"] = json!(3);
    let d = evaluate(&set, &request_of(&r));
    assert!(d.allowed, "{:?}", violations(&d));
    r["request"]["oldObject"]["spec"]["replicas"] = json!(2);
    let d = evaluate(&set, &request_of(&r));
    assert_eq!(violations(&d)[0].2, "an update from three replicas");
}

#[test]
fn an_update_ratchets_each_validation_on_its_own() {
    let set = load(
        r#"      forEachContainer: true
      validations:
      - expression: "!container.image.endsWith(':latest')"
        message: "no latest"
      - expression: "container.image.contains(':')"
        message: "a tag"
"#,
    );
    let mut r = review("validate-update-deployment-replicas.json");
    r["request"]["oldObject"]["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "web", "image": "nginx:latest"}]);
    r["request"]["object"]["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "web", "image": "nginx"}]);
    let d = evaluate(&set, &request_of(&r));
    // Validation 0 held before and holds now; validation 1 is new: it denies, although the
    // stored object violated another validation of the same rule about the same container.
    let denied: Vec<_> = d
        .violations()
        .filter(|f| f.effect == Effect::Deny)
        .map(|f| f.message.clone())
        .collect();
    assert_eq!(denied, ["a tag"]);
    r["request"]["object"]["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "web", "image": "nginx:latest"}]);
    let d = evaluate(&set, &request_of(&r));
    assert!(d.allowed, "the same violation as stored only warns");
    assert!(d.violations().all(|f| f.pre_existing));
}

/// Each refusal: (rule, what the message says, line:column it points at).
#[test]
fn what_the_interpreter_cannot_honour_is_refused_at_load_with_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "      validations:\n      - expression: \"params.x == 1\"\n",
            "`params` is not supported",
            "cel.yaml:9:22:",
        ),
        (
            "      validations:\n      - expression: \"authorizer.group('').check()\"\n",
            "`authorizer` is not supported",
            "cel.yaml:9:22:",
        ),
        (
            "      validations:\n      - expression: \"cel.bind(x, 1, x == 1)\"\n",
            "`cel.bind` is not supported",
            "cel.yaml:9:22:",
        ),
        (
            "      validations:\n      - expression: \"object.metadata.labels.all(k, v, v != '')\"\n",
            "two-variable comprehensions",
            "cel.yaml:9:45:",
        ),
        (
            "      validations:\n      - expression: \"object.metadata.name.startWith('a')\"\n",
            "unknown function `startWith`",
            "cel.yaml:9:43:",
        ),
        (
            "      validations:\n      - expression: \"self.x == 1\"\n",
            "unknown variable `self`",
            "cel.yaml:9:22:",
        ),
        (
            "      validations:\n      - expression: \"container.image != ''\"\n",
            "`container` is bound only in the per-container form",
            "cel.yaml:9:22:",
        ),
        (
            "      validations:\n      - expression: \"object.spec.replicas >= \"\n",
            "CEL syntax error",
            "cel.yaml:9:",
        ),
        (
            "      validations:\n      - expression: |\n          object.spec.replicas > 1 &&\n            variables.nope\n",
            "unknown variable `variables.nope`",
            "cel.yaml:11:13:",
        ),
    ];
    for (rule, says, position) in cases {
        let e = refused(rule);
        assert!(e.contains(says), "{rule}\n{e}");
        assert!(e.contains(position), "{rule}: want {position}\n{e}");
    }
}

/// Field names are checked against the Kubernetes schema: each typo refused with where it
/// is and the close name (rule, what the message says, the close name, line:column).
#[test]
fn unknown_fields_are_refused_at_load_with_the_close_name() {
    let v = |e: &str| format!("      validations:\n      - expression: \"{e}\"\n");
    let per_container = |e: &str| {
        format!("      forEachContainer: true\n      validations:\n      - expression: \"{e}\"\n")
    };
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            v("!podSpec.hostNetwrok"),
            "unknown field `hostNetwrok`",
            "`hostNetwork`",
            "cel.yaml:9:31:",
        ),
        (
            per_container("has(container.securityContex)"),
            "unknown field `securityContex`",
            "`securityContext`",
            "cel.yaml:10:36:",
        ),
        (
            per_container("container.?securityContext.?privilegd.orValue(false) == false"),
            "unknown field `privilegd`",
            "`privileged`",
            "cel.yaml:10:50:",
        ),
        (
            v("podSpec.containers.all(c, c.imagePullPolicyy != 'Always')"),
            "unknown field `imagePullPolicyy`",
            "`imagePullPolicy`",
            "cel.yaml:9:50:",
        ),
        (
            v("podSpec.containers[0].resources.limts.size() > 0"),
            "unknown field `limts`",
            "`limits`",
            "cel.yaml:9:54:",
        ),
        (
            v("podSpec[?'nodeSelectr'].hasValue()"),
            "unknown field `nodeSelectr`",
            "`nodeSelector`",
            "cel.yaml:9:32:",
        ),
        (
            v("podMetadata.lables.app == 'x'"),
            "unknown field `lables`",
            "`labels`",
            "cel.yaml:9:34:",
        ),
        (
            v("object.metadata.namspace == 'x'"),
            "unknown field `namspace`",
            "`namespace`",
            "cel.yaml:9:38:",
        ),
        (
            v("object.spec.replicsa >= 2"),
            "unknown field `replicsa`",
            "`replicas`",
            "cel.yaml:9:34:",
        ),
    ];
    for (rule, says, close, position) in &cases {
        let e = refused(rule);
        assert!(e.contains(says) && e.contains(close), "{rule}\n{e}");
        assert!(e.contains(position), "{rule}: want {position}\n{e}");
    }
    // What the schema leaves free, or what is not certainly of a type, is not checked.
    for rule in [
        v("podMetadata.labels.anything == 'x' || has(object.metadata.annotations.whatever)"),
        v("podSpec.containers.all(c, c.resources.?limits[?'nvidia.com/gpu'].hasValue())"),
        v(
            "object.spec.?jobTemplate.?spec.?template.hasValue() || object.spec.template.metadata.name == ''",
        ),
        v("object.status.anything == 1 || object.missing == 1 || request.kind.group == ''"),
        v("podSpec.containers.map(c, c.name).all(n, n.size() > 0)"),
        v(
            "object.spec.replicas >= 2 && object.spec.schedule != '' && object.spec.selector.matchLabels.app == 'x'",
        ),
        per_container("container.targetContainerName == '' || container.image != ''"),
    ] {
        load(&rule);
    }
}

/// A Deployment of `n` containers, each with `per` env vars and a volume, as large as the
/// webhook accepts (4 MiB).
fn huge(n: usize, per: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": "registry.corp/x:1",
                "env": (0..per).map(|j| json!({"name": format!("E{j}"), "value": "v"})).collect::<Vec<_>>()})
        })
        .collect();
    let volumes: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
        .collect();
    let mut d = deployment(Value::Array(containers));
    d["spec"]["template"]["spec"]["volumes"] = Value::Array(volumes);
    d
}

#[test]
fn pathological_expressions_are_refused_at_load() {
    let cases: &[(&str, &str)] = &[
        // Every container × every volume × every env var.
        (
            "podSpec.containers.all(c, podSpec.volumes.all(v, podSpec.containers.all(d, d.env.all(e, e.name != v.name))))",
            "too expensive",
        ),
        (
            "podSpec.containers.all(c, podSpec.volumes.all(v, c.name != v.name))",
            "too expensive",
        ),
        (
            "lists.range(object.spec.replicas).size() < 10",
            "lists.range",
        ),
        ("lists.range(100000000).all(i, i >= 0)", "too expensive"),
        (
            "podSpec.containers.map(c, podSpec.containers.map(d, object)).size() > 0",
            "too expensive",
        ),
        (
            "object.metadata.name.replace('', object.metadata.name).replace('', object.metadata.name).size() > 0",
            "too expensive",
        ),
    ];
    for (expression, says) in cases {
        let e = refused(&format!(
            "      validations:\n      - expression: {:?}\n",
            expression
        ));
        assert!(e.contains(says), "{expression}\n{e}");
    }
}

#[test]
fn expensive_but_linear_rules_are_answered_within_the_budget_on_the_largest_object() {
    let set = load(
        r#"      forEachContainer: true
      validations:
      - expression: "container.?env.orValue([]).all(e, e.name.matches('^[A-Z_][A-Z0-9_]*$'))"
"#,
    );
    let object = huge(2000, 40);
    let bytes = serde_json::to_vec(&object).expect("json").len();
    assert!(bytes < 4 * 1024 * 1024, "{bytes} bytes");
    let d = judge(&set, &object);
    // Either every container is judged (and passes), or the rule is refused for this object
    // with the budget named: never an unbounded evaluation.
    let v = violations(&d);
    assert!(
        v.is_empty() || v.iter().all(|(_, _, m)| m.contains("over the budget")),
        "{:?}",
        &v[..v.len().min(3)]
    );
}

#[test]
fn optional_chains_and_indexes_give_none_for_absent_fields() {
    let set = load(
        r#"      validations:
      - expression: "object.?spec.?template.?spec.?hostNetwork.orValue(false) == false"
        message: "chain"
      - expression: "object.metadata.?labels[?'missing'].orValue('none') == 'none'"
        message: "index"
      - expression: "object.?spec.?template.?metadata.?labels.?app.orValue('') == 'web'"
        message: "present"
      - expression: "!has(object.spec.strategy)"
        message: "has"
"#,
    );
    let d = judge(&set, &deployment(json!([])));
    assert!(d.allowed, "{:?}", violations(&d));
}

/// Loads a rule with `expression` and judges a Deployment with it, on a thread with the
/// 2 MiB stack of tokio's workers (where the webhook loads and evaluates): the load error, or
/// whether the review was allowed. A stack overflow would abort the whole test process.
fn on_a_worker_stack(expression: String) -> Result<bool, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rule = format!(
                "      validations:\n      - expression: {}\n",
                serde_json::to_string(&expression).expect("a string")
            );
            let set = portcullis::lint::load_str(Path::new("cel.yaml"), &policy(&rule))
                .map_err(|e| e.to_string())?;
            Ok(judge(&set, &deployment(json!([{"name": "a", "image": "x"}]))).allowed)
        })
        .expect("a thread")
        .join()
        .expect("no panic")
}

/// Each construct at `n` levels (every one evaluates to true).
fn nested(construct: &str, n: usize) -> String {
    match construct {
        "parentheses" => format!("{}true{}", "(".repeat(n), ")".repeat(n)),
        "lists" => format!("{}true{} != []", "[".repeat(n), "]".repeat(n)),
        "calls" => format!("{}'x'{} == 'x'", "string(".repeat(n), ")".repeat(n)),
        "ternaries" => format!("{}true", "false ? false : ".repeat(n)),
        "comprehensions" => format!("{}true{}", "[1].all(x, ".repeat(n), ")".repeat(n)),
        "sums" => format!("1{} == {}", " + 1".repeat(n), n + 1),
        "conjunctions" => format!("true{}", " && true".repeat(n)),
        "selections" => format!("!object{}.hasValue()", ".?a".repeat(n)),
        "negations" => format!("{}1 != 0", "-".repeat(n)),
        other => panic!("no construct {other}"),
    }
}

#[test]
fn nesting_is_refused_past_what_a_worker_stack_holds_and_accepted_at_the_limit() {
    for construct in [
        "parentheses",
        "lists",
        "calls",
        "ternaries",
        "comprehensions",
        "sums",
        "conjunctions",
        "selections",
        "negations",
    ] {
        // The deepest accepted: every level up to it loads and evaluates to true.
        let mut n = 1;
        loop {
            match on_a_worker_stack(nested(construct, n)) {
                Ok(allowed) => assert!(allowed, "{construct} at {n} evaluates to true"),
                Err(e) => {
                    assert!(n > 2, "{construct} is accepted at 2 levels: {e}");
                    assert!(
                        e.contains("levels of brackets and ternaries; at most 8")
                            || e.contains(
                                "levels deep (long chains of operators nest too); at most 50"
                            )
                            || e.contains("characters long; at most 1000"),
                        "{construct} at {n} is refused for its depth: {e}"
                    );
                    break;
                }
            }
            n += 1;
        }
        // Far past the limit: refused, not a crash.
        let e = on_a_worker_stack(nested(construct, 5_000)).expect_err("refused");
        assert!(e.contains("at most"), "{construct} at 5000: {e}");
    }
}

#[test]
fn twenty_nested_parentheses_are_refused_with_where() {
    let e = on_a_worker_stack(format!("{}true{}", "(".repeat(20), ")".repeat(20)))
        .expect_err("refused");
    assert!(
        e.contains("cel.yaml:9:41:")
            && e.contains("nests 20 levels of brackets and ternaries; at most 8 are accepted"),
        "{e}"
    );
}

#[test]
fn brackets_inside_strings_do_not_count_and_long_expressions_are_refused() {
    let text = format!("'{}' != '' && r'\\' != ''", "((((((((((".repeat(5));
    assert_eq!(on_a_worker_stack(text), Ok(true));
    let long = format!("'{}' != ''", "a".repeat(992));
    assert_eq!(long.chars().count(), 1_000);
    assert_eq!(on_a_worker_stack(long.clone()), Ok(true));
    let e = on_a_worker_stack(long.replace("' !=", "a' !=")).expect_err("refused");
    assert!(
        e.contains("the expression is 1001 characters long; at most 1000 are accepted"),
        "{e}"
    );
}

/// The test below runs in the test profile, where overflow is always checked; a release build
/// checks it only where Cargo.toml says so: in the interpreter and kube-cel, the crates that do
/// CEL's arithmetic. Without these sections the release webhook would wrap
/// `[9223372036854775807, 1].sum()` to a negative number and judge by it.
#[test]
fn release_builds_check_overflow_in_the_crates_that_do_cels_arithmetic() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("Cargo.toml");
    for package in ["cel", "kube-cel"] {
        let header = format!("[profile.release.package.{package}]");
        let section: Vec<&str> = manifest
            .lines()
            .skip_while(|l| l.trim() != header)
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('['))
            .map(str::trim)
            .collect();
        assert!(
            section.contains(&"overflow-checks = true"),
            "{header} with overflow-checks = true in Cargo.toml: {section:?}"
        );
    }
}

#[test]
fn an_interpreter_panic_is_a_violation_with_the_error_not_a_crash() {
    for expression in [
        "-(-9223372036854775808) > 0",
        "[9223372036854775807, 1].sum() > 0",
    ] {
        let set = load(&format!(
            "      validations:\n      - expression: \"{expression}\"\n"
        ));
        let d = judge(&set, &deployment(json!([{"name": "a", "image": "x"}])));
        assert!(!d.allowed, "{expression} fails closed");
        let (_, _, message) = violations(&d).into_iter().next().expect("a violation");
        assert!(
            message.starts_with(&format!("expression '{expression}' resulted in error: "))
                && message.contains("overflow"),
            "{message}"
        );
    }
}
