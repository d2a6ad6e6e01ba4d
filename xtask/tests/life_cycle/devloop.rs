//! The development loop's commands on `local` without a deployment: `invoke` runs the real
//! `health` binary (packaged like `deploy` does) through the local runtime, and `logs` reads
//! the function output it left, filtered and followed; `invoke --schedule` runs the real
//! `table_report` binary on its schedule's event.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// `function`'s debug binary as the workspace builds it, built when missing.
fn function_binary(function: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .join(function);
    if !path.exists() {
        let status = emulator::cargo()
            .args(["build", "--bin", function])
            .current_dir(workspace_root())
            .status()
            .unwrap();
        assert!(status.success(), "building {function} failed");
    }
    path
}

/// A build folder with `dist/<function>.zip` (the real binary as `bootstrap`) and the outputs
/// of a `local` deployment; no emulator runs, so the configuration comes from the outputs.
fn packaged(function: &str, name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    let file = std::fs::File::create(dir.join(format!("dist/{function}.zip"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(&std::fs::read(function_binary(function)).unwrap())
        .unwrap();
    zip.finish().unwrap();
    deploy_files::Outputs::fixture("devloop-", "v1", "k")
        .write(&dir.join("local").join(deploy_files::OUTPUTS_FILE))
        .unwrap();
    dir
}

#[test]
fn invoke_sends_bundled_and_file_events_through_the_local_runtime() {
    let dir = packaged("health", "invoke");

    let out = stdout_json(&xtask(
        &dir,
        &["invoke", "health", "--example", "rest-get-health", "--json"],
    ));
    assert_eq!(out["response"]["statusCode"], 200, "{out}");
    let body: serde_json::Value =
        serde_json::from_str(out["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "ok", "{out}");
    let logs = out["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("c6af9ac6-7b61-11e6-9a41-93e8deadbeef")),
        "the invocation's log lines carry the event's request id: {out}"
    );

    // An HTTP API (payload 2.0) event from a file, asking for the deep check: no emulator
    // runs, so the tables are unavailable and the function says so in its log.
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("xtask/events/http-get-health.json"))
            .unwrap(),
    )
    .unwrap();
    event["rawQueryString"] = "deep=true".into();
    event["queryStringParameters"] = serde_json::json!({"deep": "true"});
    let file = dir.join("deep.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let out = stdout_json(&xtask(
        &dir,
        &[
            "invoke",
            "health",
            "--event",
            file.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(out["response"]["statusCode"], 503, "{out}");
    let logs: Vec<&str> = out["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs.iter().any(|l| l.contains("describe table failed")),
        "{logs:?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("c6af9ac6")),
        "only this invocation's lines: {logs:?}"
    );

    let bad = xtask(&dir, &["invoke", "health", "--example", "rest-get-nothing"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("rest-get-health, rest-post-users"),
        "{}",
        stderr(&bad)
    );
    let unknown = xtask(&dir, &["invoke", "healthz", "--example", "rest-get-health"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("health, users, sessions"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn local_logs_filter_and_follow_the_function_output() {
    let dir = packaged("health", "logs");
    for example in ["rest-get-health", "http-get-health"] {
        stdout_json(&xtask(
            &dir,
            &["invoke", "health", "--example", example, "--json"],
        ));
    }
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = xtask(&dir, args);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = lines(&["logs", "health", "--json"]);
    assert_eq!(
        all.len(),
        4,
        "a log line and a metrics (EMF) line per request: {all:?}"
    );
    let rest = lines(&[
        "logs",
        "health",
        "--json",
        "--filter",
        "\"request completed\" c6af9ac6",
    ]);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(rest[0]["message"].as_str().unwrap().contains("c6af9ac6"));
    assert!(rest[0]["timestamp"].as_i64().unwrap() > 0);
    let not_rest = lines(&["logs", "health", "--json", "--filter", "-c6af9ac6"]);
    assert_eq!(not_rest.len(), 2, "{not_rest:?}");
    assert!(lines(&["logs", "health", "--json", "--since", "1ms"]).is_empty());

    // --follow prints a matching line written after it started, and nothing else.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["logs", "health", "--follow", "--filter", "later"])
        .env("XTASK_BUILD_DIR", &dir)
        .env_remove("XTASK_ENV")
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let log = dir.join("local/functions/health/output.log");
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(
        file,
        r#"{{"timestamp":"{now}","level":"INFO","message":"not this"}}"#
    )
    .unwrap();
    writeln!(
        file,
        r#"{{"timestamp":"{now}","level":"INFO","message":"later"}}"#
    )
    .unwrap();
    // Read on a thread, so a follow that never prints fails the test instead of hanging it.
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let _ = follow.kill();
    let _ = follow.wait();
    let line = line.expect("--follow printed the new line within 20 s");
    assert!(
        line.contains("\"message\":\"later\""),
        "the followed line: {line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `logs --all` merges every function's log and the local API server's access log by time,
/// each line named by its source, and `trace` finds one request's lines across them with the
/// access log's line first; both read only the files (no server runs here).
#[test]
fn logs_all_and_trace_read_every_local_log_in_time_order() {
    let dir = scratch("logs-all");
    let local = dir.join("local");
    let now = std::time::SystemTime::now();
    let at = |ms: u64| now - Duration::from_secs(60) + Duration::from_millis(ms);
    let ts = |ms: u64| humantime::format_rfc3339_micros(at(ms)).to_string();
    let epoch = |ms: u64| {
        at(ms)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let write = |path: &Path, lines: &[String]| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    };
    let id = "5b3f0c52-1d2e-4c8a-9d7f-0a1b2c3d4e5f";
    write(
        &local.join("functions/users/output.log"),
        &[
            format!(
                r#"{{"timestamp":"{}","level":"INFO","target":"t","message":"other request","request_id":"x"}}"#,
                ts(10)
            ),
            format!(
                r#"{{"timestamp":"{}","level":"WARN","target":"service_common::calls","message":"dynamodb call","request_id":"{id}","operation":"GetItem","table":"p-users","duration_ms":2.5,"outcome":"connection error"}}"#,
                ts(30)
            ),
            format!(
                r#"{{"timestamp":"{}","level":"ERROR","target":"t","message":"request failed","request_id":"{id}","code":"internal_error","error":"reading the user: dispatch failure"}}"#,
                ts(31)
            ),
        ],
    );
    write(
        &local.join("functions/sessions/output.log"),
        &[format!(
            r#"{{"timestamp":"{}","level":"INFO","target":"t","message":"request completed","request_id":"y","status":201}}"#,
            ts(20)
        )],
    );
    write(
        &local.join("logs/local-api.log"),
        &[
            "local-api: serving on 127.0.0.1:1234".to_owned(),
            format!(
                r#"{{"requestId":"{id}","httpMethod":"GET","path":"/v1/users/u1","status":500,"latency":12,"function":"users","functionVersion":"3","coldStart":false,"requestTimeEpoch":{}}}"#,
                epoch(25)
            ),
        ],
    );

    let out = xtask(&dir, &["logs", "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sources: Vec<&str> = lines
        .iter()
        .map(|l| l["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["users", "sessions", "api", "users", "users"],
        "merged by time; the server's untimed start-up text is outside --since: {lines:#?}"
    );
    let text = xtask(&dir, &["logs", "--all", "--filter", "ERROR"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "{text}");
    // Padded to the longest source: a function's name or `api`.
    let width = catalog::NAMES.iter().map(|n| n.len()).max().unwrap().max(3);
    assert!(
        text.starts_with(&format!("{:<width$} | ", "users")),
        "prefixed, padded, no colour off a terminal: {text}"
    );

    let out = xtask(&dir, &["trace", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].contains("GET /v1/users/u1 -> 500 in 12 ms (served by users version 3)"),
        "{text}"
    );
    assert!(
        rows[1].contains("users:3"),
        "the version that served it: {text}"
    );
    assert!(rows[1].contains("WARN  dynamodb call"), "{text}");
    assert!(
        text.contains("cause: users: DynamoDB GetItem on p-users: connection error"),
        "{text}"
    );
    let missing = xtask(&dir, &["trace", "0000-not-there"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no log line has request id"),
        "{}",
        stderr(&missing)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `invoke --schedule` sends the event of the function's schedule: `table_report` reads it as
/// the `EventBridgeEvent` it takes and runs (its table calls fail, no emulator runs, which it
/// reports as its error); a function without a schedule is refused.
#[test]
fn invoke_runs_a_schedule_on_demand() {
    let dir = packaged("table_report", "invoke-schedule");
    let run = xtask(&dir, &["invoke", "table_report", "--schedule", "--json"]);
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let error = out["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("TableReportError"),
        "it ran the report: {out}"
    );
    let logs = out["logs"].to_string();
    assert!(logs.contains("table not reported"), "{out}");
    assert!(!run.status.success());
    let refused = xtask(&dir, &["invoke", "health", "--schedule"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused)
            .contains("`health` has no schedule; the functions with one are: table_report"),
        "{}",
        stderr(&refused)
    );
}

/// `invoke --example sqs` sends the batch Lambda's poller would: one record of the queue the
/// function consumes, holding the queue's declared example body. `sweeper` reads it and, with
/// no emulator to sweep in, reports that record as failed (a per-record failure in its
/// response, as on AWS, not an invocation error); a function consuming no queue is refused.
#[test]
fn invoke_sends_a_queue_batch() {
    let dir = packaged("sweeper", "invoke-sqs");
    let run = xtask(&dir, &["invoke", "sweeper", "--example", "sqs", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let failures = out["response"]["batchItemFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{out}");
    let id = failures[0]["itemIdentifier"].as_str().unwrap();
    assert!(
        out["logs"].to_string().contains(id),
        "the failed record's id is in the log line of its failure: {out}"
    );
    let refused = xtask(&dir, &["invoke", "health", "--example", "sqs"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("`health` consumes no queue; the functions that do are: sweeper"),
        "{}",
        stderr(&refused)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
