//! Listing what runs, for `portcullis audit --cluster`: every workload kind Portcullis judges,
//! page by page, and the labels of the namespaces they run in. Objects come out as the
//! apiserver stores them (plus `apiVersion` and `kind`, which list items lack), exactly what
//! `kubectl get -o yaml` prints; a kind or namespace that cannot be listed is reported and the
//! rest goes on.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController};
use kube::api::ListParams;
use kube::core::ApiResource;
use serde_json::Value;

use super::connect::{Connection, describe_error};
use crate::policy::model::WorkloadKind;
use crate::policy::select::NAMESPACE_NAME_LABEL;

/// Objects per list request: the apiserver's pages keep memory flat however large the cluster.
pub const PAGE_SIZE: u32 = 500;

/// The API resource of a workload kind (`apps/v1`, `deployments`).
pub fn api_resource(kind: WorkloadKind) -> ApiResource {
    match kind {
        WorkloadKind::Pod => ApiResource::erase::<Pod>(&()),
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        WorkloadKind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
        WorkloadKind::Job => ApiResource::erase::<Job>(&()),
        WorkloadKind::CronJob => ApiResource::erase::<CronJob>(&()),
        WorkloadKind::ReplicationController => ApiResource::erase::<ReplicationController>(&()),
    }
}

/// `deployments.apps`, `pods`: how kubectl names a resource.
pub fn resource_name(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Something that could not be listed (the rest was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    /// What: `deployments.apps in all namespaces`, `namespaces`.
    pub what: String,
    /// Why, as the API server said it.
    pub message: String,
    /// HTTP status, when the API server answered.
    pub code: Option<u16>,
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot list {}: {}", self.what, self.message)
    }
}

fn list_error(what: String, error: &kube::Error) -> ListError {
    ListError {
        what,
        message: describe_error(error),
        code: match error {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
    }
}

/// One page of a list: its objects, as JSON with `apiVersion` and `kind` set.
#[derive(Debug, serde::Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: kube::core::ListMeta,
    #[serde(default)]
    items: Vec<Value>,
}

/// Lists one resource page by page, calling `page` with each page's objects.
async fn list_pages(
    connection: &Connection,
    resource: &ApiResource,
    namespace: Option<&str>,
    mut page: impl FnMut(Vec<Value>),
) -> Result<usize, kube::Error> {
    let url = resource_url(resource, namespace);
    let mut params = ListParams::default().limit(PAGE_SIZE);
    let mut total = 0;
    loop {
        let request = kube::core::Request::new(&url)
            .list(&params)
            .map_err(kube::Error::BuildRequest)?;
        let list: RawList = connection.client.request(request).await?;
        let mut items = list.items;
        total += items.len();
        for item in &mut items {
            complete(item, resource);
        }
        page(items);
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(total),
        }
    }
}

/// The collection URL: `/apis/apps/v1/namespaces/shop/deployments`.
fn resource_url(resource: &ApiResource, namespace: Option<&str>) -> String {
    let base = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", resource.plural),
        None => format!("{base}/{}", resource.plural),
    }
}

/// Sets `apiVersion` and `kind` (list items lack them) first, as kubectl prints them, and
/// drops `metadata.managedFields` (kubectl hides it too; it never changes a verdict).
fn complete(item: &mut Value, resource: &ApiResource) {
    let Value::Object(fields) = item else { return };
    if let Some(Value::Object(meta)) = fields.get_mut("metadata") {
        meta.remove("managedFields");
    }
    let mut ordered = serde_json::Map::with_capacity(fields.len() + 2);
    ordered.insert(
        "apiVersion".to_owned(),
        Value::String(resource.api_version.clone()),
    );
    ordered.insert("kind".to_owned(), Value::String(resource.kind.clone()));
    for (k, v) in std::mem::take(fields) {
        if k != "apiVersion" && k != "kind" {
            ordered.insert(k, v);
        }
    }
    *fields = ordered;
}

/// The labels of the namespaces to audit (all of them, or the one named), by name, each with
/// `kubernetes.io/metadata.name`.
pub async fn namespace_labels(
    connection: &Connection,
    only: Option<&str>,
) -> Result<HashMap<String, BTreeMap<String, String>>, ListError> {
    let resource = ApiResource::erase::<Namespace>(&());
    let mut out = HashMap::new();
    let mut add = |items: Vec<Value>| {
        for ns in items {
            let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            let mut labels: BTreeMap<String, String> = ns
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            labels
                .entry(NAMESPACE_NAME_LABEL.to_owned())
                .or_insert_with(|| name.to_owned());
            out.insert(name.to_owned(), labels);
        }
    };
    match only {
        Some(name) => {
            let request = kube::core::Request::new("/api/v1/namespaces")
                .get(name, &kube::api::GetParams::default())
                .map_err(|e| {
                    list_error(format!("namespace {name}"), &kube::Error::BuildRequest(e))
                })?;
            let ns: Value = connection
                .client
                .request(request)
                .await
                .map_err(|e| list_error(format!("namespace {name}"), &e))?;
            add(vec![ns]);
        }
        None => {
            list_pages(connection, &resource, None, &mut add)
                .await
                .map_err(|e| list_error("namespaces".to_owned(), &e))?;
        }
    }
    Ok(out)
}

/// What [`list_workloads`] reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A page of objects of one kind.
    Page {
        /// The kind.
        kind: WorkloadKind,
        /// The objects, complete.
        objects: Vec<Value>,
    },
    /// A kind that could not be listed (entirely, or from some page on).
    Failed(ListError),
    /// A kind is done.
    Done {
        /// `deployments.apps`.
        resource: &'a str,
        /// Objects listed.
        count: usize,
    },
}

/// Lists every workload kind, in [`WorkloadKind::ALL`] order, in `namespace` or all of them.
pub async fn list_workloads(
    connection: &Connection,
    namespace: Option<&str>,
    mut progress: impl FnMut(Progress<'_>),
) {
    for kind in WorkloadKind::ALL {
        let resource = api_resource(kind);
        let name = resource_name(&resource);
        let result = list_pages(connection, &resource, namespace, |objects| {
            progress(Progress::Page { kind, objects });
        })
        .await;
        match result {
            Ok(count) => progress(Progress::Done {
                resource: &name,
                count,
            }),
            Err(e) => {
                let scope = match namespace {
                    Some(ns) => format!("in namespace {ns}"),
                    None => "in all namespaces".to_owned(),
                };
                progress(Progress::Failed(list_error(format!("{name} {scope}"), &e)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names() {
        let d = api_resource(WorkloadKind::Deployment);
        assert_eq!(
            resource_url(&d, Some("shop")),
            "/apis/apps/v1/namespaces/shop/deployments"
        );
        assert_eq!(resource_name(&d), "deployments.apps");
        let p = api_resource(WorkloadKind::Pod);
        assert_eq!(resource_url(&p, None), "/api/v1/pods");
        assert_eq!(resource_name(&p), "pods");
        assert_eq!(api_resource(WorkloadKind::CronJob).api_version, "batch/v1");
    }

    #[test]
    fn items_get_type_first_and_lose_managed_fields() {
        let mut item = serde_json::json!({"metadata": {"name": "web",
            "managedFields": [{"manager": "kubectl"}]}, "spec": {}});
        complete(&mut item, &api_resource(WorkloadKind::Deployment));
        let keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
        assert_eq!(item["kind"], "Deployment");
        assert!(item["metadata"].get("managedFields").is_none());
    }
}
