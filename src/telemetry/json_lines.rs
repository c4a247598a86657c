//! JSON log lines: byte for byte what tracing-subscriber's `json()` format writes with the
//! options Portcullis uses (the current span, no span list, the event's fields flattened), at a
//! fraction of its cost per line.
//!
//! tracing-subscriber's JSON format stores each span's fields as a JSON text, which it parses
//! into a `serde_json::Value` again for every event written inside the span, and it writes
//! every piece of a line through an adaptor that checks each piece as UTF-8: for the webhook's
//! one line per review that was about a sixth of a request's instructions (BENCHMARKS.md).
//! Here a span's fields are written once, in the same form (keys sorted, the last value of a
//! repeated key kept), and copied into each line as they are; a line is put together in one
//! buffer and handed to the writer at once. The event's own fields go through the same
//! serializer as there (tracing-serde's `SerdeMapVisitor` over serde_json). A test checks the
//! two formats give the same bytes for events of every kind.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{SerializeMap as _, Serializer as _};
use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_serde::AsSerde as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How span fields are kept: a JSON object, keys sorted, as tracing-subscriber's `JsonFields`
/// writes it.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

/// Fields being collected: each value already written as JSON into `values`.
#[derive(Default)]
struct FieldsVisitor<'k> {
    values: Vec<u8>,
    /// (key, where its value is in `values`), in the order recorded.
    fields: Vec<(&'k str, std::ops::Range<usize>)>,
}

impl<'k> FieldsVisitor<'k> {
    fn push(&mut self, key: &'k str, value: &impl serde::Serialize) {
        let start = self.values.len();
        // Writing to a vector fails only for values that refuse to serialize, which none of
        // these are (strings, numbers, booleans, byte arrays, `serde_json::Value`s).
        if serde_json::to_writer(&mut self.values, value).is_ok() {
            self.fields.push((key, start..self.values.len()));
        } else {
            self.values.truncate(start);
        }
    }

    /// The JSON object: keys sorted, each key once with the last value recorded for it.
    fn finish(mut self) -> Result<String, fmt::Error> {
        // Stable: of equal keys, the one recorded last comes last and is kept.
        self.fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::with_capacity(self.values.len() + 16 * self.fields.len() + 2);
        out.push(b'{');
        let mut fields = self.fields.iter().peekable();
        let mut first = true;
        while let Some((key, range)) = fields.next() {
            if fields.peek().is_some_and(|(next, _)| next == key) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut out, key).map_err(|_| fmt::Error)?;
            out.push(b':');
            out.extend_from_slice(&self.values[range.clone()]);
        }
        out.push(b'}');
        String::from_utf8(out).map_err(|_| fmt::Error)
    }
}

impl Visit for FieldsVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // As `serde_json::Value::from(f64)`: a number, or `null` when not finite.
        match serde_json::Number::from_f64(value) {
            Some(n) => self.push(field.name(), &n),
            None => self.push(field.name(), &()),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field.name(), &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), &value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        // As `serde_json::Value::from(&[u8])`: an array of numbers.
        self.push(field.name(), &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            // Fields of `log` records that are metadata (tracing-log).
            name if name.starts_with("log.") => {}
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                self.push(name, &format_args!("{value:?}"));
            }
        }
    }
}

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldsVisitor::default();
        fields.record(&mut visitor);
        writer.write_str(&visitor.finish()?)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut visitor = FieldsVisitor::default();
        let previous: BTreeMap<&str, serde_json::Value>;
        if !current.fields.is_empty() {
            previous = serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
            for (key, value) in &previous {
                visitor.push(key, value);
            }
        }
        fields.record(&mut visitor);
        let joined = visitor.finish()?;
        current.fields = joined;
        Ok(())
    }
}

/// The JSON event format (see the module docs); `T` writes the timestamp.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines<T = SystemTime> {
    timer: T,
}

impl<T> JsonLines<T> {
    /// The format with `timer` writing each line's timestamp.
    pub fn with_timer(timer: T) -> JsonLines<T> {
        JsonLines { timer }
    }
}

