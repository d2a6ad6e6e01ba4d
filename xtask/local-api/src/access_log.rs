//! One JSON line per request on stdout, shaped like the stage's access log.
//!
//! The field names are API Gateway's `$context` variables as the stage's JSON access log format
//! uses them, so a query written against CloudWatch Logs works on the local log too.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;

/// One access log record.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub ip: &'a str,
    pub caller: &'a str,
    pub user: &'a str,
    pub request_time: &'a str,
    pub http_method: &'a str,
    pub resource_path: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub protocol: &'a str,
    pub response_length: usize,
    /// Milliseconds from request received to response sent (`$context.responseLatency`).
    pub latency: u128,
    /// Milliseconds spent in the function call, when there was one.
    pub integration_latency: Option<u128>,
    pub integration_status: Option<u16>,
    /// Which function served it, which version of it (chosen by the alias's weights; local
    /// only, API Gateway's log does not have it) and whether that needed a new process.
    pub function: Option<&'a str>,
    pub function_version: Option<&'a str>,
    pub cold_start: Option<bool>,
    /// API Gateway's `$context.error.message` for gateway-made responses.
    pub error_message: Option<&'a str>,
    /// Why the integration failed (local only: on AWS this is in the function's log).
    pub integration_error: Option<&'a str>,
}

/// An entry as written: with `requestTimeEpoch` (`$context.requestTimeEpoch`, epoch ms), which
/// `cargo xtask logs --all` and `trace` order the access log by among the functions' lines
/// (`requestTime` has whole seconds only).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    #[serde(flatten)]
    entry: &'a Entry<'a>,
    request_time_epoch: u128,
}

/// Writes one entry as a line; a closed stdout must not take the server down. The entry is
/// written when the response is sent, `latency` ms after the request arrived.
pub fn write(entry: &Entry<'_>) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = Line {
        entry,
        request_time_epoch: now_ms.saturating_sub(entry.latency),
    };
    if let Ok(line) = serde_json::to_string(&line) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// `$context.requestTime` format: `22/Nov/2026:02:56:54 +0000`.
pub fn request_time(at: SystemTime) -> String {
    let nanos = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let format =
        format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_request_time_like_api_gateway() {
        let at = UNIX_EPOCH + Duration::from_secs(1_428_582_896);
        assert_eq!(request_time(at), "09/Apr/2015:12:34:56 +0000");
    }
}
