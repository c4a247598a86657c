//! Properties of mutation over generated workloads: every patch applies cleanly with the
//! json-patch crate, and evaluating the patched object yields no further patch (idempotence,
//! as the apiserver may reinvoke the webhook).

mod common;

use portcullis::engine::{Request, evaluate};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app".to_owned()),
        Just("app.kubernetes.io/name".to_owned()),
        Just("app.kubernetes.io/managed-by".to_owned()),
        Just("a~b/c".to_owned()),
        "[a-z]{1,6}(/[a-z]{1,4})?".prop_map(|s| s),
    ]
}

fn labels() -> impl Strategy<Value = Option<Map<String, Value>>> {
    proptest::option::of(
        proptest::collection::btree_map(label_key(), "[a-z0-9]{0,5}", 0..4)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
    )
}

fn container(name: String) -> impl Strategy<Value = Value> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0..3usize).prop_map(move |(live, ready, res, mounts)| {
        let mut c = json!({"name": name.clone(), "image": "nginx:1.27"});
        if live {
            c["livenessProbe"] = json!({"tcpSocket": {"port": 80}});
        }
        if ready {
            c["readinessProbe"] = json!({"tcpSocket": {"port": 80}});
        }
        if res {
            c["resources"] = json!({"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}});
        }
        match mounts {
            1 => c["volumeMounts"] = json!([]),
            2 => c["volumeMounts"] = json!([{"name": "app-logs", "mountPath": "/elsewhere"}]),
            _ => {}
        }
        c
    })
}

fn pod_spec() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(0..1000u32, 1..4),
        0..3usize,
        proptest::option::of(prop_oneof![
            Just("Always"),
            Just("Never"),
            Just("OnFailure")
        ]),
        any::<bool>(),
    )
        .prop_flat_map(|(ids, volumes, restart, shipper_present)| {
            let names: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| format!("c{i}-{id}"))
                .collect();
            let containers: Vec<_> = names.into_iter().map(container).collect();
            (
                containers,
                Just(volumes),
                Just(restart),
                Just(shipper_present),
            )
        })
        .prop_map(|(containers, volumes, restart, shipper_present)| {
            let mut spec = json!({"containers": containers});
            match volumes {
                1 => spec["volumes"] = json!([]),
                2 => spec["volumes"] = json!([{"name": "app-logs", "emptyDir": {}}]),
                _ => {}
            }
            if let Some(r) = restart {
                spec["restartPolicy"] = json!(r);
            }
            if shipper_present {
                spec["initContainers"] =
                    json!([{"name": "log-shipper", "image": "x:1", "restartPolicy": "Always"}]);
            }
            spec
        })
}

fn workload() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![
        Just(("v1", "Pod")),
        Just(("apps/v1", "Deployment")),
        Just(("apps/v1", "StatefulSet")),
        Just(("apps/v1", "DaemonSet")),
        Just(("batch/v1", "Job")),
        Just(("batch/v1", "CronJob")),
        Just(("v1", "ReplicationController")),
    ];
    (kinds, pod_spec(), labels(), labels(), "[a-z]{1,8}", any::<bool>()).prop_map(
        |((api, kind), spec, obj_labels, tpl_labels, name, tpl_meta)| {
            let mut meta = json!({"name": name, "namespace": "team"});
            if let Some(l) = obj_labels {
                meta["labels"] = Value::Object(l);
            }
            let mut template = json!({"spec": spec});
            if tpl_meta {
                template["metadata"] = match tpl_labels {
                    Some(l) => json!({"labels": l}),
                    None => json!({}),
                };
            }
            let spec = match kind {
                "Pod" => template["spec"].clone(),
                "CronJob" => json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}),
                _ => json!({"template": template}),
            };
            json!({"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec})
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn patches_apply_and_mutation_is_idempotent(obj in workload()) {
        let set = common::test_policies();
        let first = evaluate(&set, &Request::create(&obj, portcullis::policy::Timestamp::from_unix(1_767_225_600)));
        let mut patched = obj.clone();
        prop_assert!(json_patch::patch(&mut patched, &first.patch.to_json_patch()).is_ok(), "patch {:?} failed", first.patch);
        // Patch JSON round-trips as the apiserver reads it.
        let text = serde_json::to_string(&first.patch).expect("serialize");
        let reparsed: json_patch::Patch = serde_json::from_str(&text).expect("parse");
        let mut again = obj.clone();
        json_patch::patch(&mut again, &reparsed).expect("reparsed patch applies");
        prop_assert_eq!(&again, &patched);

        let second = evaluate(&set, &Request::create(&patched, portcullis::policy::Timestamp::from_unix(1_767_225_600)));
        prop_assert!(second.patch.0.is_empty(), "second pass patched {:?}", second.patch);
        // Mutations never remove or change what the user wrote.
        prop_assert_eq!(&patched["metadata"]["name"], &obj["metadata"]["name"]);
        if let Some(labels) = obj["metadata"]["labels"].as_object() {
            for (k, v) in labels {
                prop_assert_eq!(&patched["metadata"]["labels"][k], v);
            }
        }
    }
}
