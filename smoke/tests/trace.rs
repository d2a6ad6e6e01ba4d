//! A request made to fail on purpose and found again with `cargo xtask trace`: the real
//! function binaries behind the local API server, moto stopped after a registration, a log-in
//! that gets 500, and `trace <its x-request-id>` naming the DynamoDB call that failed. The
//! same run checks every line the binaries wrote against the log schema, their metrics lines
//! against the Embedded Metric Format specification, and what `stats` makes of them.

mod support;

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use smoke::api::Api;

/// The xtask binary of this workspace, built now with the function binaries so none is older
/// than the code (`support::function_binaries` builds them only when missing, and this test
/// reads the log lines they write). By `--bin`, without `-p`: cargo then resolves features over
/// the whole workspace, as the `cargo xtask` alias does, so this reuses what `cargo xtask test`
/// already built instead of compiling the dependencies again in another feature set.
fn build_xtask_and_functions() -> PathBuf {
    let binaries = catalog::NAMES.iter().flat_map(|n| ["--bin", n]);
    let status = emulator::cargo()
        .args(["build", "--bin", "xtask"])
        .args(binaries)
        .current_dir(support::workspace_root())
        .status()
        .expect("running cargo build for xtask and the functions");
    assert!(status.success(), "building xtask and the functions failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::workspace_root().join("target"))
        .join("debug/xtask")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_failed_by_a_stopped_emulator_is_traced_to_its_dynamodb_call() {
    // A moto of its own, to stop halfway (never the shared one of `TEST_AWS_ENDPOINT`).
    let moto = emulator::Emulator::spawn_detached().expect("starting moto");
    let prefix = format!("trc{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    support::create_tables(&support::dynamo(&moto.endpoint), &prefix).await;
    support::create_peppers(&moto.endpoint, &prefix).await;

    // Laid out as xtask's build folder for `local`, so `XTASK_BUILD_DIR` points xtask at it.
    let root = support::scratch("trace");
    let dir = root.join("local");
    let dist = root.join("dist");
    let xtask = tokio::task::spawn_blocking(build_xtask_and_functions)
        .await
        .unwrap();
    let binaries = tokio::task::spawn_blocking(support::function_binaries)
        .await
        .unwrap();
    for (name, path) in binaries {
        support::zip_bootstrap(&dist, name, &std::fs::read(&path).unwrap());
    }
    std::fs::create_dir_all(&dir).unwrap();
    let outputs = dir.join("outputs.json");
    support::write_outputs(&outputs, &prefix, &moto.endpoint).await;
    let server = support::serve(&outputs, dist, &moto.endpoint, dir.join("local-api.json")).await;
    let api = Api::new(&smoke::Target::from_outputs(&outputs, None).unwrap());

    let email = "traced@example.com";
    let password = "correct horse battery";
    let register = api
        .call(
            Method::POST,
            "/users",
            None,
            Some(json!({"email": email, "name": "Traced", "password": password})),
        )
        .await;
    assert_eq!(register.status(), Some(201), "{:?}", register.body());

    // The emulator goes away: the next log-in cannot reach DynamoDB.
    emulator::stop(moto.pid).expect("stopping moto");
    let login = api
        .call(
            Method::POST,
            "/sessions",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await;
    assert_eq!(login.status(), Some(500), "{:?}", login.body());
    let request_id = login
        .header("x-request-id")
        .expect("the 500 has an x-request-id")
        .to_owned();
    assert_eq!(login.body()["error"]["request_id"], request_id.as_str());

    // One command from the id to the cause.
    let run = |json: bool| {
        let mut command = Command::new(&xtask);
        command
            .arg("trace")
            .arg(&request_id)
            .env("XTASK_BUILD_DIR", &root)
            .env_remove("XTASK_ENV")
            .current_dir(support::workspace_root());
        if json {
            command.arg("--json");
        }
        let out = command.output().expect("running cargo xtask trace");
        assert!(
            out.status.success(),
            "trace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(false);
    eprintln!("{text}");
    let cause_line = text
        .lines()
        .find(|l| l.starts_with("cause: "))
        .unwrap_or_else(|| panic!("no cause in:\n{text}"));
    assert!(
        cause_line.contains("sessions: DynamoDB ")
            && cause_line.contains(&prefix)
            && cause_line.contains("connection error"),
        "the cause names the failed DynamoDB call: {text}"
    );
    assert!(text.contains("ERROR request failed"), "{text}");

    let traced: Value = serde_json::from_str(&run(true)).unwrap();
    let lines = traced["lines"].as_array().unwrap();
    assert!(!lines.is_empty());
    for line in lines {
        assert_eq!(line["source"], "sessions", "{line}");
        assert_eq!(line["line"]["request_id"], request_id.as_str(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["line"]["message"] == "request completed" && l["line"]["status"] == 500),
        "{traced}"
    );

    // Every line the real binaries wrote parses as the log schema, and each request's metrics
    // line follows the Embedded Metric Format specification.
    let mut metric_lines = 0;
    for function in catalog::NAMES.iter() {
        let Ok(log) =
            std::fs::read_to_string(dir.join("functions").join(function).join("output.log"))
        else {
            continue;
        };
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            service_common::logging::LogLine::parse(line)
                .unwrap_or_else(|e| panic!("{function} wrote a line outside the schema: {e}"));
            let value: Value = serde_json::from_str(line).unwrap();
            if value.get("_aws").is_some() {
                service_common::metrics::check_emf(&value).unwrap_or_else(|e| {
                    panic!("{function}'s metrics line breaks EMF: {e}: {line}")
                });
                metric_lines += 1;
            }
        }
    }
    assert_eq!(metric_lines, 2, "one metrics line per request");

    // And `stats` counts them per route.
    let out = Command::new(&xtask)
        .args(["stats", "--json"])
        .env("XTASK_BUILD_DIR", &root)
        .env_remove("XTASK_ENV")
        .current_dir(support::workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["users POST /users"]["requests"], 1, "{stats}");
    assert_eq!(stats["users POST /users"]["errors"], 0, "{stats}");
    assert_eq!(stats["sessions POST /sessions"]["errors"], 1, "{stats}");
    assert!(
        stats["sessions POST /sessions"]["dynamodb_ms"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{stats}"
    );

    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}
