//! Policy file validation: every kind of mistake is reported with its file, line, message and
//! hint, and every problem of a set is reported, not only the first.

use std::path::Path;

use portcullis::lint::load_str;
use portcullis::policy::load::Diagnostic;

const HEAD: &str = "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: p\nspec:\n  mode: enforce\n";

fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match load_str(Path::new("policies/p.yaml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics,
    }
}

/// The 1-based line carrying the `#<-` marker.
fn marked_line(text: &str) -> usize {
    text.lines()
        .position(|l| l.contains("#<-"))
        .map(|i| i + 1)
        .expect("each case marks its expected line with #<-")
}

/// (what, policy text after HEAD (or a whole document if it starts with `apiVersion`),
/// expected message fragment). The expected line is marked `#<-` in the text.
const CASES: &[(&str, &str, &str)] = &[
    (
        "not a policy",
        "apiVersion: apps/v1  #<-\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n",
        "apiVersion: expected \"portcullis.dev/v1alpha1\", found \"apps/v1\"",
    ),
    (
        "wrong kind",
        "apiVersion: portcullis.dev/v1alpha1\nkind: Polcy  #<-\nmetadata: {name: p}\nspec: {mode: enforce, rules: [{requireProbes: {}}]}\n",
        "kind: expected \"Policy\" or \"PolicyException\", found \"Polcy\"",
    ),
    (
        "unknown field",
        "  rules: [{requireProbes: {}}]\n  exlude: {}  #<-\n",
        "unknown field `exlude`",
    ),
    (
        "unknown field in a rule",
        "  rules:\n    - requireProbes:\n        livenes: true  #<-\n",
        "unknown field `livenes`",
    ),
    (
        "wrong type",
        "  rules:\n    - requireResources:\n        requests: cpu  #<-\n",
        "invalid type",
    ),
    (
        "unknown mode",
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  mode: deny  #<-\n  rules: [{requireProbes: {}}]\n",
        "unknown variant `deny`",
    ),
    (
        "two rule types in one item",
        "  rules:\n    - requireProbes: {}  #<-\n      requireResources: {}\n",
        "a rule has exactly one rule type, found requireProbes, requireResources",
    ),
    (
        "policy name not a DNS label",
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: Require_Probes  #<-\nspec: {mode: enforce, rules: [{requireProbes: {}}]}\n",
        "metadata.name: policy name \"Require_Probes\" may contain only lowercase letters",
    ),
    (
        "no rules",
        "  rules: []  #<-\n",
        "spec.rules: a policy needs at least one rule",
    ),
    (
        "requireProbes requires nothing",
        "  rules:\n    - requireProbes:  #<-\n        liveness: false\n        readiness: false\n",
        "spec.rules[0].requireProbes: the rule requires no probe",
    ),
    (
        "requireResources requires nothing",
        "  rules:\n    - requireProbes: {}\n    - requireResources: {requests: [], limits: []}  #<-\n",
        "spec.rules[1].requireResources: the rule requires nothing",
    ),
    (
        "In without values",
        "  match:\n    objectSelector:\n      matchExpressions:\n        - key: team  #<-\n          operator: In\n  rules: [{requireProbes: {}}]\n",
        "spec.match.objectSelector.matchExpressions[0].values: operator In needs at least one value",
    ),
    (
        "Exists with values",
        "  match:\n    namespaceSelector:\n      matchExpressions:\n        - key: team\n          operator: Exists\n          values: [a]  #<-\n  rules: [{requireProbes: {}}]\n",
        "operator Exists takes no values",
    ),
    (
        "invalid label key",
        "  match:\n    objectSelector:\n      matchLabels:\n        -bad: x  #<-\n  rules: [{requireProbes: {}}]\n",
        "invalid label key \"-bad\"",
    ),
    (
        "invalid label key prefix",
        "  match:\n    objectSelector:\n      matchLabels:\n        Example.COM/team: x  #<-\n  rules: [{requireProbes: {}}]\n",
        "the prefix \"Example.COM\"",
    ),
    (
        "invalid label value",
        "  match:\n    objectSelector:\n      matchLabels:\n        team: \"a b\"  #<-\n  rules: [{requireProbes: {}}]\n",
        "invalid label value \"a b\"",
    ),
    (
        "Exists and DoesNotExist",
        "  match:\n    objectSelector:  #<-\n      matchExpressions:\n        - {key: team, operator: Exists}\n        - {key: team, operator: DoesNotExist}\n  rules: [{requireProbes: {}}]\n",
        "spec.match.objectSelector: the selector can never match: label \"team\" is required to be absent and present",
    ),
    (
        "matchLabels value not in In",
        "  match:\n    objectSelector:  #<-\n      matchLabels: {team: a}\n      matchExpressions:\n        - {key: team, operator: In, values: [b, c]}\n  rules: [{requireProbes: {}}]\n",
        "the selector can never match: no value of label \"team\"",
    ),
    (
        "NotIn contains the matchLabels value",
        "  exclude:\n    objectSelector:  #<-\n      matchLabels: {team: a}\n      matchExpressions:\n        - {key: team, operator: NotIn, values: [a]}\n  rules: [{requireProbes: {}}]\n",
        "spec.exclude.objectSelector: the selector can never match: every value",
    ),
    (
        "empty exclude",
        "  exclude: {}  #<-\n  rules: [{requireProbes: {}}]\n",
        "spec.exclude: an exclude block with no field set would exclude every workload",
    ),
    (
        "exclude takes out everything",
        "  match: {kinds: [Job, CronJob]}\n  exclude:  #<-\n    kinds: [CronJob, Job]\n  rules: [{requireProbes: {}}]\n",
        "spec.exclude: the exclude block takes out every workload",
    ),
    (
        "included namespaces all excluded",
        "  match:\n    namespaces:  #<-\n      include: [prod, prod-eu]\n      exclude: [prod*]\n  rules: [{requireProbes: {}}]\n",
        "spec.match.namespaces: every included namespace is also excluded",
    ),
    (
        "invalid namespace pattern",
        "  match:\n    namespaces:\n      include:\n        - team-a\n        - Team_B  #<-\n  rules: [{requireProbes: {}}]\n",
        "spec.match.namespaces.include[1]: namespace pattern \"Team_B\" contains 'T'",
    ),
    (
        "disallowNamespaces empty",
        "  rules:\n    - disallowNamespaces:\n        namespaces: []  #<-\n",
        "spec.rules[0].disallowNamespaces.namespaces: the list of disallowed namespaces is empty",
    ),
    (
        "requireLabels empty",
        "  rules:\n    - requireLabels:\n        labels: []  #<-\n",
        "spec.rules[0].requireLabels.labels: the list of required labels is empty",
    ),
    (
        "requireLabels invalid key",
        "  rules:\n    - requireLabels:\n        labels:\n          - team\n          - \"cost center\"  #<-\n",
        "spec.rules[0].requireLabels.labels[1]: invalid label key \"cost center\"",
    ),
    (
        "defaultLabels adds nothing",
        "  rules:\n    - defaultLabels:  #<-\n        target: [object]\n",
        "the rule adds nothing",
    ),
    (
        "defaultLabels invalid literal value",
        "  rules:\n    - defaultLabels:\n        labels:\n          team: \"platform team\"  #<-\n",
        "spec.rules[0].defaultLabels.labels.team: label value \"platform team\"",
    ),
    (
        "defaultLabels template never a valid value",
        "  rules:\n    - defaultLabels:\n        labels:\n          app.kubernetes.io/instance: \"{{name}}/{{namespace}}\"  #<-\n",
        "spec.rules[0].defaultLabels.labels[\"app.kubernetes.io/instance\"]: label value \"{{name}}/{{namespace}}\" contains '/'",
    ),
    (
        "defaultLabels unknown reference",
        "  rules:\n    - defaultLabels:\n        annotations:\n          example.com/owner: \"{{owner}}\"  #<-\n",
        "unknown reference '{{owner}}'",
    ),
    (
        "defaultLabels template in a key",
        "  rules:\n    - defaultLabels:\n        labels:\n          \"{{kind}}\": x  #<-\n",
        "invalid label key \"{{kind}}\"",
    ),
    (
        "misspelled container field",
        "  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          livenesProbe:  #<-\n            tcpSocket: {port: 9901}\n",
        "spec.rules[0].injectSidecar.container.livenesProbe: unknown field `livenesProbe`: Kubernetes would ignore it silently",
    ),
    (
        "misspelled nested container field",
        "  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          resources:\n            limit: {cpu: 100m}  #<-\n",
        "spec.rules[0].injectSidecar.container.resources.limit: unknown field `limit`",
    ),
    (
        "misspelled volume field",
        "  rules:\n    - injectSidecar:\n        container: {name: proxy, image: envoyproxy/envoy:v1.31.2}\n        volumes:\n          - name: scratch\n            emptydir: {}  #<-\n",
        "spec.rules[0].injectSidecar.volumes[0].emptydir: unknown field `emptydir`",
    ),
    (
        "app mount of an undefined volume",
        "  rules:\n    - injectSidecar:\n        container: {name: proxy, image: envoyproxy/envoy:v1.31.2}\n        volumes: [{name: logs, emptyDir: {}}]\n        volumeMounts:\n          - name: log  #<-\n            mountPath: /var/log/app\n",
        "spec.rules[0].injectSidecar.volumeMounts[0].name: an app container mounts volume \"log\", which the rule's `volumes` do not define",
    ),
    (
        "sidecar mount of an undefined volume",
        "  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          volumeMounts:\n            - {name: certs, mountPath: /etc/certs}  #<-\n",
        "spec.rules[0].injectSidecar.container.volumeMounts[0].name: the sidecar mounts volume \"certs\"",
    ),
    (
        "duplicate volume name",
        "  rules:\n    - injectSidecar:\n        container: {name: proxy, image: envoyproxy/envoy:v1.31.2}\n        volumes:\n          - {name: logs, emptyDir: {}}\n          - name: logs  #<-\n            emptyDir: {}\n",
        "spec.rules[0].injectSidecar.volumes[1].name: duplicate volume name \"logs\"",
    ),
    (
        "duplicate mount path",
        "  rules:\n    - injectSidecar:\n        container: {name: proxy, image: envoyproxy/envoy:v1.31.2}\n        volumes: [{name: a, emptyDir: {}}, {name: b, emptyDir: {}}]\n        volumeMounts:\n          - {name: a, mountPath: /data}\n          - name: b\n            mountPath: /data  #<-\n",
        "spec.rules[0].injectSidecar.volumeMounts[1].mountPath: mountPath \"/data\" is mounted twice",
    ),
    (
        "sidecar without image",
        "  rules:\n    - injectSidecar:\n        container:  #<-\n          name: proxy\n",
        "spec.rules[0].injectSidecar.container.image: the sidecar container has no image",
    ),
    (
        "sidecar name not a DNS label",
        "  rules:\n    - injectSidecar:\n        container:\n          name: Log_Shipper  #<-\n          image: fluent/fluent-bit:3.2.4\n",
        "container name \"Log_Shipper\"",
    ),
    (
        "template reference in a sidecar",
        "  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          args:\n            - --service-cluster\n            - \"{{name}}\"  #<-\n",
        "spec.rules[0].injectSidecar.container.args[1]: `{{...}}` references are not expanded in sidecar templates",
    ),
    (
        "restartPolicy on a regular sidecar",
        "  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          restartPolicy: Always  #<-\n",
        "restartPolicy \"Always\" is only valid on init containers",
    ),
    (
        "invalid opt-out annotation",
        "  rules:\n    - injectSidecar:\n        optOutAnnotation: \"inject sidecar\"  #<-\n        container: {name: proxy, image: envoyproxy/envoy:v1.31.2}\n",
        "spec.rules[0].injectSidecar.optOutAnnotation: invalid annotation key \"inject sidecar\"",
    ),
    (
        "invalid forbidden tag",
        "  rules:\n    - requireImageTag:\n        forbiddenTags:\n          - latest\n          - nginx:latest  #<-\n",
        "spec.rules[0].requireImageTag.forbiddenTags[1]: forbidden tag \"nginx:latest\"",
    ),
    (
        "YAML syntax error",
        "  rules:\n    - requireProbes: {liveness: true\n    - requireResources: {}  #<-\n",
        "did not find expected",
    ),
];

