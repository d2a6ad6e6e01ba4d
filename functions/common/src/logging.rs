//! JSON logs, one flat object per line, each carrying the request id of the `request` span;
//! the schema is `docs/logging.md` and [`LogLine`].
//!
//! Nothing secret is ever passed to a log macro (passwords, tokens and hashes have redacted
//! `Debug` and no `Display`). The AWS SDK and the HTTP stack can log request bodies at debug
//! and trace level, and our PutItem bodies hold password hashes, so their levels are capped at
//! INFO whatever `RUST_LOG` says.

use std::io::Write as _;

use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::layer::Context;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Crates whose verbose levels may print request or response bodies.
const CAPPED_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_config",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
];

/// The production JSON layer writing to `writer`, with the level filter `spec` (an
/// `EnvFilter` directive string such as `info`) and the caps above. Tests build the same layer
/// over a buffer. Each line has the shape `docs/logging.md` documents and [`LogLine`] checks.
pub fn json_layer<S, W>(spec: &str, writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let requested = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(spec);
    let caps = CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, target| targets.with_target(*target, LevelFilter::INFO),
    );
    JsonLines { writer }.with_filter(requested.and(caps))
}

/// Writes one flat JSON object per event: `timestamp`, `level`, `target`, `message`, then the
/// fields of every enclosing span from the outermost in (so `request_id` is on every line of a
/// request, whichever span, ours or a library's, is innermost), then the event's own fields.
///
/// tracing-subscriber's JSON formatter nests only the innermost span's fields under `span`:
/// a line logged inside any inner span (the AWS SDK's, a store's) lost the request id. One
/// flat object also makes CloudWatch Logs Insights' discovered fields (`request_id`,
/// `status`) and filter patterns (`{ $.request_id = "..." }`) work without a path.
struct JsonLines<W> {
    writer: W,
}

/// The recorded fields of one span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Fields(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        let mut timestamp = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        line.insert("timestamp".into(), Value::String(timestamp));
        let metadata = event.metadata();
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert("target".into(), Value::String(metadata.target().to_owned()));
        line.insert("message".into(), Value::String(String::new()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (key, value) in &fields.0 {
                        line.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        event.record(&mut Fields(&mut line));
        if let Ok(mut text) = serde_json::to_string(&Value::Object(line)) {
            text.push('\n');
            // One write per line, so concurrent lines never interleave.
            let _ = self.writer.make_writer().write_all(text.as_bytes());
        }
    }
}

/// Records field values as JSON: numbers and booleans as such, everything else as text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), error_chain(value).into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// One log line as `docs/logging.md` documents it: what every line a function writes parses
/// as (the functions' log tests check each captured line with [`LogLine::parse`]). Fields not
/// named here are allowed (an event's own fields), but those named must have these types.
#[derive(Debug, Deserialize)]
pub struct LogLine {
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub level: Level,
    /// The Rust module that logged the line (`service_common::http::serve`, `aws_config...`).
    pub target: String,
    pub message: String,
    /// The API Gateway request id (`x-request-id`), on every line logged while serving a
    /// request; absent only on start-up lines.
    pub request_id: Option<String>,
    /// The HTTP method and the route template (`/users/{id}`) of the request.
    pub method: Option<String>,
    pub route: Option<String>,
    /// The authenticated user, once known.
    pub user_id: Option<String>,
    /// On `request completed`.
    pub status: Option<u16>,
    pub duration_ms: Option<f64>,
    /// On `request failed` and `request rejected`: the error code of the response.
    pub code: Option<String>,
    /// The Lambda invocation id and X-Ray trace header, on every line of an invocation (the
    /// Lambda runtime's own span). Not the API request id: that is `request_id`.
    #[serde(rename = "requestId")]
    pub invocation_id: Option<String>,
    #[serde(rename = "xrayTraceId")]
    pub xray_trace_id: Option<String>,
    /// On `dynamodb call` (see [`crate::calls`]).
    pub operation: Option<String>,
    pub table: Option<String>,
    pub outcome: Option<String>,
}

/// The levels a line can have.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLine {
    /// Parses one line; the error says what about it breaks the schema.
    pub fn parse(line: &str) -> Result<LogLine, String> {
        let parsed: LogLine =
            serde_json::from_str(line).map_err(|e| format!("{e} in log line {line}"))?;
        if !is_rfc3339_utc(&parsed.timestamp) {
            return Err(format!(
                "timestamp `{}` is not RFC 3339 UTC in log line {line}",
                parsed.timestamp
            ));
        }
        Ok(parsed)
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, checked by shape (the functions carry no date crate).
fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && text.ends_with('Z')
}

/// Installs the JSON layer on stdout for the process (Lambda ships stdout to CloudWatch).
/// The level comes from `RUST_LOG`, default `info`.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // A second call (tests) keeps the first subscriber; that is fine.
    let _ = Registry::default()
        .with(json_layer(&spec, std::io::stdout))
        .try_init();
}

/// Renders an error and its sources on one line (`a: b: c`), for log fields.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_flat_and_carry_every_enclosing_spans_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = Registry::default().with(json_layer("info", move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let request =
                tracing::info_span!("request", request_id = "r-1", route = tracing::field::Empty);
            let _request = request.enter();
            request.record("route", "/users/{id}");
            // A library's inner span, as the AWS SDK opens: the request id must survive it.
            let inner = tracing::info_span!("invoke", service = "dynamodb");
            let _inner = inner.enter();
            tracing::warn!(status = 500_u16, duration_ms = 1.5, "request completed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let outside = LogLine::parse(lines[0]).unwrap();
        assert_eq!(outside.request_id, None);
        assert_eq!(outside.message, "outside");
        let inside = LogLine::parse(lines[1]).unwrap();
        assert_eq!(inside.level, Level::Warn);
        assert_eq!(inside.request_id.as_deref(), Some("r-1"));
        assert_eq!(inside.route.as_deref(), Some("/users/{id}"));
        assert_eq!(inside.status, Some(500));
        assert_eq!(inside.duration_ms, Some(1.5));
        let raw: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(raw["service"], "dynamodb");
        assert!(raw.get("span").is_none(), "flat: {raw}");
    }

    #[test]
    fn the_schema_refuses_what_it_does_not_document() {
        let ok =
            r#"{"timestamp":"2026-12-06T21:00:00.5Z","level":"INFO","target":"t","message":"m"}"#;
        assert!(LogLine::parse(ok).is_ok());
        for bad in [
            r#"{"timestamp":"2026-12-06T21:00:00.5Z","level":"NOTICE","target":"t","message":"m"}"#,
            r#"{"timestamp":"yesterday","level":"INFO","target":"t","message":"m"}"#,
            r#"{"timestamp":"2026-12-06T21:00:00.5Z","level":"INFO","message":"m"}"#,
            r#"{"timestamp":"2026-12-06T21:00:00.5Z","level":"INFO","target":"t","message":"m","status":"500"}"#,
            "thread 'main' panicked",
        ] {
            assert!(LogLine::parse(bad).is_err(), "accepted {bad}");
        }
    }
}
