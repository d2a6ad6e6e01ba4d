//! `cargo xtask stats`: per-route requests, errors and latency percentiles from the functions'
//! Embedded Metric Format lines (`service_common::metrics`), the same lines CloudWatch turns into
//! the dashboard's metrics on AWS, read here from the local log files.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::base::env::Env;
use crate::services::logs::{self, Source};

/// One route's figures.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct RouteStats {
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    /// 4xx answers.
    pub client_errors: u64,
    pub cold_starts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Mean time in DynamoDB per request.
    pub dynamodb_ms: f64,
}

/// Figures per `FUNCTION ROUTE` from the EMF lines of `sources` newer than `start_ms`.
pub fn collect(sources: &[Source], start_ms: i64) -> Result<BTreeMap<String, RouteStats>> {
    let mut samples: BTreeMap<String, (RouteStats, Vec<f64>, f64)> = BTreeMap::new();
    for source in sources {
        for (ts, text) in logs::read_file(&source.path)? {
            if ts < start_ms || !text.contains("\"_aws\"") {
                continue;
            }
            let Ok(line) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some(route) = line.get("Route").and_then(Value::as_str) else {
                continue;
            };
            let number = |name: &str| line.get(name).and_then(Value::as_f64).unwrap_or(0.0);
            let entry = samples
                .entry(format!("{} {route}", source.name))
                .or_default();
            entry.0.requests += 1;
            entry.0.errors += number("Errors") as u64;
            entry.0.client_errors += number("ClientErrors") as u64;
            entry.0.cold_starts += number("ColdStart") as u64;
            entry.1.push(number("Duration"));
            entry.2 += number("DynamoDBTime");
        }
    }
    Ok(samples
        .into_iter()
        .map(|(route, (mut stats, mut durations, dynamo))| {
            durations.sort_by(f64::total_cmp);
            stats.p50_ms = percentile(&durations, 50.0);
            stats.p99_ms = percentile(&durations, 99.0);
            stats.dynamodb_ms = dynamo / stats.requests.max(1) as f64;
            (route, stats)
        })
        .collect())
}

/// The nearest-rank percentile of sorted `values` (CloudWatch's `p99` is an estimate of the
/// same), 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures as a table.
pub fn table(stats: &BTreeMap<String, RouteStats>) -> String {
    let width = stats.keys().map(String::len).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$} {:>8} {:>6} {:>6} {:>5} {:>9} {:>9} {:>11}\n",
        "route", "requests", "5xx", "4xx", "cold", "p50 ms", "p99 ms", "dynamodb ms"
    );
    for (route, s) in stats {
        out.push_str(&format!(
            "{route:<width$} {:>8} {:>6} {:>6} {:>5} {:>9.1} {:>9.1} {:>11.1}\n",
            s.requests, s.errors, s.client_errors, s.cold_starts, s.p50_ms, s.p99_ms, s.dynamodb_ms
        ));
    }
    if stats.is_empty() {
        out.push_str("(no requests in the period)\n");
    }
    out
}

/// Prints the local figures of the last `since`; with `follow`, again every 2 s (redrawn in
/// place on a terminal) until interrupted.
pub fn local(env: &Env, since: Duration, follow: bool) -> Result<()> {
    let sources = logs::all_sources(env);
    let terminal = std::io::stdout().is_terminal();
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let stats = collect(&sources, now - since.as_millis() as i64)?;
        if env.json {
            println!("{}", serde_json::to_string(&stats)?);
        } else {
            if follow && terminal {
                // Clear the screen and go home: a table that refreshes in place.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", table(&stats));
        }
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn emf_lines_are_grouped_per_route() {
        let dir = std::env::temp_dir().join(format!("xtask-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("output.log");
        let line = |route: &str, duration: f64, errors: u8| {
            format!(
                r#"{{"_aws":{{"Timestamp":1}},"timestamp":"2026-12-06T21:00:00Z","Route":"{route}","Duration":{duration},"Errors":{errors},"ClientErrors":0,"ColdStart":0,"DynamoDBTime":2.0}}"#
            )
        };
        let mut lines = vec![
            r#"{"timestamp":"2026-12-06T21:00:00Z","message":"request completed"}"#.to_owned(),
        ];
        for d in 1..=10 {
            lines.push(line("GET /health", f64::from(d), 0));
        }
        lines.push(line("POST /users", 40.0, 1));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let stats = collect(
            &[Source {
                name: "users".into(),
                path: path.clone(),
            }],
            0,
        )
        .unwrap();
        assert_eq!(stats.len(), 2);
        let health = &stats["users GET /health"];
        assert_eq!((health.requests, health.errors), (10, 0));
        assert_eq!((health.p50_ms, health.p99_ms), (5.0, 10.0));
        assert_eq!(health.dynamodb_ms, 2.0);
        assert_eq!(stats["users POST /users"].errors, 1);
        assert!(table(&stats).contains("users POST /users"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
