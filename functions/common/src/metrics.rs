//! Per-route metrics as CloudWatch Embedded Metric Format lines: one per request, written to
//! stdout beside the logs, which CloudWatch Logs turns into metrics with no API call (and no
//! cost per `PutMetricData`). `cargo xtask stats` reads the same lines locally.
//!
//! The shape follows the EMF specification: a root `_aws` object with `Timestamp` (epoch ms)
//! and `CloudWatchMetrics` directives (namespace, dimension sets, metric definitions), and every
//! dimension and metric a directive names as a member of the root. The line is also a log line
//! of the schema in `docs/logging.md` (`timestamp`, `level`, `target`, `message`,
//! `request_id`), so it reads like any other line.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime as LogTime};

/// The CloudWatch namespace of the functions' own metrics.
pub const NAMESPACE: &str = "ProdService";

/// The metrics each line carries, with their units (EMF `MetricDefinition`s).
pub const METRICS: &[(&str, &str)] = &[
    ("Requests", "Count"),
    ("Errors", "Count"),
    ("ClientErrors", "Count"),
    ("Duration", "Milliseconds"),
    ("DynamoDBTime", "Milliseconds"),
    ("ColdStart", "Count"),
];

/// The dimensions: the function's AWS name (it carries the environment's prefix, so
/// environments sharing an account do not mix) and the route (`POST /users`).
pub const DIMENSIONS: &[&str] = &["Function", "Route"];

/// What one request measured.
#[derive(Debug, Clone)]
pub struct RequestMetrics<'a> {
    pub request_id: &'a str,
    /// `METHOD /template`, or `METHOD unmatched` when no route matched.
    pub route: String,
    pub status: u16,
    pub duration_ms: f64,
    pub dynamodb_ms: f64,
    pub cold_start: bool,
}

/// True for the first request of the process, false after.
pub fn take_cold_start() -> bool {
    static WARM: AtomicBool = AtomicBool::new(false);
    !WARM.swap(true, Ordering::Relaxed)
}

/// The function's AWS name as Lambda (and the local API server) sets it.
pub fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".to_owned())
}

/// The EMF line of one request.
pub fn emf_line(function: &str, metrics: &RequestMetrics<'_>, now: SystemTime) -> Value {
    let class = metrics.status / 100;
    let members = json!({
        "Function": function,
        "Route": metrics.route,
        "StatusClass": format!("{class}xx"),
        "status": metrics.status,
        "Requests": 1,
        "Errors": u8::from(class == 5),
        "ClientErrors": u8::from(class == 4),
        "Duration": metrics.duration_ms,
        "DynamoDBTime": metrics.dynamodb_ms,
        "ColdStart": u8::from(metrics.cold_start),
    });
    line(
        now,
        "metrics",
        metrics.request_id,
        DIMENSIONS,
        METRICS,
        members,
    )
}

/// The metrics of a table's size line (`table_line`), with their units.
pub const TABLE_METRICS: &[(&str, &str)] = &[("ItemCount", "Count"), ("TableSizeBytes", "Bytes")];

/// The dimension of a table's size line: the table's name (it carries the environment's
/// prefix, as the function's does).
pub const TABLE_DIMENSIONS: &[&str] = &["Table"];

/// The EMF line of one table's size as DynamoDB reports it (refreshed about every six hours):
/// the trend of the service's data and the figure an alarm on its growth watches.
pub fn table_line(
    request_id: &str,
    table: &str,
    item_count: i64,
    size_bytes: i64,
    now: SystemTime,
) -> Value {
    let members = json!({
        "Table": table,
        "ItemCount": item_count,
        "TableSizeBytes": size_bytes,
    });
    line(
        now,
        "table size",
        request_id,
        TABLE_DIMENSIONS,
        TABLE_METRICS,
        members,
    )
}

/// Writes a table's size line on stdout in one write, as [`write`] does a request's.
pub fn write_table(request_id: &str, table: &str, item_count: i64, size_bytes: i64) {
    emit(&table_line(
        request_id,
        table,
        item_count,
        size_bytes,
        SystemTime::now(),
    ));
}

/// An EMF line: the directive for `metrics` under `dimensions` in [`NAMESPACE`], the fields
/// of a log line (`docs/logging.md`), then `members` (the dimensions' and metrics' values).
fn line(
    now: SystemTime,
    message: &str,
    request_id: &str,
    dimensions: &[&str],
    metrics: &[(&str, &str)],
    members: Value,
) -> Value {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut timestamp = String::new();
    let _ = LogTime.format_time(&mut Writer::new(&mut timestamp));
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        },
        "timestamp": timestamp,
        "level": "INFO",
        "target": "service_common::metrics",
        "message": message,
        "request_id": request_id,
    });
    if let (Some(line), Value::Object(members)) = (line.as_object_mut(), members) {
        line.extend(members);
    }
    line
}

