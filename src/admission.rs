//! The webhook's wire format: an AdmissionReview body read once into a [`Review`] (the parsed
//! [`Document`] and the typed [`ReviewRequest`] of what Portcullis uses), the engine's
//! [`Request`] built from it, and a [`Decision`] turned into one typed answer ([`AnswerReview`]).
//! The only place that knows the wire format.

use crate::engine::{self, Decision, FindingKind, NamespaceLabels, NativeRules, Request};
use crate::json::{Document, Json};
use crate::policy::{PolicySet, Timestamp};
use crate::telemetry::{Endpoint, Outcome};

mod request;
#[cfg(test)]
mod tests;

pub use request::{FieldError, ReviewRequest};

/// The only AdmissionReview version served (the apiserver sends what the webhook configuration's
/// `admissionReviewVersions` lists first that it supports).
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review's `kind`.
pub const KIND: &str = "AdmissionReview";

/// Why a body is not a readable AdmissionReview. The text is what the client sees (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No bytes at all.
    #[error("empty body: expected an admission.k8s.io/v1 AdmissionReview (JSON)")]
    Empty,
    /// Not JSON, in serde_json's words (with line and column).
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Syntax(#[source] serde_json::Error),
    /// JSON that is refused: an object repeats a key, an integer beyond 64 bits.
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Json(#[source] crate::json::ParseError),
    /// Nested deeper than [`crate::nesting::MAX_DEPTH`]: refused before parsing.
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    TooDeep(#[source] crate::nesting::TooDeep),
    /// A field of the wrong type, or a required one missing.
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Field(#[from] FieldError),
    /// Another version (`admission.k8s.io/v1beta1`) or no version.
    #[error(
        "unsupported AdmissionReview apiVersion {0:?}: only admission.k8s.io/v1 is served \
         (set admissionReviewVersions: [\"v1\"] in the webhook configuration)"
    )]
    WrongVersion(String),
    /// Another kind.
    #[error("unsupported kind {0:?}: expected AdmissionReview")]
    WrongKind(String),
    /// A review without `request` (a response, or an empty review).
    #[error("AdmissionReview has no request")]
    NoRequest,
    /// `request.object` (or `oldObject`) is of another kind than `request.kind` declares. The
    /// apiserver always sends the object in the declared kind and version; judging the object
    /// as the declared kind could pass what it should not, so such a review is refused.
    #[error("request.{field} is {found} but request.kind declares {declared}")]
    KindMismatch {
        /// `object` or `oldObject`.
        field: &'static str,
        /// `apps/v1 Deployment`, from `request.kind`.
        declared: String,
        /// The object's own `apiVersion` and `kind`.
        found: String,
    },
}

/// A review as read: the body parsed once, and its request typed.
#[derive(Debug, Clone)]
pub struct Review {
    /// What Portcullis reads of `request`.
    pub request: ReviewRequest,
    doc: Document,
}

/// Parses a request body into a [`Review`]: refuses deep nesting first (a byte scan
/// independent of the parser), parses the body once into a [`Document`], checks `apiVersion`
/// and `kind`, and reads `request` ([`ReviewRequest`]; everything else in it checked as
/// kube-core's `AdmissionReview<DynamicObject>` checks it). The objects stay in the document,
/// as sent, for the engine.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReviewError::Empty);
    }
    // Before any parser runs, whichever it is: deep nesting is refused in one cheap pass
    // (see `crate::nesting`). Keep this call in front of the parse if the parser changes.
    crate::nesting::check_json(body).map_err(ReviewError::TooDeep)?;
    let doc = Document::parse(body).map_err(|e| {
        // Worded by serde_json when it is not JSON: simd-json's positions are rougher.
        match serde_json::from_slice::<serde_json::Value>(body) {
            Err(syntax) => ReviewError::Syntax(syntax),
            Ok(_) => ReviewError::Json(e),
        }
    })?;
    let root = doc.root();
    if !root.is_object() {
        return Err(FieldError::new("review", "expected a JSON object").into());
    }
    let top = |key: &str| match root.get(key) {
        None => Err(FieldError::new(key, "missing")),
        Some(v) => v
            .as_str()
            .ok_or_else(|| FieldError::new(key, "expected a string")),
    };
    let (api_version, kind) = (top("apiVersion")?, top("kind")?);
    if api_version != API_VERSION {
        return Err(ReviewError::WrongVersion(api_version.to_owned()));
    }
    if kind != KIND {
        return Err(ReviewError::WrongKind(kind.to_owned()));
    }
    let request = match root.get("request") {
        Some(r) if !r.is_null() => request::read(r)?,
        _ => return Err(ReviewError::NoRequest),
    };
    let review = Review { request, doc };
    review.check_object_kind("object", review.object())?;
    review.check_object_kind("oldObject", review.old_object())?;
    Ok(review)
}

