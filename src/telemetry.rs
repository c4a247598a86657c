//! Telemetry: the tracing subscriber (`json` or `plain` logs) and the Prometheus metrics the
//! webhook exposes on its admin port.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::policy::Timestamp;

mod json_lines;
pub use json_lines::{JsonLines, JsonSpanFields};
use tracing_subscriber::fmt::time::SystemTime;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors). Default.
    #[default]
    Json,
    /// Human-readable text.
    Plain,
}

/// Why the tracing subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Installs the global tracing subscriber writing to stderr. `filter` uses the `RUST_LOG`
/// syntax (`info`, `portcullis=debug,info`).
pub fn init_tracing(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter = tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|source| TelemetryError::Filter {
            filter: filter.to_owned(),
            source,
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let installed = match format {
        // What tracing-subscriber's `json()` format writes with the current span, no span
        // list and the event's fields flattened, byte for byte, at a fraction of the cost.
        LogFormat::Json => builder
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines::<SystemTime>::default())
            .try_init(),
        LogFormat::Plain => builder.try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}

/// The webhook endpoint a review went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/validate`.
    Validate,
    /// `/mutate`.
    Mutate,
}

impl Endpoint {
    /// `validate` or `mutate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// The outcome of one review, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed without a patch.
    Allowed,
    /// Allowed with a patch (mutate).
    Patched,
    /// Denied (validate).
    Denied,
    /// The body was not a readable AdmissionReview (HTTP 400).
    Invalid,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `portcullis_admission_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `validate` or `mutate`.
    pub endpoint: Endpoint,
    /// `allowed`, `patched`, `denied`, `invalid`.
    pub decision: Outcome,
    /// The object's kind (`Deployment`); empty for invalid bodies.
    pub kind: String,
}

/// Labels of the per-policy counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PolicyLabels {
    /// The policy's name.
    pub policy: String,
    /// The finding's effect: `deny`, `apply`, `warn` or `audit`.
    pub effect: String,
}

/// Labels of `portcullis_policy_mode`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModeLabels {
    /// The policy's name.
    pub policy: String,
    /// The namespaces the mode applies to: a schedule step's selection (`team-*`), or `*` for
    /// every namespace no listed selection covers.
    pub namespaces: String,
    /// `enforce`, `warn`, `audit` or `off`.
    pub mode: String,
}

/// Labels of per-policy gauges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PolicyNameLabels {
    /// The policy's name.
    pub policy: String,
}

/// Labels of `portcullis_policy_exceptions_applied_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ExceptionLabels {
    /// The exception's name.
    pub exception: String,
    /// The policy whose finding it excepted.
    pub policy: String,
}

/// Labels of `portcullis_policy_exception_expiry_timestamp_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ExceptionOwnerLabels {
    /// The exception's name.
    pub exception: String,
    /// Its owner.
    pub owner: String,
}

/// Labels of the endpoint-scoped metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `validate` or `mutate`.
    pub endpoint: Endpoint,
}

/// Labels of the reload counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: String,
}

/// Latency buckets in seconds: evaluation takes microseconds, so they start well below 1 ms.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of the webhook, registered in one registry (no globals: each server, and each
/// test, has its own).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reviews answered, by endpoint, decision and kind.
    pub requests: Family<RequestLabels, Counter>,
    /// Violations found at `/validate`, by policy and effect.
    pub violations: Family<PolicyLabels, Counter>,
    /// Mutations found at `/mutate`, by policy and effect (`apply`, `warn`, `audit`).
    pub mutations: Family<PolicyLabels, Counter>,
    /// Time from request start to response, by endpoint.
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// Requests currently being served on the webhook port.
    pub in_flight: Gauge,
    /// Connections open on the webhook port (TLS handshakes included).
    pub connections_open: Gauge,
    /// The cap on open connections (`--max-connections`).
    pub connections_max: Gauge,
    /// Connections closed at once because the cap was reached.
    pub connections_refused: Counter,
    /// Policy reloads, by result.
    pub policy_reloads: Family<ReloadLabels, Counter>,
    /// Generation of the policy set in force (1 at start-up, +1 per successful reload).
    pub policy_generation: Gauge,
    /// Number of policies in force.
    pub policies_loaded: Gauge,
    /// TLS certificate reloads, by result.
    pub tls_reloads: Family<ReloadLabels, Counter>,
    /// `notAfter` of the serving certificate in force, unix seconds.
    pub certificate_expiry: Gauge,
    /// 1 for the mode each policy runs in now, per namespace scope of its schedule.
    pub policy_mode: Family<ModeLabels, Gauge>,
    /// Start of each scheduled policy's next schedule step, unix seconds.
    pub policy_next_mode_change: Family<PolicyNameLabels, Gauge>,
    /// Findings excepted, by exception and policy (counted where the findings are counted).
    pub exceptions_applied: Family<ExceptionLabels, Counter>,
    /// When each exception expires, unix seconds.
    pub exception_expiry: Family<ExceptionOwnerLabels, Gauge>,
    /// The namespace-label cache (zero when serving without cluster access).
    pub namespace_cache: NamespaceCacheMetrics,
    /// The policy reports (zero without `--reports`).
    pub reports: ReportsMetrics,
    /// The native admission policies kept in sync (zero without `--native-sync`).
    pub native: NativeMetrics,
}