/// Writes the request's EMF line on stdout in one write (whatever the log level: metrics are
/// not logs to be turned down).
pub fn write(metrics: &RequestMetrics<'_>) {
    emit(&emf_line(&function_name(), metrics, SystemTime::now()));
}

/// One line on stdout, in one write so concurrent lines never interleave.
fn emit(line: &Value) {
    let mut text = line.to_string();
    text.push('\n');
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Checks `line` against the EMF specification's rules that CloudWatch enforces: `_aws` with a
/// numeric `Timestamp` and a non-empty `CloudWatchMetrics` array of directives, each with a
/// `Namespace`, `Dimensions` (arrays of at most 30 names, each a string member of the root) and
/// `Metrics` (at most 100, each `Name` a numeric member of the root, `Unit` a CloudWatch unit).
/// The error names the first rule broken.
pub fn check_emf(line: &Value) -> Result<(), String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = line.as_object().ok_or("the line is not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("`_aws.Timestamp` is not a number of milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("`_aws.CloudWatchMetrics` is not a non-empty array")?;
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str);
        if !namespace.is_some_and(|n| !n.is_empty() && n.len() <= 1024) {
            return Err("a directive has no `Namespace`".into());
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive has no `Dimensions` array")?;
        for set in sets {
            let names = set.as_array().ok_or("a dimension set is not an array")?;
            if names.len() > 30 {
                return Err("a dimension set has more than 30 dimensions".into());
            }
            for name in names {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                if !root.get(name).is_some_and(Value::is_string) {
                    return Err(format!(
                        "dimension `{name}` is not a string member of the root"
                    ));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("a directive has no `Metrics` array")?;
        if metrics.len() > 100 {
            return Err("a directive has more than 100 metrics".into());
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty() && n.len() <= 1024)
                .ok_or("a metric has no `Name`")?;
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                return Err(format!(
                    "metric `{name}` has unit {unit}, not a CloudWatch unit"
                ));
            }
            if !root.get(name).is_some_and(Value::is_number) {
                return Err(format!(
                    "metric `{name}` is not a number member of the root"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::LogLine;

    fn sample(status: u16) -> Value {
        emf_line(
            "p-users",
            &RequestMetrics {
                request_id: "r-1",
                route: "POST /users".into(),
                status,
                duration_ms: 12.5,
                dynamodb_ms: 3.25,
                cold_start: true,
            },
            UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123),
        )
    }

    #[test]
    fn request_lines_follow_the_emf_specification_and_the_log_schema() {
        let line = sample(503);
        check_emf(&line).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_765_000_000_123_u64);
        // infra's alarms and dashboard name the same namespace and dimensions
        // (`infra::constructs::observability::METRICS_NAMESPACE`, infra's assertions test).
        assert_eq!(NAMESPACE, "ProdService");
        assert_eq!(DIMENSIONS, ["Function", "Route"]);
        assert_eq!(line["Route"], "POST /users");
        assert_eq!(line["Function"], "p-users");
        assert_eq!(line["Errors"], 1);
        assert_eq!(line["ClientErrors"], 0);
        assert_eq!(line["ColdStart"], 1);
        assert_eq!(line["StatusClass"], "5xx");
        let parsed = LogLine::parse(&line.to_string()).unwrap();
        assert_eq!(parsed.request_id.as_deref(), Some("r-1"));
        assert_eq!(sample(404)["ClientErrors"], 1);
        assert_eq!(sample(200)["Errors"], 0);
    }

    #[test]
    fn table_lines_follow_the_emf_specification_and_the_log_schema() {
        let now = UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123);
        let line = table_line("r-2", "p-service-sessions", 42, 4096, now);
        check_emf(&line).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Table"]])
        );
        assert_eq!(line["Table"], "p-service-sessions");
        assert_eq!(line["ItemCount"], 42);
        assert_eq!(line["TableSizeBytes"], 4096);
        assert!(
            line.get("Route").is_none(),
            "`cargo xtask stats` counts only request lines"
        );
        let parsed = LogLine::parse(&line.to_string()).unwrap();
        assert_eq!(parsed.request_id.as_deref(), Some("r-2"));
    }

    #[test]
    fn the_emf_check_refuses_what_cloudwatch_would_not_extract() {
        let broken = |edit: fn(&mut Value)| {
            let mut line = sample(200);
            edit(&mut line);
            check_emf(&line).unwrap_err()
        };
        assert!(broken(|l| l["_aws"]["Timestamp"] = "now".into()).contains("Timestamp"));
        assert!(broken(|l| l["_aws"]["CloudWatchMetrics"] = json!([])).contains("non-empty"));
        assert!(broken(|l| l["Route"] = 7.into()).contains("Route"));
        assert!(broken(|l| l["Duration"] = "fast".into()).contains("Duration"));
        assert!(
            broken(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "ms".into())
                .contains("unit")
        );
    }
}