impl Review {
    /// `request.object`, as sent (`None` when absent or `null`).
    pub fn object(&self) -> Option<Json<'_>> {
        self.object_at("object")
    }

    /// `request.oldObject`, as sent (`None` when absent or `null`).
    pub fn old_object(&self) -> Option<Json<'_>> {
        self.object_at("oldObject")
    }

    fn object_at(&self, key: &str) -> Option<Json<'_>> {
        let object = self.doc.root().get("request")?.get(key)?;
        (!object.is_null()).then_some(object)
    }

    /// Refuses an object whose own `apiVersion`/`kind` differ from `request.kind` (an object
    /// without them is judged as the declared kind).
    fn check_object_kind(
        &self,
        field: &'static str,
        object: Option<Json<'_>>,
    ) -> Result<(), ReviewError> {
        let field_of = |key: &str| object.and_then(|o| o.get(key)).and_then(Json::as_str);
        let (Some(api_version), Some(object_kind)) = (field_of("apiVersion"), field_of("kind"))
        else {
            return Ok(());
        };
        let r = &self.request;
        let declared_version = if r.group.is_empty() {
            r.version.clone()
        } else {
            format!("{}/{}", r.group, r.version)
        };
        if api_version == declared_version && object_kind == r.kind {
            return Ok(());
        }
        Err(ReviewError::KindMismatch {
            field,
            declared: format!("{declared_version} {}", r.kind),
            found: format!("{api_version} {object_kind}"),
        })
    }

    /// The engine's view of this review at `time` (the webhook reads the clock per request),
    /// borrowing from it.
    pub fn engine_request(&self, time: Timestamp) -> Request<'_> {
        let r = &self.request;
        Request {
            operation: r.operation,
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
            resource: Some(r.resource.as_str()),
            sub_resource: r.sub_resource.as_deref(),
            namespace: r.namespace.as_deref(),
            name: Some(r.name.as_str()).filter(|n| !n.is_empty()),
            object: self.object(),
            old_object: self.old_object(),
            dry_run: r.dry_run,
            username: r.username.as_deref(),
            // The caller adds them from its namespace cache ([`Review::evaluate_with`]).
            namespace_labels: NamespaceLabels::NameOnly,
            time,
        }
    }

    /// Evaluates this review against `policies` at `time`, its namespace's labels unknown
    /// beyond the name.
    pub fn evaluate(&self, policies: &PolicySet, time: Timestamp) -> Decision {
        self.evaluate_with(policies, time, NamespaceLabels::NameOnly)
    }

    /// Evaluates this review against `policies` at `time` with what is known of its
    /// namespace's labels.
    pub fn evaluate_with(
        &self,
        policies: &PolicySet,
        time: Timestamp,
        labels: NamespaceLabels<'_>,
    ) -> Decision {
        let mut request = self.engine_request(time);
        request.namespace_labels = labels;
        engine::evaluate(policies, &request)
    }
}

/// The AdmissionReview answer as it goes on the wire (`admission.k8s.io/v1`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerReview {
    /// [`API_VERSION`].
    pub api_version: &'static str,
    /// [`KIND`].
    pub kind: &'static str,
    /// The answer.
    pub response: Response,
}

/// `response` of an [`AnswerReview`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The request's `uid` (`""` for an unreadable body).
    pub uid: String,
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Why not (empty when allowed).
    pub status: Status,
    /// The JSON Patch (RFC 6902), sent base64-encoded: the API's encoding of `[]byte`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "base64")]
    pub patch: Option<Vec<u8>>,
    /// `JSONPatch` exactly when there is a patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Shown by kubectl.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `response.status` (a `metav1.Status`): what Portcullis sets of it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Status {
    /// `Failure` when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// The HTTP code the apiserver answers the client with (403, 400).
    #[serde(skip_serializing_if = "is_zero")]
    pub code: u16,
    /// Shown to the client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `Forbidden`, `InvalidRequest`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'static str,
}

fn is_zero(code: &u16) -> bool {
    *code == 0
}

fn base64<S: serde::Serializer>(patch: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    let patch = patch.as_deref().unwrap_or_default();
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(patch))
}

impl AnswerReview {
    fn of(response: Response) -> AnswerReview {
        AnswerReview {
            api_version: API_VERSION,
            kind: KIND,
            response,
        }
    }

    /// The review as JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The answer to a review, and how it is counted.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview to send back.
    pub review: AnswerReview,
    /// allowed / denied / patched.
    pub outcome: Outcome,
}