/// Labels of `portcullis_native_rules_skipped_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NativeRuleLabels {
    /// The policy's name.
    pub policy: String,
    /// The rule type (`requireProbes`).
    pub rule: String,
}

/// Metrics of the native sync ([`crate::cluster::native_sync`]) and of what the webhook leaves
/// to the API server.
#[derive(Debug, Clone, Default)]
pub struct NativeMetrics {
    /// Rules the cluster enforces as exported (the webhook leaves them to the API server).
    pub rules_confirmed: Gauge,
    /// Admission policy objects Portcullis owns in the cluster.
    pub objects: Gauge,
    /// Objects written, by operation (`apply`, `delete`).
    pub writes: Family<WriteLabels, Counter>,
    /// Writes that failed.
    pub write_errors: Counter,
    /// Rules the webhook did not judge because the API server does, per review at
    /// `/validate`, by policy and rule.
    pub skipped: Family<NativeRuleLabels, Counter>,
}

impl NativeMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "native_rules_confirmed",
            "Rules the cluster's native admission policies enforce as exported: the webhook leaves them to the API server",
            self.rules_confirmed.clone(),
        );
        registry.register(
            "native_objects",
            "Native admission policy objects Portcullis owns in the cluster",
            self.objects.clone(),
        );
        registry.register(
            "native_writes",
            "Native admission policy objects written by the sync, by operation (apply, delete)",
            self.writes.clone(),
        );
        registry.register(
            "native_write_errors",
            "Native admission policy writes that failed",
            self.write_errors.clone(),
        );
        registry.register(
            "native_rules_skipped",
            "Rules the webhook left to the API server's native admission policies, per review at /validate, by policy and rule",
            self.skipped.clone(),
        );
        for operation in ["apply", "delete"] {
            drop(self.writes.get_or_create(&WriteLabels {
                operation: operation.to_owned(),
            }));
        }
    }
}

/// Labels of the report write counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply` or `delete`.
    pub operation: String,
}

/// Labels of the report scan counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScanLabels {
    /// Why every workload was judged again: `start`, `policy`, `periodic`.
    pub trigger: String,
}

/// Metrics of the policy reports ([`crate::cluster::reports`]).
#[derive(Debug, Clone, Default)]
pub struct ReportsMetrics {
    /// 1 while this replica holds the Lease and writes reports.
    pub leader: Gauge,
    /// 1 when the OpenReports CRDs are served, 0 when they are not (no report is written).
    pub crds_installed: Gauge,
    /// Workloads judged for the reports (controller-owned ones are judged at their owner).
    pub workloads: Gauge,
    /// Reports Portcullis has in the cluster.
    pub reports: Gauge,
    /// Namespaces with results but no report, because the report budget is spent.
    pub over_budget: Gauge,
    /// Results left out of the reports by their limits (`maxResults`).
    pub results_left_out: Gauge,
    /// Reports written, by operation (`apply`, `delete`).
    pub writes: Family<WriteLabels, Counter>,
    /// Report writes that failed.
    pub write_errors: Counter,
    /// Workload events judged (watch).
    pub events: Counter,
    /// Times every workload was judged again, by trigger.
    pub scans: Family<ScanLabels, Counter>,
    /// Duration of the last full judgement of every workload.
    pub scan_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// 1 for each exception in force that excepted no finding of any live workload at the
    /// last full judgement (the leader only).
    pub exceptions_unused: Family<ExceptionOwnerLabels, Gauge>,
}

