//! `cargo xtask trace REQUEST_ID`: one request's access-log line and every line the functions
//! logged for it, in order, with the DynamoDB calls each made and what went wrong.
//!
//! The join is exact: API Gateway's request id is the access log's `requestId`, the
//! `x-request-id` response header and the `request_id` field of every function log line (the
//! schema in `docs/logging.md`). Locally the lines come from the local API server's files (see
//! [`crate::services::logs`]); on AWS from one CloudWatch Logs Insights query across the
//! functions' log groups and the access log group, and the access log names the X-Ray trace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::base::env::Env;
use crate::base::process;
use crate::services::logs::{self, ACCESS_LOG, Source, format_ts};
use crate::services::target;

/// A request's lines, ordered by time.
#[derive(Debug, Serialize)]
pub struct Trace {
    pub request_id: String,
    pub lines: Vec<TraceLine>,
}

/// One line of a trace: where it comes from (a function, or `api` for the access log), when,
/// and the line itself (parsed when it is JSON).
#[derive(Debug, Serialize)]
pub struct TraceLine {
    pub source: String,
    pub timestamp: i64,
    pub line: Value,
    /// The function version that wrote it, when the log says (AWS: the log stream's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A request id as API Gateway and the local API server make them (a UUID, letters, digits
/// and dashes): checked before it goes into a query.
pub fn check_request_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!(
            "`{id}` is not a request id: take it from the `x-request-id` header or the error \
             body's `request_id` (letters, digits and dashes)"
        );
    }
    Ok(())
}

/// The request's lines from the local log files of `sources`.
pub fn local(sources: &[Source], request_id: &str) -> Result<Trace> {
    check_request_id(request_id)?;
    let mut lines = Vec::new();
    for source in sources {
        for (timestamp, text) in logs::read_file(&source.path)? {
            let Ok(line) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if line_request_id(&line) == Some(request_id) {
                lines.push(TraceLine {
                    source: source.name.clone(),
                    timestamp,
                    line,
                    version: None,
                });
            }
        }
    }
    // The access log says which version of which function served the request.
    let served = lines.iter().find_map(|l| {
        let function = l.line.get("function")?.as_str()?;
        let version = l.line.get("functionVersion")?.as_str()?;
        Some((function.to_owned(), version.to_owned()))
    });
    if let Some((function, version)) = served {
        for line in lines.iter_mut().filter(|l| l.source == function) {
            line.version = Some(version.clone());
        }
    }
    lines.sort_by_key(|l| (l.timestamp, l.source != ACCESS_LOG));
    Ok(Trace {
        request_id: request_id.to_owned(),
        lines,
    })
}

/// A line's request id: the functions' `request_id` or the access log's `requestId`.
fn line_request_id(line: &Value) -> Option<&str> {
    line.get("request_id")
        .or_else(|| line.get("requestId"))
        .and_then(Value::as_str)
}

/// The Logs Insights query that finds a request's lines in the functions' and the access log's
/// groups, oldest first. `request_id` must have passed [`check_request_id`].
pub fn insights_query(request_id: &str) -> String {
    format!(
        "fields @timestamp, @log, @logStream, @message\n\
         | filter request_id = \"{request_id}\" or requestId = \"{request_id}\"\n\
         | sort @timestamp asc\n\
         | limit 10000"
    )
}

