//! Kubernetes objects for the cases, as JSON: containers that pass the default policies or
//! lack what they require, Pods and Deployments around them.

use serde_json::{Value, json};

/// A container that passes the default policies: probes, cpu/memory requests and limits.
pub fn container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "registry.example/app:1.0",
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "128Mi"}
        }
    })
}

/// A container with neither probes nor resources.
pub fn bare_container(name: &str) -> Value {
    json!({"name": name, "image": "registry.example/app:1.0"})
}

/// A Pod of one container.
pub fn pod(name: &str, container: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]}
    })
}

/// A Deployment of `replicas` Pods of one container, labelled `app: NAME`.
pub fn deployment(name: &str, replicas: u32, container: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]}
            }
        }
    })
}

/// The pod spec of a Pod or a controller (its template; a CronJob's job template).
pub fn pod_spec(object: &Value) -> &Value {
    match object["kind"].as_str() {
        Some("Pod") => &object["spec"],
        Some("CronJob") => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &object["spec"]["template"]["spec"],
    }
}

/// The names of every container and init container of an object's pod spec.
pub fn container_names(object: &Value) -> Vec<String> {
    let spec = pod_spec(object);
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| spec[*list].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// Whether the object's pod spec has a container (or init container) of that name.
pub fn has_container(object: &Value, name: &str) -> bool {
    container_names(object).iter().any(|n| n == name)
}

/// The container (or init container) of that name.
pub fn find_container<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let spec = pod_spec(object);
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[*list].as_array())
        .flatten()
        .find(|c| c["name"] == name)
}