impl ReportsMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "reports_leader",
            "1 while this replica holds the reports Lease and writes policy reports",
            self.leader.clone(),
        );
        registry.register(
            "reports_crds_installed",
            "1 when the OpenReports CRDs are served; 0: no report is written",
            self.crds_installed.clone(),
        );
        registry.register(
            "reports_workloads",
            "Workloads judged for the policy reports",
            self.workloads.clone(),
        );
        registry.register(
            "reports",
            "Policy reports Portcullis has in the cluster",
            self.reports.clone(),
        );
        registry.register(
            "reports_namespaces_over_budget",
            "Namespaces with results but no report, because the report budget is spent",
            self.over_budget.clone(),
        );
        registry.register(
            "reports_results_left_out",
            "Results left out of the reports by their limits (maxResults)",
            self.results_left_out.clone(),
        );
        registry.register(
            "reports_writes",
            "Policy reports written, by operation (apply, delete)",
            self.writes.clone(),
        );
        registry.register(
            "reports_write_errors",
            "Policy report writes that failed",
            self.write_errors.clone(),
        );
        registry.register(
            "reports_workload_events",
            "Workload watch events judged for the policy reports",
            self.events.clone(),
        );
        registry.register(
            "reports_scans",
            "Times every workload was judged again, by trigger (start, policy, periodic)",
            self.scans.clone(),
        );
        registry.register_with_unit(
            "reports_scan_duration",
            "Duration of the last full judgement of every workload",
            prometheus_client::registry::Unit::Seconds,
            self.scan_seconds.clone(),
        );
        registry.register(
            "policy_exception_unused",
            "1 for each PolicyException in force that excepted no finding of any live workload at the reports' last full judgement (leader only)",
            self.exceptions_unused.clone(),
        );
        for operation in ["apply", "delete"] {
            drop(self.writes.get_or_create(&WriteLabels {
                operation: operation.to_owned(),
            }));
        }
    }
}

