//! AdmissionReview <-> engine: parse a review body, build the engine's [`Request`] from it, and
//! turn a [`Decision`] into the AdmissionReview answer through kube-core's builders. This is the
//! only place that knows the webhook's wire format.

use kube::core::admission::{self, AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::response::StatusSummary;
use kube::core::{DynamicObject, ObjectMeta};
use serde_json::Value;

use crate::engine::{
    self, Decision, FindingKind, NamespaceLabels, NativeRules, Operation, Request,
};
use crate::json::{Document, Json};
use crate::policy::{PolicySet, Timestamp};
use crate::telemetry::{Endpoint, Outcome};
use serde::Deserialize as _;

mod envelope;

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
    /// Not JSON, or JSON of the wrong shape.
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Json(#[source] serde_json::Error),
    /// Nested deeper than [`crate::nesting::MAX_DEPTH`]: refused before parsing.
    #[error("body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    TooDeep(#[source] crate::nesting::TooDeep),
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

/// A parsed review: the request as kube-core reads it, and its objects as sent.
#[derive(Debug, Clone)]
pub struct Review {
    /// The request as kube-core reads it (uid, kind, userInfo, ...). Its `object` and
    /// `old_object` are `None`: the objects are read through [`Review::object`] and
    /// [`Review::old_object`].
    pub request: AdmissionRequest<DynamicObject>,
    objects: Objects,
}

/// Where a [`Review`]'s objects are.
#[derive(Debug, Clone)]
enum Objects {
    /// In the body, parsed once as a [`Document`] (`request.object`, `request.oldObject`).
    Document(Document),
    /// Read through kube-core's `DynamicObject` (bodies the fast parse refuses).
    Values {
        object: Option<Value>,
        old_object: Option<Value>,
    },
}

/// Parses a request body into a [`Review`]. Bodies nested deeper than
/// [`crate::nesting::MAX_DEPTH`] are refused first, by a byte scan independent of the parser.
///
/// The body is parsed once into a [`Document`] (simd-json; strings copied once, no map per
/// object): the engine reads the objects there, as sent. The rest is read from the document
/// too, into kube-core's types (`envelope`): the review without its objects as
/// `AdmissionReview`, and each object's `metadata` checked as kube's `ObjectMeta` would read it
/// (what kube's `DynamicObject` requires). Where that reading is not certain (anything but the
/// shapes the apiserver sends), kube-core's own `Deserialize` reads the document instead, so
/// every body is accepted or refused exactly as the typed parse decides. Bodies the fast parse
/// refuses are read the slow way, whole, through `AdmissionReview<DynamicObject>`: its answer
/// (usually an error with line and column) is the one given.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReviewError::Empty);
    }
    // Before any parser runs, whichever it is: deep nesting is refused in one cheap pass
    // (see `crate::nesting`). Keep this call in front of the parse if the parser changes.
    crate::nesting::check_json(body).map_err(ReviewError::TooDeep)?;
    match parse_document(body) {
        Some((typed, doc)) => review_of(typed, Objects::Document(doc)),
        None => parse_review_value(body),
    }
}

/// The body parsed into a `serde_json::Value`, the objects taken out as they are, the rest read
/// through kube-core's types; bodies that fail that are read through
/// `AdmissionReview<DynamicObject>`. What every body the fast parse refuses goes through, so
/// its answer (or error, with line and column) is the one it always got.
fn parse_review_value(body: &[u8]) -> Result<Review, ReviewError> {
    let StrictJson(mut value) = serde_json::from_slice(body).map_err(ReviewError::Json)?;
    let (object, old_object) = match value.get_mut("request").and_then(Value::as_object_mut) {
        Some(request) => (
            take_object(request, "object"),
            take_object(request, "oldObject"),
        ),
        None => (None, None),
    };
    let typed = match AdmissionReview::<DynamicObject>::deserialize(&value).and_then(|review| {
        check_object(object.as_ref())?;
        check_object(old_object.as_ref())?;
        Ok(review)
    }) {
        Ok(typed) => typed,
        // Rare: the answer (usually an error with line and column) is the typed parse's.
        Err(_) => return parse_review_typed(body),
    };
    review_of(typed, Objects::Values { object, old_object })
}

