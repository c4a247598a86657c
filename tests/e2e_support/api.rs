//! The apiserver's REST API straight from Rust (HTTP/2, the admin client certificate): for
//! traffic that kubectl, one process per request, cannot make: load during a certificate
//! rotation, and the benchmark's Pod creates.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::ControlPlane;

/// A client of the test apiserver.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    server: String,
}

/// One answer of the apiserver.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status (201 Created, 403 Forbidden, 500 when a webhook failed closed, ...).
    pub status: u16,
    /// The body (an object, or a Status with the reason).
    pub body: Value,
    /// How long the request took.
    pub took: Duration,
}

impl Api {
    /// A client with the cluster's admin certificate. Needs a tokio runtime to run requests.
    pub fn new(cluster: &ControlPlane) -> Api {
        let identity = format!("{}{}", cluster.admin.key, cluster.admin.cert);
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(cluster.ca.cert.as_bytes()).expect("CA"),
            )
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).expect("identity"))
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Api {
            client,
            server: cluster.server.clone(),
        }
    }

    /// `POST PATH` (`/apis/apps/v1/namespaces/NS/deployments?dryRun=All`) with `body`.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        let url = format!("{}{path}", self.server);
        self.send(self.client.post(url).json(body)).await
    }

    /// `GET PATH`.
    pub async fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.server);
        self.send(self.client.get(url)).await
    }

    /// `DELETE PATH`.
    pub async fn delete(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.server);
        self.send(self.client.delete(url)).await
    }

    /// `POST /api/v1/namespaces/NS/pods` (with `?dryRun=All` when `dry_run`).
    pub async fn create_pod(&self, namespace: &str, pod: &Value, dry_run: bool) -> Answer {
        let dry_run = if dry_run { "?dryRun=All" } else { "" };
        self.post(
            &format!("/api/v1/namespaces/{namespace}/pods{dry_run}"),
            pod,
        )
        .await
    }

    /// Sends `request`, timed: the status and JSON body, or status 0 and the error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let start = Instant::now();
        let (status, body) = match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, Value::String(e.to_string())),
        };
        Answer {
            status,
            body,
            took: start.elapsed(),
        }
    }
}

/// A current-thread tokio runtime for a test thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits until the API server's type checking (kube-controller-manager's status controller) has
/// written the status of every ValidatingAdmissionPolicy with the label `label` (any value),
/// then checks `in_force` once more: kube-apiserver v1.32 recompiles a policy when its status
/// changes, in the background, and a recompile while a request is evaluated can crash it ("concurrent map read and map write" in
/// DeclTypeProvider.FindStructFieldType, kubernetes/kubernetes#135757).
pub fn wait_policies_settled(
    rt: &tokio::runtime::Runtime,
    api: &Api,
    label: &str,
    in_force: &dyn Fn() -> bool,
) {
    let path = format!(
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies?labelSelector={label}"
    );
    super::wait_for(
        "every policy's status written by its type check",
        Duration::from_secs(120),
        || {
            let a = rt.block_on(api.get(&path));
            let items = a.body["items"].as_array()?;
            (a.status == 200
                && !items.is_empty()
                && items.iter().all(|p| {
                    p["status"]["observedGeneration"].as_i64().is_some()
                        && p["status"]["observedGeneration"] == p["metadata"]["generation"]
                }))
            .then_some(())
        },
    );
    super::wait_for(
        "the API server to use the type-checked policies",
        Duration::from_secs(60),
        || in_force().then_some(()),
    );
}
