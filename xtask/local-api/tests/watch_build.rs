//! A watch build (`<watch dir>/<fn>/bootstrap`, what `cargo xtask watch` writes) is served
//! instead of the packaged code as soon as the server is asked to refresh, and the packaged
//! code is back once the file is gone.
//!
//! Real binaries: `health` is packaged as the deployed code; the watch build is this crate's
//! `echo_lambda` example, whose answer (the event, its pid and executable) tells them apart.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use deploy_files::Outputs;
use local_api::{Options, Server};
use serde_json::Value;

const KEY: &str = "test-api-key-0123456789";

/// Polls `routing.json` until `done` holds for `health`'s record.
async fn wait_for_health(routing: &Path, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let record = std::fs::read_to_string(routing)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|r| r["functions"]["health"].clone());
        if let Some(record) = &record
            && done(record)
        {
            return record.clone();
        }
        assert!(
            Instant::now() < deadline,
            "routing.json never showed it: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_health(http: &reqwest::Client, server: &Server) -> (u16, String) {
    let response = http
        .get(format!("{}/health", server.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("a response");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A function's debug binary as the workspace builds it (`cargo build --bin health`, the
/// command the other tests' binaries come from too), built when missing. Not `-p health`:
/// that resolves features for the one package, and rebuilds its dependencies a second way.
fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    if !path.exists() {
        let status = emulator::cargo()
            .args(["build", "--bin", name])
            .current_dir(support::workspace_root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building {name} failed");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_build_replaces_the_packaged_code_until_it_is_removed() {
    let dir = support::scratch("watch-build");
    let dist = dir.join("dist");
    let health = workspace_binary("health");
    for function in catalog::NAMES.iter() {
        support::zip_bootstrap(&dist, function, &health);
    }
    let outputs = dir.join("outputs.json");
    Outputs::fixture("watch-", "test", KEY)
        .write(&outputs)
        .unwrap();
    let watch = dir.join("watch");
    let mut options = Options::new(outputs, dist, support::closed_endpoint());
    options.health_requires_api_key = Some(false);
    options.cors_allow_origins = Some(Vec::new());
    options.work_dir = Some(dir.join("work"));
    options.watch_dir = Some(watch.clone());
    // Only explicit refreshes, so the test proves that a refresh is what applies the build.
    options.alias_poll = None;
    let server = Server::start(options).await.expect("the server starts");
    let http = reqwest::Client::new();

    let (status, body) = get_health(&http, &server).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\""), "the packaged health: {body}");
    let routing = server.routing_file().to_path_buf();
    let record = wait_for_health(&routing, |_| true).await;
    assert!(record.get("override").is_none(), "{record}");

    // What `cargo xtask watch` does: write the file, then ask for a refresh.
    let target = watch.join("health").join("bootstrap");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(support::example("echo_lambda"), &target).unwrap();
    let stamp = local_api::traffic::Stamp::of(&target).unwrap();
    server.request_refresh();
    let record = wait_for_health(&routing, |r| !r["override"].is_null()).await;
    assert_eq!(record["override"]["bytes"], stamp.bytes, "{record}");
    assert_eq!(
        record["override"]["modified_ns"].as_u64().map(u128::from),
        Some(stamp.modified_ns),
        "{record}"
    );
    let (status, body) = get_health(&http, &server).await;
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).expect("the echo function answers");
    assert_eq!(
        echoed["exe"].as_str().map(Path::new),
        Some(target.as_path()),
        "the watch build serves: {body}"
    );
    assert_eq!(echoed["event"]["path"], "/health", "{body}");

    // Gone: the packaged code serves again.
    std::fs::remove_dir_all(&watch).unwrap();
    server.request_refresh();
    wait_for_health(&routing, |r| r.get("override").is_none()).await;
    let (status, body) = get_health(&http, &server).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"status\"") && !body.contains("\"exe\""),
        "the packaged health again: {body}"
    );

    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