/// Metrics of the namespace-label cache ([`crate::cluster::namespaces`]).
#[derive(Debug, Clone, Default)]
pub struct NamespaceCacheMetrics {
    /// 1 once the first list of namespaces is in the cache.
    pub synced: Gauge,
    /// Namespaces in the cache.
    pub namespaces: Gauge,
    /// 0 while the watch follows the API server; while it fails, seconds since the cache was
    /// last known to be current.
    pub stale_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Errors of the namespace watch (each failed attempt).
    pub watch_errors: Counter,
    /// Reviews whose namespace was not in the cache, even after waiting for the watch.
    pub misses: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `portcullis_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews answered, by endpoint, decision and object kind",
            requests.clone(),
        );
        let violations = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "policy_violations",
            "Violations found by /validate, by policy and effect (deny, warn, audit)",
            violations.clone(),
        );
        let mutations = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "policy_mutations",
            "Mutations found by /mutate, by policy and effect (apply; warn, audit: only described)",
            mutations.clone(),
        );
        let latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "admission_duration",
            "Time to answer an AdmissionReview, body read included",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "admission_in_flight",
            "Requests being served on the webhook port",
            in_flight.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Connections open on the webhook port, TLS handshakes included",
            connections_open.clone(),
        );
        let connections_max = Gauge::default();
        registry.register(
            "connections_max",
            "The cap on open connections on the webhook port (--max-connections)",
            connections_max.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections to the webhook port closed at once because the cap was reached",
            connections_refused.clone(),
        );
        let policy_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy directory reloads after a content change, by result (success, failure)",
            policy_reloads.clone(),
        );
        let policy_generation = Gauge::default();
        registry.register(
            "policy_generation",
            "Generation of the policy set in force (1 at start-up, +1 per successful reload)",
            policy_generation.clone(),
        );
        let policies_loaded = Gauge::default();
        registry.register(
            "policies_loaded",
            "Number of policies in the set in force",
            policies_loaded.clone(),
        );
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Serving certificate reloads after a content change, by result (success, failure)",
            tls_reloads.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in force, unix seconds",
            certificate_expiry.clone(),
        );
        let policy_mode = Family::<ModeLabels, Gauge>::default();
        registry.register(
            "policy_mode",
            "1 for the mode each policy runs in now (schedules applied, --max-mode included), by namespace scope",
            policy_mode.clone(),
        );
        let policy_next_mode_change = Family::<PolicyNameLabels, Gauge>::default();
        registry.register(
            "policy_next_mode_change_timestamp_seconds",
            "Start of the next schedule step of each scheduled policy, unix seconds",
            policy_next_mode_change.clone(),
        );
        let exceptions_applied = Family::<ExceptionLabels, Counter>::default();
        registry.register(
            "policy_exceptions_applied",
            "Findings excepted by a PolicyException, by exception and policy",
            exceptions_applied.clone(),
        );
        let exception_expiry = Family::<ExceptionOwnerLabels, Gauge>::default();
        registry.register(
            "policy_exception_expiry_timestamp_seconds",
            "When each PolicyException expires (it has no effect from then on), unix seconds",
            exception_expiry.clone(),
        );
        let namespace_cache = NamespaceCacheMetrics::default();
        namespace_cache.register(&mut registry);
        let reports = ReportsMetrics::default();
        reports.register(&mut registry);
        let native = NativeMetrics::default();
        native.register(&mut registry);
        // Both results exist from the start, so rate() and alerts work before the first reload.
        for success in [true, false] {
            drop(policy_reloads.get_or_create(&reload_labels(success)));
            drop(tls_reloads.get_or_create(&reload_labels(success)));
        }
        Metrics {
            registry,
            requests,
            violations,
            mutations,
            latency,
            in_flight,
            connections_open,
            connections_max,
            connections_refused,
            policy_reloads,
            policy_generation,
            policies_loaded,
            tls_reloads,
            certificate_expiry,
            namespace_cache,
            reports,
            native,
            policy_mode,
            policy_next_mode_change,
            exceptions_applied,
            exception_expiry,
        }
    }

    /// Sets the gauges that describe the policy set at `now`: each policy's mode per namespace
    /// scope, the next schedule change, each exception's expiry. Called before every scrape,
    /// since the time alone changes modes.
    pub fn record_policy_state(&self, set: &crate::policy::PolicySet, now: Timestamp) {
        self.policy_mode.clear();
        self.policy_next_mode_change.clear();
        self.exception_expiry.clear();
        for p in &set.policies {
            for (namespaces, mode) in p.modes_at(now) {
                self.policy_mode
                    .get_or_create(&ModeLabels {
                        policy: p.name.clone(),
                        namespaces,
                        mode: mode.as_str().to_owned(),
                    })
                    .set(1);
            }
            if let Some(next) = p.next_change(now) {
                self.policy_next_mode_change
                    .get_or_create(&PolicyNameLabels {
                        policy: p.name.clone(),
                    })
                    .set(next.unix());
            }
        }
        for e in &set.exceptions {
            self.exception_expiry
                .get_or_create(&ExceptionOwnerLabels {
                    exception: e.info.name.clone(),
                    owner: e.info.owner.clone(),
                })
                .set(e.info.expires.unix());
        }
    }

    /// Counts one answered review and its latency.
    pub fn record_review(&self, endpoint: Endpoint, outcome: Outcome, kind: &str, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                decision: outcome,
                kind: kind.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(took.as_secs_f64());
    }

    /// Counts a reload attempt of the policy directory.
    pub fn record_policy_reload(&self, success: bool) {
        self.policy_reloads
            .get_or_create(&reload_labels(success))
            .inc();
    }

    /// Counts a reload attempt of the serving certificate.
    pub fn record_tls_reload(&self, success: bool) {
        self.tls_reloads
            .get_or_create(&reload_labels(success))
            .inc();
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl NamespaceCacheMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "namespace_cache_synced",
            "1 once the namespace-label cache holds the first list of namespaces",
            self.synced.clone(),
        );
        registry.register(
            "namespace_cache_namespaces",
            "Namespaces in the namespace-label cache",
            self.namespaces.clone(),
        );
        registry.register_with_unit(
            "namespace_cache_stale",
            "0 while the namespace watch follows the API server; while it fails, seconds since the cache was last known to be current",
            prometheus_client::registry::Unit::Seconds,
            self.stale_seconds.clone(),
        );
        registry.register(
            "namespace_cache_watch_errors",
            "Failed attempts of the namespace watch",
            self.watch_errors.clone(),
        );
        registry.register(
            "namespace_cache_misses",
            "Reviews whose namespace was not in the namespace-label cache, even after waiting for the watch",
            self.misses.clone(),
        );
    }
}

fn reload_labels(success: bool) -> ReloadLabels {
    ReloadLabels {
        result: if success { "success" } else { "failure" }.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family_with_sub_millisecond_buckets() {
        let m = Metrics::new();
        m.record_review(
            Endpoint::Validate,
            Outcome::Denied,
            "Pod",
            Duration::from_micros(80),
        );
        m.record_policy_reload(false);
        m.policy_generation.set(3);
        let text = m.encode().expect("encode");
        assert!(
            text.contains(
                r#"portcullis_admission_requests_total{endpoint="validate",decision="denied",kind="Pod"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"portcullis_policy_reloads_total{result="failure"} 1"#));
        assert!(text.contains("portcullis_policy_generation 3"));
        assert!(
            text.contains(
                r#"portcullis_admission_duration_seconds_bucket{le="0.0001",endpoint="validate"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"portcullis_admission_duration_seconds_bucket{le="5e-5",endpoint="validate"} 0"#
        ) || text.contains(
            r#"portcullis_admission_duration_seconds_bucket{le="0.00005",endpoint="validate"} 0"#
        ), "{text}");
    }
}