/// Turns a [`Decision`] into the answer, for `endpoint`, to the request `uid`.
///
/// - `/validate`: allowed, or denied with the denial message, code 403 and reason `Forbidden`;
///   warnings for warn-mode and pre-existing violations only. Never a patch.
/// - `/mutate`: always allowed (judging is `/validate`'s job), with the patch if any, and
///   warnings for warn-mode mutations and for notices only (violations are reported once, by
///   `/validate`).
pub fn respond(
    endpoint: Endpoint,
    uid: &str,
    decision: &Decision,
) -> Result<Answer, serde_json::Error> {
    let mut response = Response {
        uid: uid.to_owned(),
        allowed: true,
        status: Status::default(),
        patch: None,
        patch_type: None,
        warnings: Vec::new(),
    };
    let outcome = match endpoint {
        Endpoint::Validate if decision.allowed => Outcome::Allowed,
        Endpoint::Validate => {
            response.allowed = false;
            response.status = Status {
                status: Some("Failure"),
                code: 403,
                message: decision
                    .denial_message()
                    .unwrap_or_else(|| format!("Portcullis denied {}", decision.workload)),
                reason: "Forbidden",
            };
            Outcome::Denied
        }
        Endpoint::Mutate if decision.is_patched() => {
            response.patch = Some(decision.patch.to_json()?);
            response.patch_type = Some("JSONPatch");
            Outcome::Patched
        }
        Endpoint::Mutate => Outcome::Allowed,
    };
    // Each finding is reported by one endpoint only, or kubectl would print it twice.
    let reported = |kind: FindingKind| match endpoint {
        Endpoint::Validate => kind == FindingKind::Violation,
        Endpoint::Mutate => matches!(kind, FindingKind::Mutation | FindingKind::Notice),
    };
    response.warnings = Decision {
        workload: decision.workload.clone(),
        // Only warn-mode findings become warnings: clone just those.
        findings: decision
            .findings
            .iter()
            .filter(|f| reported(f.kind) && f.is_warning())
            .cloned()
            .collect(),
        // Said once, by /validate.
        labels_pending: match endpoint {
            Endpoint::Validate => decision.labels_pending.clone(),
            Endpoint::Mutate => Vec::new(),
        },
        ..Decision::default()
    }
    .warnings();
    Ok(Answer {
        review: AnswerReview::of(response),
        outcome,
    })
}

/// The 400 answer for a body that could not be read: no uid, the reason as the message.
pub fn invalid(error: &ReviewError) -> AnswerReview {
    AnswerReview::of(Response {
        uid: String::new(),
        allowed: false,
        status: Status {
            status: Some("Failure"),
            code: 400,
            message: error.to_string(),
            reason: "InvalidRequest",
        },
        patch: None,
        patch_type: None,
        warnings: Vec::new(),
    })
}

/// What the webhook did with one body: the parsed review, the engine's decision, how the
/// answer is counted and the answer's bytes.
#[derive(Debug)]
pub struct Handled {
    /// The review as read.
    pub review: Review,
    /// The engine's decision.
    pub decision: Decision,
    /// allowed / denied / patched.
    pub outcome: Outcome,
    /// The AdmissionReview answer, JSON.
    pub body: Vec<u8>,
}

/// Why [`handle`] produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The body is not a readable AdmissionReview (HTTP 400 with [`invalid`]).
    #[error(transparent)]
    Unreadable(#[from] ReviewError),
    /// The answer could not be built or encoded: a bug of ours (HTTP 500).
    #[error("review {uid}: cannot encode the answer: {source}")]
    Answer {
        /// The request's uid.
        uid: String,
        /// What failed.
        source: serde_json::Error,
    },
}

/// The webhook's whole work on one request body, as the handlers do it: parse the
/// AdmissionReview, evaluate it against `policies` at `time` (the handler reads the clock),
/// build the answer for `endpoint` and encode it. Pure (no I/O, clock, logs or metrics), so
/// benchmarks measure exactly what the server runs.
pub fn handle(
    endpoint: Endpoint,
    policies: &PolicySet,
    body: &[u8],
    time: Timestamp,
) -> Result<Handled, HandleError> {
    answer(
        endpoint,
        policies,
        parse_review(body)?,
        time,
        NamespaceLabels::NameOnly,
        &NativeRules::NONE,
    )
}

/// [`handle`] after the parse: evaluate a review at `time` with what is known of its
/// namespace's labels (the webhook looks them up in its namespace cache in between), leaving
/// out the rules the API server enforces itself (`native`), build and encode the answer.
pub fn answer(
    endpoint: Endpoint,
    policies: &PolicySet,
    review: Review,
    time: Timestamp,
    labels: NamespaceLabels<'_>,
    native: &NativeRules,
) -> Result<Handled, HandleError> {
    let decision = {
        let mut request = review.engine_request(time);
        request.namespace_labels = labels;
        engine::evaluate_with_native(policies, &request, native)
    };
    let body = respond(endpoint, &review.request.uid, &decision)
        .and_then(|answer| Ok((answer.outcome, answer.review.to_bytes()?)));
    match body {
        Ok((outcome, body)) => Ok(Handled {
            outcome,
            review,
            decision,
            body,
        }),
        Err(source) => Err(HandleError::Answer {
            uid: review.request.uid,
            source,
        }),
    }
}