/// JSON in which no object repeats a key. Parsers disagree on which of two values wins, so a
/// body with a repeated key is ambiguous and is refused, as kube-core's typed parse refuses it
/// (the apiserver never sends one: it encodes the objects itself).
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(StrictJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error as _;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictJson(v) = map.next_value()?;
            match out.entry(key) {
                serde_json::map::Entry::Vacant(e) => {
                    e.insert(v);
                }
                serde_json::map::Entry::Occupied(e) => {
                    return Err(A::Error::custom(format_args!(
                        "duplicate field `{}`",
                        e.key()
                    )));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Paths of a review's objects, read by the engine rather than by kube-core.
const OBJECTS: [&[&str]; 2] = [&["request", "object"], &["request", "oldObject"]];

/// The fast parse: the body as a [`Document`] and the review without its objects in kube-core's
/// types, read from the document (`envelope`) or, when that is not certain, through kube-core's
/// `Deserialize`; `None` when any of it fails.
fn parse_document(body: &[u8]) -> Option<(AdmissionReview<DynamicObject>, Document)> {
    let doc = Document::parse(body).ok()?;
    let typed = match envelope::review(doc.root()) {
        Some(typed) => typed,
        None => doc.root().doc_value()?.deserialize(&OBJECTS).ok()?,
    };
    let request = doc.root().get("request");
    for key in ["object", "oldObject"] {
        let Some(object) = request.and_then(|r| r.get(key)).filter(|o| !o.is_null()) else {
            continue;
        };
        // What `DynamicObject` demands of an object: a JSON object whose `metadata`, when
        // present, reads as `ObjectMeta`. `managedFields[].fieldsV1` is any JSON there (a
        // `serde_json::Value`) and is never read: it is not looked at.
        let metadata = object.as_object()?.get("metadata");
        if let Some(metadata) = metadata
            && !envelope::metadata_reads(metadata)
        {
            metadata
                .doc_value()?
                .deserialize::<ObjectMeta>(&[&["managedFields", "*", "fieldsV1"]])
                .ok()?;
        }
    }
    Some((typed, doc))
}

/// Checks version and kind, and puts the request and its objects together.
fn review_of(
    typed: AdmissionReview<DynamicObject>,
    objects: Objects,
) -> Result<Review, ReviewError> {
    if typed.types.api_version != API_VERSION {
        return Err(ReviewError::WrongVersion(typed.types.api_version));
    }
    if typed.types.kind != KIND {
        return Err(ReviewError::WrongKind(typed.types.kind));
    }
    let request: AdmissionRequest<DynamicObject> =
        typed.try_into().map_err(|_| ReviewError::NoRequest)?;
    let review = Review { request, objects };
    check_object_kind(&review.request, "object", review.object())?;
    check_object_kind(&review.request, "oldObject", review.old_object())?;
    Ok(review)
}

/// Refuses an object whose own `apiVersion`/`kind` differ from `request.kind` (an object
/// without them is judged as the declared kind).
fn check_object_kind(
    request: &AdmissionRequest<DynamicObject>,
    field: &'static str,
    object: Option<Json<'_>>,
) -> Result<(), ReviewError> {
    let field_of = |key: &str| object.and_then(|o| o.get(key)).and_then(Json::as_str);
    let (Some(api_version), Some(object_kind)) = (field_of("apiVersion"), field_of("kind")) else {
        return Ok(());
    };
    let kind = &request.kind;
    let declared_version = if kind.group.is_empty() {
        kind.version.clone()
    } else {
        format!("{}/{}", kind.group, kind.version)
    };
    if api_version == declared_version && object_kind == kind.kind {
        return Ok(());
    }
    Err(ReviewError::KindMismatch {
        field,
        declared: format!("{declared_version} {}", kind.kind),
        found: format!("{api_version} {object_kind}"),
    })
}

/// Takes `request[key]` out; `null` is no object.
fn take_object(request: &mut serde_json::Map<String, Value>, key: &str) -> Option<Value> {
    request
        .get_mut(key)
        .map(Value::take)
        .filter(|v| !v.is_null())
}

/// An object must be a JSON object whose `metadata`, when present, reads as kube's `ObjectMeta`.
fn check_object(object: Option<&Value>) -> Result<(), serde_json::Error> {
    use serde::de::Error as _;
    match object {
        None => Ok(()),
        Some(Value::Object(fields)) => match fields.get("metadata") {
            None => Ok(()),
            Some(metadata) => ObjectMeta::deserialize(metadata).map(drop),
        },
        Some(_) => Err(serde_json::Error::custom("object is not a JSON object")),
    }
}

/// The whole body read through `AdmissionReview<DynamicObject>`, objects converted back to JSON.
fn parse_review_typed(body: &[u8]) -> Result<Review, ReviewError> {
    let mut typed: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(ReviewError::Json)?;
    let to_json = |o: Option<DynamicObject>| {
        o.map(serde_json::to_value)
            .transpose()
            .map_err(ReviewError::Json)
    };
    let (object, old_object) = match typed.request.as_mut() {
        Some(request) => (
            to_json(request.object.take())?,
            to_json(request.old_object.take())?,
        ),
        None => (None, None),
    };
    review_of(typed, Objects::Values { object, old_object })
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
        match &self.objects {
            Objects::Document(doc) => doc
                .root()
                .get("request")
                .and_then(|r| r.get(key))
                .filter(|o| !o.is_null()),
            Objects::Values { object, old_object } => {
                let object = if key == "object" { object } else { old_object };
                object.as_ref().map(Json::from)
            }
        }
    }

    /// Whether the objects were read by the fast parse (a [`Document`]) rather than through
    /// kube-core's `DynamicObject`.
    pub fn is_fast(&self) -> bool {
        matches!(self.objects, Objects::Document(_))
    }

    /// The engine's view of this review at `time` (the webhook reads the clock per request),
    /// borrowing from it.
    pub fn engine_request(&self, time: Timestamp) -> Request<'_> {
        let req = &self.request;
        Request {
            operation: match req.operation {
                admission::Operation::Create => Operation::Create,
                admission::Operation::Update => Operation::Update,
                admission::Operation::Delete => Operation::Delete,
                admission::Operation::Connect => Operation::Connect,
            },
            group: &req.kind.group,
            kind: &req.kind.kind,
            sub_resource: req.sub_resource.as_deref(),
            namespace: req.namespace.as_deref(),
            name: Some(req.name.as_str()).filter(|n| !n.is_empty()),
            object: self.object(),
            old_object: self.old_object(),
            dry_run: req.dry_run,
            username: req.user_info.username.as_deref(),
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

/// The answer could not be built (a bug of ours: the client gets a generic 500).
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// kube-core refused the patch.
    #[error(transparent)]
    Patch(#[from] admission::SerializePatchError),
    /// The patch does not serialize.
    #[error("cannot serialize the JSON Patch: {0}")]
    Json(#[source] serde_json::Error),
}

/// An AdmissionReview answer as it goes on the wire: kube-core's review, except that
/// `response.patch` is sent base64-encoded, the documented encoding of the API's `[]byte`
/// field. (kube-core serializes its `Vec<u8>` as an array of numbers: kube-rs/kube#1781.)
///
/// It is written straight from kube-core's response, field by field in kube-core's order,
/// without going through a `serde_json::Value` (which turned the patch into an array of
/// numbers only to replace it).
#[derive(Debug, Clone)]
pub struct WireReview(pub AdmissionReview<DynamicObject>);

/// `response` of a [`WireReview`]: kube-core's `AdmissionResponse` fields, patch in base64.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
}

impl serde::Serialize for WireReview {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::SerializeMap as _;
        let review = &self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("apiVersion", &review.types.api_version)?;
        map.serialize_entry("kind", &review.types.kind)?;
        if let Some(request) = &review.request {
            map.serialize_entry("request", request)?;
        }
        if let Some(r) = &review.response {
            // kube-core sets patchType exactly when it sets the patch (`with_patch`).
            let patch = r
                .patch
                .as_ref()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
            let response = WireResponse {
                uid: &r.uid,
                allowed: r.allowed,
                status: &r.result,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                audit_annotations: &r.audit_annotations,
                warnings: r.warnings.as_ref(),
            };
            map.serialize_entry("response", &response)?;
        }
        map.end()
    }
}

impl WireReview {
    /// The review as JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The answer to a review, and how it is counted.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview to send back.
    pub review: WireReview,
    /// allowed / denied / patched.
    pub outcome: Outcome,
}

/// Turns a [`Decision`] into the AdmissionReview answer for `endpoint`.
///
/// - `/validate`: allowed, or denied with the denial message, code 403 and reason `Forbidden`;
///   warnings for warn-mode and pre-existing violations only. Never a patch.
/// - `/mutate`: always allowed (judging is `/validate`'s job), with the patch if any, and
///   warnings for warn-mode mutations and for notices only (violations are reported once, by
///   `/validate`).
pub fn respond(
    endpoint: Endpoint,
    request: &AdmissionRequest<DynamicObject>,
    decision: &Decision,
) -> Result<Answer, RespondError> {
    let mut response = AdmissionResponse::from(request);
    let outcome = match endpoint {
        Endpoint::Validate if decision.allowed => Outcome::Allowed,
        Endpoint::Validate => {
            let message = decision
                .denial_message()
                .unwrap_or_else(|| format!("Portcullis denied {}", decision.workload));
            response = response.deny(message);
            response.result.code = 403;
            response.result.reason = "Forbidden".to_owned();
            response.result.status = Some(StatusSummary::Failure);
            Outcome::Denied
        }
        Endpoint::Mutate if decision.is_patched() => {
            // kube-core's builder sets `patchType` and takes the patch by value; the patch
            // itself is serialized from the decision rather than cloned for it.
            response = response.with_patch(json_patch::Patch::default())?;
            response.patch = Some(decision.patch.to_json().map_err(RespondError::Json)?);
            Outcome::Patched
        }
        Endpoint::Mutate => Outcome::Allowed,
    };
    // Each finding is reported by one endpoint only, or kubectl would print it twice.
    let reported = |kind: FindingKind| match endpoint {
        Endpoint::Validate => kind == FindingKind::Violation,
        Endpoint::Mutate => matches!(kind, FindingKind::Mutation | FindingKind::Notice),
    };
    let warnings = Decision {
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
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    Ok(Answer {
        review: WireReview(response.into_review()),
        outcome,
    })
}

/// The 400 answer for a body that could not be read: a review without uid carrying the reason
/// (kube-core's `invalid`).
pub fn invalid(error: &ReviewError) -> AdmissionReview<DynamicObject> {
    let mut response = AdmissionResponse::invalid(error.to_string());
    response.result.code = 400;
    response.into_review()
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
    #[error("review {uid}: {reason}")]
    Answer {
        /// The request's uid.
        uid: String,
        /// What failed.
        reason: String,
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
    let failed = |reason: String| HandleError::Answer {
        uid: review.request.uid.clone(),
        reason,
    };
    let answer =
        respond(endpoint, &review.request, &decision).map_err(|e| failed(e.to_string()))?;
    let body = answer
        .review
        .to_bytes()
        .map_err(|e| failed(format!("cannot encode the answer: {e}")))?;
    Ok(Handled {
        outcome: answer.outcome,
        review,
        decision,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Effect, Finding};
    use crate::policy::model::Mode;

    const BODY: &str = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u-1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"demo","operation":"UPDATE","userInfo":{"username":"alice"},"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},"spec":{"replicas":2}},"oldObject":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},"spec":{"replicas":1}},"dryRun":true}}"#;

    fn finding(kind: FindingKind, effect: Effect) -> Finding {
        Finding {
            policy: "p".into(),
            rule: "requireProbes",
            part: 0,
            kind,
            mode: Mode::Enforce,
            effect,
            container: Some("app".into()),
            field: "spec.containers[0].livenessProbe".into(),
            message: "no livenessProbe".into(),
            hint: "add one".into(),
            pre_existing: false,
            exception: None,
            enforced_from: None,
        }
    }

    #[test]
    fn builds_the_engine_request_from_the_review() {
        let review = parse_review(BODY.as_bytes()).expect("parse");
        let r = review.engine_request(Timestamp::from_unix(0));
        assert_eq!(r.operation, Operation::Update);
        assert_eq!((r.group, r.kind), ("apps", "Deployment"));
        assert_eq!(r.namespace, Some("demo"));
        assert_eq!(r.name, None, "absent request.name is None, not \"\"");
        assert_eq!(r.username, Some("alice"));
        assert!(r.dry_run);
        let replicas =
            |o: Option<Json<'_>>| o.and_then(|o| o.get("spec")?.get("replicas")?.as_number());
        assert_eq!(replicas(r.object), Some(2.into()));
        assert_eq!(replicas(r.old_object), Some(1.into()));
        assert!(review.is_fast());
    }

    #[test]
    fn unreadable_bodies_are_typed_errors() {
        assert!(matches!(parse_review(b""), Err(ReviewError::Empty)));
        assert!(matches!(parse_review(b" \n"), Err(ReviewError::Empty)));
        assert!(matches!(
            parse_review(&BODY.as_bytes()[..40]),
            Err(ReviewError::Json(_))
        ));
        let v1beta1 = BODY.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1");
        assert!(matches!(
            parse_review(v1beta1.as_bytes()),
            Err(ReviewError::WrongVersion(v)) if v == "admission.k8s.io/v1beta1"
        ));
        let no_request = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
        assert!(matches!(
            parse_review(no_request.as_bytes()),
            Err(ReviewError::NoRequest)
        ));
        let wrong_kind = BODY.replacen("\"AdmissionReview\"", "\"Pod\"", 1);
        assert!(matches!(
            parse_review(wrong_kind.as_bytes()),
            Err(ReviewError::WrongKind(_))
        ));
    }

    #[test]
    fn objects_with_unreadable_metadata_are_rejected_as_before() {
        for bad in [
            r#""metadata":{"name":"web","labels":{"a":5}}"#,
            r#""metadata":null"#,
            r#""metadata":"web""#,
        ] {
            let body = BODY.replacen(r#""metadata":{"name":"web","namespace":"demo"}"#, bad, 1);
            assert_ne!(body, BODY);
            let err = parse_review(body.as_bytes()).expect_err(bad);
            let typed = parse_review_typed(body.as_bytes()).expect_err(bad);
            assert_eq!(err.to_string(), typed.to_string());
            assert!(err.to_string().contains("line 1 column"), "{err}");
        }
        let not_an_object = BODY.replacen(r#""oldObject":{"#, r#""oldObject":"x","ignored":{"#, 1);
        assert!(matches!(
            parse_review(not_an_object.as_bytes()),
            Err(ReviewError::Json(_))
        ));
    }

    /// Reading objects as plain JSON decides every captured review exactly as reading them
    /// through `DynamicObject` did.
    #[test]
    fn every_captured_review_gets_the_same_answer_as_through_dynamic_object() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let policies = crate::lint::load_dir(&root.join("policies")).expect("policies");
        let dir = root.join("tests/fixtures/admission");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let body = std::fs::read(&path).expect("read");
            let fast = parse_review(&body).expect("parse");
            let typed = parse_review_typed(&body).expect("typed parse");
            assert!(fast.is_fast(), "{} took the slow path", path.display());
            assert!(!typed.is_fast());
            assert!(fast.request.object.is_none() && fast.request.old_object.is_none());
            assert_eq!(
                serde_json::to_value(&fast.request).expect("request"),
                serde_json::to_value(&typed.request).expect("request"),
                "{}",
                path.display()
            );
            // The engine reads the objects exactly as sent.
            let sent: Value = serde_json::from_slice(&body).expect("json");
            let as_sent = |key: &str| Some(sent["request"][key].clone()).filter(|o| !o.is_null());
            let value = |o: Option<Json<'_>>| o.map(Json::to_value);
            assert_eq!(
                value(fast.object()),
                as_sent("object"),
                "{}",
                path.display()
            );
            assert_eq!(
                value(fast.old_object()),
                as_sent("oldObject"),
                "{}",
                path.display()
            );
            for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                let answer = |review: &Review| {
                    let decision = review.evaluate(&policies, Timestamp::from_unix(0));
                    let answer = respond(endpoint, &review.request, &decision).expect("respond");
                    (answer.outcome, answer.review.to_bytes().expect("bytes"))
                };
                assert_eq!(answer(&fast), answer(&typed), "{}", path.display());
            }
            seen += 1;
        }
        assert!(seen >= 30, "only {seen} fixtures");
    }

    #[test]
    fn validate_denial_carries_403_message_and_warnings() {
        let review = parse_review(BODY.as_bytes()).expect("parse");
        let decision = Decision {
            workload: "Deployment demo/web".into(),
            allowed: false,
            findings: vec![
                finding(FindingKind::Violation, Effect::Deny),
                finding(FindingKind::Violation, Effect::Warn),
                // Described by /mutate, not repeated here.
                finding(FindingKind::Mutation, Effect::Warn),
            ],
            ..Decision::default()
        };
        let answer = respond(Endpoint::Validate, &review.request, &decision).expect("respond");
        assert_eq!(answer.outcome, Outcome::Denied);
        let json = serde_json::to_value(&answer.review).expect("json");
        assert_eq!(json["apiVersion"], API_VERSION);
        assert_eq!(json["kind"], KIND);
        let resp = &json["response"];
        assert_eq!(resp["uid"], "u-1");
        assert_eq!(resp["allowed"], false);
        assert_eq!(resp["status"]["code"], 403);
        assert_eq!(resp["status"]["reason"], "Forbidden");
        let msg = resp["status"]["message"].as_str().expect("message");
        assert!(
            msg.contains("Deployment demo/web") && msg.contains("container \"app\""),
            "{msg}"
        );
        assert_eq!(resp["warnings"].as_array().map(Vec::len), Some(1));
        assert!(resp.get("patch").is_none());
    }

    #[test]
    fn mutate_allows_with_patch_and_only_mutation_warnings() {
        let review = parse_review(BODY.as_bytes()).expect("parse");
        let patch = crate::engine::Patch(vec![crate::engine::patch::PatchOp {
            path: "/metadata/labels".into(),
            value: crate::engine::patch::PatchValue::Owned(serde_json::json!({"a": "b"})),
        }]);
        let decision = Decision {
            workload: "Deployment demo/web".into(),
            allowed: false,
            findings: vec![
                finding(FindingKind::Violation, Effect::Warn),
                finding(FindingKind::Mutation, Effect::Warn),
            ],
            patch: patch.clone(),
            ..Decision::default()
        };
        let answer = respond(Endpoint::Mutate, &review.request, &decision).expect("respond");
        assert_eq!(answer.outcome, Outcome::Patched);
        let json = serde_json::to_value(&answer.review).expect("json");
        let resp = &json["response"];
        assert_eq!(resp["allowed"], true, "mutate never denies");
        assert_eq!(resp["patchType"], "JSONPatch");
        let warnings = resp["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .as_str()
                .is_some_and(|w| w.contains("would apply"))
        );
        // The patch goes base64-encoded, as the apiserver documents for `[]byte`.
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(resp["patch"].as_str().expect("patch is a base64 string"))
            .expect("base64");
        let decoded: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch json");
        assert_eq!(decoded, patch);
    }

    /// A small deterministic generator (xorshift), so the mutations below are the same on
    /// every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Every path to a value in `v`.
    fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        for (k, child) in children {
            at.push(k);
            paths(child, at, out);
            at.pop();
        }
    }

    fn value_at<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
        path.iter().try_fold(v, |v, k| match v {
            Value::Object(m) => m.get_mut(k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        })
    }

    /// Asserts that `body` gets the same answer (both endpoints), or the same error, as through
    /// the parse before the `Document`; whether it took the fast path. Without `policies`, the
    /// same request and the same objects (what the answer is made of) instead of the answers.
    fn same_as_before(body: &[u8], policies: Option<&PolicySet>) -> bool {
        let before = parse_review_value(body);
        let now = parse_review(body);
        let fast = now.as_ref().is_ok_and(Review::is_fast);
        match (now, before) {
            (Ok(now), Ok(before)) => {
                assert_eq!(
                    serde_json::to_value(&now.request).expect("request"),
                    serde_json::to_value(&before.request).expect("request"),
                    "{}",
                    String::from_utf8_lossy(body)
                );
                let Some(policies) = policies else {
                    let objects = |r: &Review| {
                        let value = |o: Option<Json<'_>>| o.map(Json::to_value);
                        (value(r.object()), value(r.old_object()))
                    };
                    assert!(
                        objects(&now) == objects(&before),
                        "{}",
                        String::from_utf8_lossy(body)
                    );
                    return fast;
                };
                for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                    let answer = |r: &Review| {
                        let d = r.evaluate(policies, Timestamp::from_unix(0));
                        let a = respond(endpoint, &r.request, &d).expect("respond");
                        (a.outcome, a.review.to_bytes().expect("bytes"))
                    };
                    assert!(
                        answer(&now) == answer(&before),
                        "{}",
                        String::from_utf8_lossy(body)
                    );
                }
            }
            (Err(now), Err(before)) => assert_eq!(now.to_string(), before.to_string()),
            (now, before) => panic!(
                "now {:?} but before {:?}: {}",
                now.map(|_| ()),
                before.map(|_| ()),
                String::from_utf8_lossy(body)
            ),
        }
        fast
    }

    /// What the envelope reader and the `metadata` check accept, kube-core's typed read
    /// accepts, and reads the same: every value of the envelope and of the objects' `metadata`
    /// of four captured reviews replaced in turn by each of 27 values, or removed, and a
    /// `response` added. Each body is also read as before (`same_as_before`: the same request
    /// and objects, or the same error).
    #[test]
    fn the_envelope_and_metadata_read_from_the_document_as_kube_core_reads_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let replacements = [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "-1",
            "7",
            "1.5",
            "1.0",
            "9223372036854775808",
            "\"\"",
            "\"x\"",
            "\"CREATE\"",
            "\"CONNECT\"",
            "\"2026-11-25T05:35:56Z\"",
            "\"2026-02-30T05:35:56Z\"",
            "\"2026-11-25T05:35:56.123+01:00\"",
            "[]",
            "[\"a\"]",
            "[null]",
            "{}",
            "{\"a\":\"b\"}",
            "{\"a\":[\"b\"]}",
            "{\"a\":null}",
            "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\",\"resource\":\"pods\"}",
            "{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\",\"apiVersion\":\"v1\"}",
            "[{\"apiVersion\":\"v1\",\"kind\":\"X\",\"name\":\"n\",\"uid\":\"u\",\"controller\":null}]",
        ];
        let replacements: Vec<Value> = replacements
            .iter()
            .map(|r| serde_json::from_str(r).expect(r))
            .collect();
        // Under the objects only `metadata` is read by kube-core; `fieldsV1` is any JSON.
        let read_by_kube = |path: &[String]| match path {
            [r, o, rest @ ..] if r == "request" && (o == "object" || o == "oldObject") => {
                match rest {
                    [] => true,
                    [m, rest @ ..] if m == "metadata" => {
                        !(rest.len() > 3 && rest[0] == "managedFields" && rest[2] == "fieldsV1")
                    }
                    _ => false,
                }
            }
            _ => true,
        };
        let (mut bodies, mut read_here, mut metadata_here) = (0, 0, 0);
        for name in [
            "validate-create-deployment.json",
            "mutate-update-deployment-resources.json",
            "mutate-create-pod-owned-by-replicaset.json",
            "mutate-create-deployment-dryrun.json",
        ] {
            let body =
                std::fs::read(root.join("tests/fixtures/admission").join(name)).expect("fixture");
            let review: Value = serde_json::from_slice(&body).expect("json");
            let mut all = Vec::new();
            paths(&review, &mut Vec::new(), &mut all);
            let mut variants = vec![review.clone()];
            let mut with_response = review.clone();
            with_response["response"] = serde_json::json!({"uid": "u", "allowed": true});
            variants.push(with_response);
            for path in all.iter().filter(|p| read_by_kube(p)) {
                for with in &replacements {
                    let mut v = review.clone();
                    if let Some(slot) = value_at(&mut v, path) {
                        *slot = with.clone();
                    }
                    variants.push(v);
                }
                if let Some((last, parent)) = path.split_last() {
                    let mut v = review.clone();
                    match value_at(&mut v, parent) {
                        Some(Value::Object(m)) => {
                            m.shift_remove(last);
                        }
                        Some(Value::Array(a)) => {
                            a.remove(last.parse::<usize>().expect("index"));
                        }
                        _ => {}
                    }
                    variants.push(v);
                }
            }
            for v in variants {
                let b = serde_json::to_vec(&v).expect("json");
                bodies += 1;
                let doc = Document::parse(&b).expect("parses");
                if let Some(read) = envelope::review(doc.root()) {
                    read_here += 1;
                    let typed = doc
                        .root()
                        .doc_value()
                        .expect("doc")
                        .deserialize::<AdmissionReview<DynamicObject>>(&OBJECTS)
                        .expect("kube-core reads what the envelope reader reads");
                    assert_eq!(
                        serde_json::to_value(&read).expect("json"),
                        serde_json::to_value(&typed).expect("json"),
                        "{v}"
                    );
                }
                for key in ["object", "oldObject"] {
                    let Some(metadata) = doc.root().pointer(&format!("/request/{key}/metadata"))
                    else {
                        continue;
                    };
                    if envelope::metadata_reads(metadata) {
                        metadata_here += 1;
                        ObjectMeta::deserialize(&metadata.to_value())
                            .expect("kube-core reads what the metadata check passes");
                    }
                }
                same_as_before(&b, None);
            }
        }
        assert!(bodies > 7000, "only {bodies} bodies");
        assert!(read_here > bodies / 2, "{read_here} of {bodies}");
        assert!(metadata_here > bodies / 2, "{metadata_here} of {bodies}");
    }

    /// Every body gets the same answer, or the same error, as through the parse before the
    /// `Document`: captured reviews with one value replaced by a value of another type (the
    /// typed checks of the envelope and of `metadata`), and with bytes changed (the JSON
    /// syntax itself).
    #[test]
    fn every_body_is_read_as_before() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let policies = crate::lint::load_dir(&root.join("policies")).expect("policies");
        let replacements = [
            "null",
            "true",
            "0",
            "-1",
            "1.5",
            "1e400",
            "18446744073709551616",
            "\"\"",
            "\"x\"",
            "\"2026-11-25T05:35:56Z\"",
            "[]",
            "[\"a\"]",
            "{}",
            "{\"a\":\"b\"}",
            "{\"a\":1}",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut checked) = (0, 0);
        for name in [
            "validate-create-deployment.json",
            "mutate-update-deployment-resources.json",
            "mutate-create-pod-owned-by-replicaset.json",
        ] {
            let body =
                std::fs::read(root.join("tests/fixtures/admission").join(name)).expect("fixture");
            let review: Value = serde_json::from_slice(&body).expect("json");
            let mut all = Vec::new();
            paths(&review, &mut Vec::new(), &mut all);
            let mut bodies: Vec<Vec<u8>> = Vec::new();
            for _ in 0..400 {
                let mut v = review.clone();
                let path = &all[rng.below(all.len())];
                let with: Value = serde_json::from_str(replacements[rng.below(replacements.len())])
                    .unwrap_or(Value::Null);
                if let Some(slot) = value_at(&mut v, path) {
                    *slot = with;
                }
                bodies.push(serde_json::to_vec(&v).expect("json"));
            }
            for _ in 0..400 {
                let mut b = body.clone();
                let at = rng.below(b.len());
                match rng.below(3) {
                    0 => {
                        b.remove(at);
                    }
                    1 => b.insert(at, b"{}[]\",:0e-\\u \x01\xff"[rng.below(15)]),
                    _ => b[at] = b"{}[]\",:0e-\\u \x01\xff"[rng.below(15)],
                }
                bodies.push(b);
            }
            for b in bodies {
                checked += 1;
                if same_as_before(&b, Some(&policies)) {
                    fast += 1;
                }
            }
        }
        // Most mutations are refused or change what the engine reads; enough pass both ways.
        assert!(
            fast > checked / 4,
            "only {fast} of {checked} bodies took the fast path"
        );
    }

    #[test]
    fn invalid_answer_has_no_uid_and_says_why() {
        let json = serde_json::to_value(invalid(&ReviewError::NoRequest)).expect("json");
        assert_eq!(json["response"]["uid"], "");
        assert_eq!(json["response"]["allowed"], false);
        assert_eq!(json["response"]["status"]["code"], 400);
        assert_eq!(
            json["response"]["status"]["message"],
            "AdmissionReview has no request"
        );
    }
}
