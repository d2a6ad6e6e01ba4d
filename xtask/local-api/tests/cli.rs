//! The `local-api` binary as xtask runs it: detached, state file once listening, one JSON
//! access-log line per request on stdout, clean stop on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deploy_files::Outputs;

#[test]
fn binary_writes_state_logs_requests_and_stops_on_sigterm() {
    let dir = support::scratch("cli");
    let dist = dir.join("dist");
    let echo = support::example("echo_lambda");
    for function in catalog::NAMES.iter() {
        support::zip_bootstrap(&dist, function, &echo);
    }
    let outputs = dir.join("outputs.json");
    Outputs::fixture("cli-", "v1", "cli-key")
        .write(&outputs)
        .unwrap();
    let state = dir.join("local-api.json");

    let mut child = Command::new(env!("CARGO_BIN_EXE_local-api"))
        .arg("--outputs")
        .arg(&outputs)
        .arg("--dist")
        .arg(&dist)
        .args([
            "--endpoint",
            &support::closed_endpoint(),
            "--port",
            "0",
            "--health-api-key",
            "open",
            "--cors-allow-origins",
            "",
        ])
        .arg("--state")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting local-api");

    let started = Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no state file after 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(record["pid"], child.id());
    let url = record["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("http://127.0.0.1:{}/v1", record["port"]));
    // No emulator: every function runs its build/dist zip, and routing.json says so.
    let routing_file = std::path::PathBuf::from(record["routing"].as_str().unwrap());
    let routing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&routing_file).unwrap()).unwrap();
    assert_eq!(routing["pid"], child.id());
    assert_eq!(routing["generation"], 1);
    for function in catalog::NAMES.iter() {
        let entry = &routing["functions"][function];
        assert!(entry["version"].is_null(), "{routing}");
        assert!(entry["fallback"].is_string(), "{routing}");
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("an access log line").unwrap();
    let entry: serde_json::Value =
        serde_json::from_str(&line).expect("the access log line is JSON");
    assert_eq!(entry["httpMethod"], "GET");
    assert_eq!(entry["resourcePath"], "/health");
    assert_eq!(entry["status"], 200);
    for field in [
        "requestId",
        "ip",
        "requestTime",
        "requestTimeEpoch",
        "responseLength",
        "latency",
    ] {
        assert!(!entry[field].is_null(), "access log lacks {field}: {line}");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "local-api exits cleanly on SIGTERM: {exit:?}"
    );
    assert!(!state.exists(), "the state file is removed on stop");
    assert!(!routing_file.exists(), "routing.json is removed on stop");
    let _ = std::fs::remove_dir_all(dir);
}