#[test]
fn each_mistake_is_reported_with_line_message_and_hint() {
    let mut failures = Vec::new();
    for (what, body, fragment) in CASES {
        let text = if body.starts_with("apiVersion") {
            (*body).to_owned()
        } else {
            format!("{HEAD}{body}")
        };
        let want_line = marked_line(&text);
        let diags = diagnostics(&text);
        let hit = diags
            .iter()
            .find(|d| d.message.contains(fragment) && d.line == want_line);
        match hit {
            Some(d) => {
                assert!(!d.hint.is_empty(), "{what}: diagnostic without a hint: {d}");
                assert_eq!(d.file, Path::new("policies/p.yaml"), "{what}");
                let shown = d.to_string();
                assert!(
                    shown.starts_with(&format!("policies/p.yaml:{want_line}: ")),
                    "{what}: {shown}"
                );
                assert!(shown.contains("\n  hint: "), "{what}: {shown}");
            }
            None => failures.push(format!(
                "{what}: wanted line {want_line} with {fragment:?}, got:\n{}",
                diags
                    .iter()
                    .map(|d| format!("  {}:{}", d.line, d.message))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn misspelled_container_fields_get_a_suggestion() {
    let text = format!(
        "{HEAD}  rules:\n    - injectSidecar:\n        container:\n          name: proxy\n          image: envoyproxy/envoy:v1.31.2\n          readinesProbe: {{tcpSocket: {{port: 1}}}}\n"
    );
    let diags = diagnostics(&text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].hint.starts_with("did you mean `readinessProbe`?"),
        "{}",
        diags[0].hint
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = "\
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata:
  name: Bad_Name
spec:
  mode: enforce
  exclude: {}
  rules:
    - requireProbes: {liveness: false, readiness: false}
    - requireLabels:
        labels: [\"a b\"]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: second}
spec:
  mode: warn
  rules:
    - requireProbes: {livenes: true}
";
    let got: Vec<(usize, String)> = diagnostics(text)
        .into_iter()
        .map(|d| (d.line, d.message.split(':').next().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            (4, "metadata.name".to_owned()),
            (7, "spec.exclude".to_owned()),
            (9, "spec.rules[0].requireProbes".to_owned()),
            (11, "spec.rules[1].requireLabels.labels[0]".to_owned()),
            (19, "spec.rules[0].requireProbes".to_owned()),
        ]
    );
}

#[test]
fn multi_document_files_locate_each_document() {
    let text = "\
# Two valid policies and a broken one.
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: first}
spec: {mode: enforce, rules: [{requireProbes: {}}]}
---
# The second one.

apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: second}
spec:
  mode: audit
  rules: [{requireResources: {}}]
...
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: third}
spec:
  mode: warn
  rules:
    - defaultLabels:
        labels: {team: \"-x\"}
";
    let diags = diagnostics(text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].line, 24);
    assert!(
        diags[0]
            .message
            .starts_with("spec.rules[0].defaultLabels.labels.team: label value \"-x\"")
    );

    let fixed = text.replace("\"-x\"", "x");
    let set = load_str(Path::new("p.yaml"), &fixed).expect("valid once fixed");
    let starts: Vec<(&str, usize)> = set
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.source.line))
        .collect();
    assert_eq!(starts, vec![("first", 2), ("second", 9), ("third", 17)]);
}

#[test]
fn duplicate_names_in_one_file_name_both_lines() {
    let text = "\
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: same}
spec: {mode: enforce, rules: [{requireProbes: {}}]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata:
  name: same
spec: {mode: enforce, rules: [{requireResources: {}}]}
";
    let diags = diagnostics(text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].line, 9);
    assert_eq!(
        diags[0].message,
        "metadata.name: duplicate policy name \"same\", also defined at policies/p.yaml:3"
    );
}

#[test]
fn empty_documents_and_comments_are_skipped() {
    let text = "# only a comment\n---\n---\n# another\n";
    let set = load_str(Path::new("p.yaml"), text).expect("loads");
    assert!(set.policies.is_empty());
}

#[test]
fn deep_nesting_is_refused_before_parsing_with_its_line() {
    // 100,000 levels: the YAML parser alone took over a minute to say "recursion limit".
    for (what, deep, line) in [
        (
            "flow",
            format!(" {}{}", "[".repeat(100_000), "]".repeat(100_000)),
            5,
        ),
        ("compact", format!("\n  {}x", "- ".repeat(100_000)), 6),
    ] {
        let text = format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: deep}}\nspec:\n  rules:{deep}\n"
        );
        let d = diagnostics(&text);
        assert_eq!(d.len(), 1, "{what}: {d:?}");
        assert_eq!(d[0].line, line, "{what}");
        assert!(
            d[0].message
                .starts_with("nested deeper than 128 levels, at column "),
            "{what}: {}",
            d[0].message
        );
    }
}