impl<S, T> FormatEvent<S, JsonSpanFields> for JsonLines<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        self.timer.format_time(&mut Writer::new(&mut timestamp))?;
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());

        let mut line = Vec::with_capacity(512);
        let mut serializer = serde_json::Serializer::new(&mut line);
        let mut map = serializer.serialize_map(None).map_err(|_| fmt::Error)?;
        map.serialize_entry("timestamp", &timestamp)
            .map_err(|_| fmt::Error)?;
        map.serialize_entry("level", &meta.level().as_serde())
            .map_err(|_| fmt::Error)?;
        let mut visitor = tracing_serde::SerdeMapVisitor::new(map);
        event.record(&mut visitor);
        let mut map = visitor.take_serializer().map_err(|_| fmt::Error)?;
        map.serialize_entry("target", meta.target())
            .map_err(|_| fmt::Error)?;
        map.end().map_err(|_| fmt::Error)?;
        if let Some(span) = span {
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<JsonSpanFields>>() {
                // The span's fields as kept (an object), then its name, inside the line's
                // object: `{...,"target":"t"}` becomes `{...,"target":"t","span":{...}}`.
                let fields = fields.fields.as_bytes();
                line.pop();
                line.extend_from_slice(b",\"span\":");
                match fields.strip_suffix(b"}") {
                    Some(open) if open.len() > 1 => {
                        line.extend_from_slice(open);
                        line.push(b',');
                    }
                    _ => line.push(b'{'),
                }
                line.extend_from_slice(b"\"name\":");
                serde_json::to_writer(&mut line, span.metadata().name()).map_err(|_| fmt::Error)?;
                line.extend_from_slice(b"}}");
            }
        }
        line.push(b'\n');
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A fixed timestamp, so two formats' lines can be compared.
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-11-30T00:00:00.000000Z")
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer \"failure\"")]
    struct Failure;

    /// Events of every kind: in and out of spans, nested spans, a span recorded into later,
    /// every type of field, names that repeat, raw identifiers, text that needs escaping.
    fn events() {
        tracing::info!("no span, no fields");
        tracing::warn!(
            addr = "127.0.0.1:8443",
            policies = 7_u64,
            grace_seconds = 20.0,
            ratio = 0.1,
            big = 1e300,
            nan = f64::NAN,
            inf = f64::INFINITY,
            neg = -3_i64,
            on = true,
            "portcullis webhook serving"
        );
        let error = Failure;
        tracing::error!(error = &error as &dyn std::error::Error, shown = %error,
            debugged = ?error, "cannot \"answer\"\n\ttab \u{1b}[31m é ✓");
        let skipped: Option<String> = None;
        let reason = Some("not judged: \"x\"".to_owned());
        let span = tracing::info_span!("review", uid = %"0d6d-uid", endpoint = "validate",
            kind = %"Deployment", namespace = "demo", name = %"web", operation = "CREATE",
            dry_run = false, decision = "denied", patched = false,
            policies = "default-labels,require-probes", generation = 1_u64, latency_us = 320_u64);
        {
            let _entered = span.enter();
            tracing::info!(skipped = skipped.clone(), "reviewed");
            tracing::info!(skipped = reason, "reviewed");
            tracing::info!(policy = %"require-probes", rule = "requireProbes", effect = "warn",
                pre_existing = true, finding = %"[p] container \"a\": no probe", "finding");
            let inner = tracing::info_span!("inner", r#type = ?"raw", name = 1_i64, name = 2_i64,
                bytes = tracing::field::debug(b"ab"), late = tracing::field::Empty);
            let _inner = inner.enter();
            tracing::info!(r#type = "event raw", "in the inner span");
            inner.record("late", 5_u64);
            inner.record("name", "recorded");
            tracing::info!("after record");
        }
        let empty = tracing::info_span!("empty");
        let _e = empty.enter();
        tracing::info!(x = 1_u64, "in an empty span");
        let later = tracing::info_span!("later", a = tracing::field::Empty);
        let _l = later.enter();
        later.record("a", "first");
        later.record("a", "second");
        tracing::debug!("filtered out");
        tracing::info!(message = "explicit message field", "ignored?");
        // A record of the `log` crate (rustls logs through it), as tracing-log hands it on:
        // level and target from the record, its `log.*` fields as the event's.
        log_record(tracing_log::log::Level::Warn, "a \"log\" record");
        log_record(tracing_log::log::Level::Debug, "filtered out");
    }

    fn log_record(level: tracing_log::log::Level, text: &str) {
        let _ = tracing_log::format_trace(
            &tracing_log::log::Record::builder()
                .level(level)
                .target("rustls::conn")
                .module_path_static(Some("rustls::conn"))
                .file_static(Some("src/conn.rs"))
                .line(Some(42))
                .args(format_args!("{text}"))
                .build(),
        );
    }

    fn lines_of(subscriber: impl Subscriber + Send + Sync + 'static, out: &Captured) -> String {
        tracing::subscriber::with_default(subscriber, events);
        String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8")
    }

    #[test]
    fn lines_are_those_of_tracing_subscribers_json_format() {
        let theirs = Captured::default();
        let writer = theirs.clone();
        let reference = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .with_timer(Fixed)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .finish();
        let ours = Captured::default();
        let writer = ours.clone();
        let fast = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonSpanFields)
            .event_format(JsonLines::with_timer(Fixed))
            .finish();
        let expected = lines_of(reference, &theirs);
        let got = lines_of(fast, &ours);
        assert_eq!(expected.lines().count(), 11, "{expected}");
        assert!(
            expected.contains(r#""level":"WARN","message":"a \"log\" record""#),
            "{expected}"
        );
        for (want, have) in expected.lines().zip(got.lines()) {
            assert_eq!(have, want);
        }
        assert_eq!(got, expected);
        assert!(
            expected.contains(r#""span":{"decision":"denied","#),
            "{expected}"
        );
    }
}
