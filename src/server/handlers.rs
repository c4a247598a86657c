//! HTTP handlers: the two webhook endpoints (thin: extract → evaluate → respond → record) and
//! the admin endpoints (health, readiness, metrics).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::state::AppState;
use crate::admission::{self, HandleError};
use crate::cluster::namespaces::Lookup;
use crate::engine::{Decision, Effect, NamespaceLabels};
use crate::policy::Timestamp;
use crate::telemetry::{Endpoint, ExceptionLabels, NativeRuleLabels, Outcome, PolicyLabels};

/// `POST /validate`.
pub async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    review(&state, Endpoint::Validate, &body).await
}

/// `POST /mutate`.
pub async fn mutate(State(state): State<AppState>, body: Bytes) -> Response {
    review(&state, Endpoint::Mutate, &body).await
}

async fn review(state: &AppState, endpoint: Endpoint, body: &[u8]) -> Response {
    let started = Instant::now();
    let metrics = state.metrics();
    let policies = state.policies();
    // The time decides which exceptions are in force and what scheduled policies do.
    let now = Timestamp::now();
    let parsed = match admission::parse_review(body) {
        Ok(review) => review,
        Err(e) => {
            tracing::warn!(endpoint = endpoint.as_str(), error = %e, "unreadable AdmissionReview");
            metrics.record_review(endpoint, Outcome::Invalid, "", started.elapsed());
            return (StatusCode::BAD_REQUEST, Json(admission::invalid(&e))).into_response();
        }
    };
    // The namespace's labels, from memory (never an API call); see AppState::namespace_labels.
    let lookup = state
        .namespace_labels(parsed.request.namespace.as_deref(), &policies.set)
        .await;
    let labels = lookup
        .as_ref()
        .map_or(NamespaceLabels::NameOnly, Lookup::labels);
    // The rules the API server enforces as this set exports them (`--native-sync`), if any.
    let native = state.native();
    let native = native.for_request(
        policies.generation,
        now,
        parsed.request.namespace.as_deref(),
    );
    let handled = match admission::answer(endpoint, &policies.set, parsed, now, labels, native) {
        Ok(handled) => handled,
        Err(HandleError::Unreadable(e)) => {
            tracing::warn!(endpoint = endpoint.as_str(), error = %e, "unreadable AdmissionReview");
            metrics.record_review(endpoint, Outcome::Invalid, "", started.elapsed());
            return (StatusCode::BAD_REQUEST, Json(admission::invalid(&e))).into_response();
        }
        Err(e @ HandleError::Answer { .. }) => {
            tracing::error!(error = %e, "cannot build the AdmissionReview answer");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let (req, decision) = (&handled.review.request, &handled.decision);
    let took = started.elapsed();
    // Every field is known here, so the span is built once: recording fields one by one into
    // an existing span re-encodes its JSON each time.
    let span = tracing::info_span!("review", uid = %req.uid, endpoint = endpoint.as_str(),
        kind = %req.kind.kind, namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name, operation = handled.review.engine_request(now).operation.as_str(),
        dry_run = req.dry_run, decision = handled.outcome.as_str(),
        patched = handled.outcome == Outcome::Patched,
        policies = decision.policies.join(",").as_str(), generation = policies.generation,
        latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    let _entered = span.enter();
    record_findings(state, endpoint, decision);
    metrics.record_review(endpoint, handled.outcome, &req.kind.kind, took);
    tracing::info!(
        skipped = decision.skipped.as_ref().map(|s| s.to_string()),
        "reviewed"
    );
    ([(header::CONTENT_TYPE, "application/json")], handled.body).into_response()
}

/// Counts violations (at `/validate`) or mutations (at `/mutate`) per policy, so each finding
/// is counted once although both endpoints evaluate.
fn record_findings(state: &AppState, endpoint: Endpoint, decision: &Decision) {
    if endpoint == Endpoint::Validate {
        for (policy, rule) in &decision.native {
            state
                .metrics()
                .native
                .skipped
                .get_or_create(&NativeRuleLabels {
                    policy: policy.clone(),
                    rule: (*rule).to_owned(),
                })
                .inc();
        }
    }
    let (family, findings): (_, Vec<_>) = match endpoint {
        Endpoint::Validate => (&state.metrics().violations, decision.violations().collect()),
        Endpoint::Mutate => (&state.metrics().mutations, decision.mutations().collect()),
    };
    if endpoint == Endpoint::Mutate {
        // Changes not made (a sidecar kept out of a host-network Pod): logged, not counted.
        for f in decision.notices() {
            tracing::info!(policy = %f.policy, rule = f.rule, effect = f.effect.as_str(),
                finding = %f.summary(), "notice");
        }
    }
    for f in findings {
        family
            .get_or_create(&PolicyLabels {
                policy: f.policy.clone(),
                effect: f.effect.as_str().to_owned(),
            })
            .inc();
        // Audit mode means "record": warn and audit findings are logged at info (one line
        // each, never the object); findings that deny or apply are in the review's own line.
        match f.effect {
            Effect::Warn | Effect::Audit => tracing::info!(policy = %f.policy, rule = f.rule,
                effect = f.effect.as_str(), pre_existing = f.pre_existing, finding = %f.summary(), "finding"),
            Effect::Excepted => {
                let e = f.exception.as_deref();
                state
                    .metrics()
                    .exceptions_applied
                    .get_or_create(&ExceptionLabels {
                        exception: e.map(|e| e.name.clone()).unwrap_or_default(),
                        policy: f.policy.clone(),
                    })
                    .inc();
                tracing::info!(policy = %f.policy, rule = f.rule, effect = f.effect.as_str(),
                    exception = e.map(|e| e.name.as_str()), owner = e.map(|e| e.owner.as_str()),
                    expires = %e.map(|e| e.expires.to_string()).unwrap_or_default(),
                    finding = %f.summary(), "finding");
            }
            Effect::Deny | Effect::Apply => tracing::debug!(policy = %f.policy, rule = f.rule,
                effect = f.effect.as_str(), finding = %f.summary(), "finding"),
        }
    }
}

/// `GET /livez`: the process is up.
pub async fn livez() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: policies loaded, TLS bound, the namespace cache synced (with cluster
/// access), not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics()
        .record_policy_state(&state.policies().set, Timestamp::now());
    match state.metrics().encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