/// The default labels of the one policy in `text` (after HEAD), rendered.
fn default_labels(text: &str) -> Vec<(String, String)> {
    let set = load_str(Path::new("policies/p.yaml"), &format!("{HEAD}{text}"))
        .unwrap_or_else(|e| panic!("loads: {e}"));
    let policy = set.get("p").expect("the policy");
    policy
        .rules
        .iter()
        .find_map(|r| match r {
            portcullis::policy::CompiledRule::DefaultLabels(d) => Some(
                d.labels
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render("web", Some("ns"), "Pod").expect("text")))
                    .collect(),
            ),
            _ => None,
        })
        .expect("a defaultLabels rule")
}

#[test]
fn unquoted_numbers_and_booleans_where_text_is_wanted_are_read_as_written() {
    // As policy files were always read (serde_yaml_ng read a plain scalar as its text where a
    // string was wanted): the text as written, never the number's own form.
    let labels = default_labels(
        "  rules:\n    - defaultLabels:\n        labels: {tier: 1, version: 1.10, canary: true, mask: 0x1F, big: 1e3, quoted: '2'}\n",
    );
    let want = [
        ("big", "1e3"),
        ("canary", "true"),
        ("mask", "0x1F"),
        ("quoted", "2"),
        ("tier", "1"),
        ("version", "1.10"),
    ];
    assert_eq!(
        labels,
        want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
    );
    // Where a number is not what the field wants, the error tells the value as it was read.
    let found = diagnostics(&format!(
        "{HEAD}  rules:\n    - requireProbes:\n        liveness: 1\n"
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("invalid type: integer `1`, expected a boolean"),
        "{}",
        found[0].message
    );
    assert_eq!(found[0].line, 9);
}
