//! JSON logs, one line per event, each carrying the request id of the `request` span.
//!
//! Nothing secret is ever passed to a log macro (passwords, tokens and hashes have redacted
//! `Debug` and no `Display`). The AWS SDK and the HTTP stack can log request bodies at debug
//! and trace level, and our PutItem bodies hold password hashes, so their levels are capped at
//! INFO whatever `RUST_LOG` says.

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, Targets};
use tracing_subscriber::fmt::MakeWriter;
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
/// over a buffer.
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
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer)
        .with_filter(requested.and(caps))
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