/// The request's lines on AWS: one Logs Insights query over `groups` (`(name, log group)`)
/// for the last `since`, polled until it completes.
pub fn cloudwatch(
    env: &Env,
    groups: &[(String, String)],
    request_id: &str,
    since: Duration,
) -> Result<Trace> {
    check_request_id(request_id)?;
    let (target, _moto) = target::target(env)?;
    let end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64 + 60;
    let start = end - 60 - since.as_secs() as i64;
    process::block_on(async {
        let config = target.sdk_config().await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
        let names: Vec<String> = groups.iter().map(|(_, g)| g.clone()).collect();
        let started = logs
            .start_query()
            .set_log_group_names(Some(names.clone()))
            .start_time(start)
            .end_time(end)
            .query_string(insights_query(request_id))
            .send()
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "starting a Logs Insights query over {} (StartQuery): {}",
                    names.join(", "),
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err)
                )
            })?;
        let query_id = started
            .query_id()
            .context("StartQuery answered without a query id")?
            .to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let results = logs
                .get_query_results()
                .query_id(&query_id)
                .send()
                .await
                .map_err(|err| {
                    anyhow::anyhow!(
                        "reading Logs Insights query {query_id} (GetQueryResults): {}",
                        aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err)
                    )
                })?;
            use aws_sdk_cloudwatchlogs::types::QueryStatus;
            match results.status() {
                Some(QueryStatus::Complete) => {
                    let rows = results
                        .results()
                        .iter()
                        .map(|row| {
                            row.iter()
                                .filter_map(|f| {
                                    Some((f.field()?.to_owned(), f.value()?.to_owned()))
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>();
                    return Ok(from_insights_rows(groups, request_id, &rows));
                }
                Some(QueryStatus::Scheduled | QueryStatus::Running) | None => {}
                Some(status) => bail!("the Logs Insights query {query_id} ended {status:?}"),
            }
            if std::time::Instant::now() > deadline {
                bail!("the Logs Insights query {query_id} did not complete within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// A trace from Insights rows (`@timestamp`, `@log` = `account:group`, `@logStream`,
/// `@message`); the version comes from Lambda's stream names (`2026/12/06/[5]abc...`).
pub fn from_insights_rows(
    groups: &[(String, String)],
    request_id: &str,
    rows: &[Vec<(String, String)>],
) -> Trace {
    let mut lines = Vec::new();
    for row in rows {
        let get = |name: &str| row.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_str());
        let group = get("@log").map(|log| log.split_once(':').map_or(log, |(_, g)| g));
        let source = groups
            .iter()
            .find(|(_, g)| Some(g.as_str()) == group)
            .map_or_else(|| group.unwrap_or("?").to_owned(), |(name, _)| name.clone());
        let message = get("@message").unwrap_or_default().trim_end();
        let line = serde_json::from_str(message).unwrap_or_else(|_| Value::String(message.into()));
        let version = get("@logStream").and_then(|stream| {
            let start = stream.find('[')? + 1;
            let end = stream[start..].find(']')? + start;
            Some(stream[start..end].to_owned())
        });
        lines.push(TraceLine {
            source,
            timestamp: get("@timestamp").map_or(0, insights_timestamp_ms),
            line,
            version,
        });
    }
    lines.sort_by_key(|l| (l.timestamp, l.source != ACCESS_LOG));
    Trace {
        request_id: request_id.to_owned(),
        lines,
    }
}

/// Insights' `@timestamp` (`2026-12-06 21:04:05.123`, UTC) in epoch ms.
fn insights_timestamp_ms(text: &str) -> i64 {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

impl Trace {
    /// The first thing that went wrong: the first `ERROR` line's error, else the first
    /// DynamoDB call that failed, else the access log's error.
    pub fn cause(&self) -> Option<String> {
        let field =
            |line: &Value, name: &str| line.get(name).and_then(Value::as_str).map(str::to_owned);
        let error = self.lines.iter().find_map(|l| {
            (field(&l.line, "level").as_deref() == Some("ERROR"))
                .then(|| field(&l.line, "error").or_else(|| field(&l.line, "message")))
                .flatten()
                .map(|e| format!("{}: {e}", l.source))
        });
        let call = || {
            self.lines.iter().find_map(|l| {
                let outcome = field(&l.line, "outcome")?;
                (field(&l.line, "message").as_deref() == Some("dynamodb call") && outcome != "ok")
                    .then(|| {
                        format!(
                            "{}: DynamoDB {} on {}: {outcome}",
                            l.source,
                            field(&l.line, "operation").unwrap_or_default(),
                            field(&l.line, "table").unwrap_or_default()
                        )
                    })
            })
        };
        let gateway = || {
            self.lines.iter().find_map(|l| {
                field(&l.line, "integrationError")
                    .or_else(|| {
                        field(&l.line, "errorMessage").filter(|m| !m.is_empty() && m != "-")
                    })
                    .map(|e| format!("{}: {e}", l.source))
            })
        };
        let failed_call = call();
        match (error, failed_call) {
            // The failed call is usually the error's root: both say more than either.
            (Some(error), Some(call)) => Some(format!("{call}\n  {error}")),
            (error, call) => error.or(call).or_else(gateway),
        }
    }

    /// The X-Ray trace of the request: the access log's `xrayTraceId` (AWS, when the stage
    /// traces) or the Lambda runtime's on the function lines (`Root=1-...;Parent=...`: the
    /// `Root` part is the trace id).
    pub fn xray_trace_id(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| {
            let id = l
                .line
                .get("xrayTraceId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && *id != "-")?;
            Some(
                id.split(';')
                    .find_map(|part| part.strip_prefix("Root="))
                    .unwrap_or(id),
            )
        })
    }

    /// The trace as text: a line per log line, the access log's as `METHOD path -> status in
    /// N ms (function version V)`, the functions' as `LEVEL message key=value...`.
    pub fn render(&self) -> String {
        let width = self.lines.iter().map(|l| l.source.len()).max().unwrap_or(0);
        let mut out = String::new();
        for l in &self.lines {
            let text = if l.source == ACCESS_LOG {
                render_access(&l.line)
            } else {
                render_function(&l.line)
            };
            let version = l
                .version
                .as_deref()
                .filter(|_| l.source != ACCESS_LOG)
                .map(|v| format!(":{v}"))
                .unwrap_or_default();
            let name = format!("{}{version}", l.source);
            out.push_str(&format!(
                "{} {name:<width$} {text}\n",
                format_ts(l.timestamp),
                width = width + 3
            ));
        }
        out
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn render_access(line: &Value) -> String {
    let Value::Object(o) = line else {
        return text(Some(line));
    };
    let mut out = format!(
        "{} {} -> {} in {} ms",
        text(o.get("httpMethod")),
        text(o.get("path").or_else(|| o.get("resourcePath"))),
        text(o.get("status")),
        text(o.get("latency").or_else(|| o.get("responseLatency"))),
    );
    if let Some(function) = o.get("function").and_then(Value::as_str) {
        out.push_str(&format!(
            " (served by {function} version {}{})",
            text(o.get("functionVersion")),
            if o.get("coldStart") == Some(&Value::Bool(true)) {
                ", cold start"
            } else {
                ""
            }
        ));
    }
    for (key, label) in [
        ("integrationError", "integration error"),
        ("errorMessage", "gateway error"),
    ] {
        let value = text(o.get(key));
        if !value.is_empty() && value != "-" {
            out.push_str(&format!("; {label}: {value}"));
        }
    }
    out
}

/// Fields shown once per trace (or in the prefix), not on every line.
const QUIET: &[&str] = &[
    "timestamp",
    "level",
    "target",
    "message",
    "request_id",
    "method",
    "route",
];

fn render_function(line: &Value) -> String {
    let Value::Object(o) = line else {
        return text(Some(line));
    };
    let mut out = format!("{:<5} {}", text(o.get("level")), text(o.get("message")));
    let rest: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| !QUIET.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, value) in rest {
        let value = match value {
            Value::Number(n) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or_default()),
            other => text(Some(&other)),
        };
        out.push_str(&format!(" {key}={value}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_before_they_reach_a_query() {
        assert!(check_request_id("c6af9ac6-7b61-11e6-9a41-93e8deadbeef").is_ok());
        for bad in ["", "a\" or 1=1", "x | stats count(*)", "a b"] {
            assert!(check_request_id(bad).is_err(), "{bad}");
        }
        let query = insights_query("abc-1");
        assert_eq!(
            query,
            "fields @timestamp, @log, @logStream, @message\n\
             | filter request_id = \"abc-1\" or requestId = \"abc-1\"\n\
             | sort @timestamp asc\n\
             | limit 10000"
        );
    }

    #[test]
    fn insights_rows_become_a_trace_with_versions_and_a_cause() {
        let groups = vec![
            ("users".to_owned(), "/aws/lambda/p-users".to_owned()),
            ("api".to_owned(), "/aws/apigateway/p-api".to_owned()),
        ];
        let row = |ts: &str, group: &str, stream: &str, message: &str| {
            vec![
                ("@timestamp".to_owned(), ts.to_owned()),
                ("@log".to_owned(), format!("123456789012:{group}")),
                ("@logStream".to_owned(), stream.to_owned()),
                ("@message".to_owned(), message.to_owned()),
            ]
        };
        let rows = vec![
            row(
                "2026-12-06 21:00:00.200",
                "/aws/lambda/p-users",
                "2026/12/06/[7]abc",
                r#"{"level":"ERROR","message":"request failed","request_id":"r","code":"internal_error","error":"reading user: dispatch failure"}"#,
            ),
            row(
                "2026-12-06 21:00:00.100",
                "/aws/lambda/p-users",
                "2026/12/06/[7]abc",
                r#"{"level":"WARN","message":"dynamodb call","request_id":"r","operation":"GetItem","table":"p-users","duration_ms":3.25,"outcome":"connection error"}"#,
            ),
            row(
                "2026-12-06 21:00:00.300",
                "/aws/apigateway/p-api",
                "abc",
                r#"{"requestId":"r","httpMethod":"GET","resourcePath":"/users/{id}","status":"500","responseLatency":"40","xrayTraceId":"1-5f-abc"}"#,
            ),
        ];
        let trace = from_insights_rows(&groups, "r", &rows);
        assert_eq!(trace.lines.len(), 3);
        assert_eq!(trace.lines[0].source, "users");
        assert_eq!(trace.lines[0].version.as_deref(), Some("7"));
        assert_eq!(trace.lines[2].source, "api");
        assert_eq!(trace.xray_trace_id(), Some("1-5f-abc"));
        let cause = trace.cause().unwrap();
        assert!(
            cause.contains("DynamoDB GetItem on p-users: connection error"),
            "{cause}"
        );
        assert!(cause.contains("dispatch failure"), "{cause}");
        let text = trace.render();
        assert!(text.contains("users:7"), "{text}");
        assert!(text.contains("GET /users/{id} -> 500 in 40 ms"), "{text}");
        assert!(text.contains("operation=GetItem"), "{text}");
    }
}
