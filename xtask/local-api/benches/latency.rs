//! Latency of the local API: warm p50/p99 per route through the server vs a direct DynamoDB
//! GetItem against the same emulator, and the first request after start (cold process) vs warm.
//!
//! `cargo bench -p local-api` prints the figures; it asserts nothing (numbers depend on the
//! machine). It runs the service's own function binaries: `target/release/<fn>` when
//! `cargo xtask build` made them, else the debug ones (`cargo build -p health -p users -p sessions`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use deploy_files::Outputs;
use serde_json::{Value, json};

const KEY: &str = "bench-api-key-0123456789";
const WARM: usize = 200;
const HASHING: usize = 20;

fn binaries() -> (String, Vec<(&'static str, PathBuf)>) {
    let target = support::workspace_root().join("target");
    for profile in ["release", "debug"] {
        let found: Vec<_> = catalog::NAMES
            .iter()
            .map(|n| (*n, target.join(profile).join(n)))
            .collect();
        if found.iter().all(|(_, p)| p.exists()) {
            return (profile.to_string(), found);
        }
    }
    panic!(
        "no function binaries: run `cargo xtask build` (or `cargo build` of the function crates) first"
    );
}

fn pct(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
}

fn line(name: &str, samples: &mut [Duration], baseline_p50: Option<f64>) {
    let p50 = pct(samples, 50.0);
    let p99 = pct(samples, 99.0);
    let ratio = baseline_p50
        .map(|b| format!("{:>6.2}x", p50 / b))
        .unwrap_or_default();
    println!(
        "{name:<34} n={:<4} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  {ratio}",
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let emulator = emulator::Emulator::for_tests().expect("starting moto");
    let prefix = format!("bench{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .endpoint_url(emulator.endpoint())
            .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
            .build(),
    );
    service_common::testing::create_tables(
        &dynamo,
        &format!("{prefix}users"),
        &format!("{prefix}sessions"),
    )
    .await;

    let dir = support::scratch("bench");
    let dist = dir.join("dist");
    let (profile, bins) = binaries();
    for (name, path) in &bins {
        support::zip_bootstrap(&dist, name, path);
    }
    let outputs = dir.join("outputs.json");
    Outputs::fixture(&prefix, "v1", KEY)
        .write(&outputs)
        .unwrap();
    let mut options = local_api::Options::new(outputs, dist, emulator.endpoint().to_string());
    options.health_requires_api_key = Some(false);
    options.cors_allow_origins = Some(Vec::new());
    let started = Instant::now();
    let server = local_api::Server::start(options)
        .await
        .expect("starting the server");
    let startup = started.elapsed();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    println!(
        "function binaries: {profile}; server start-up (extract + config): {:.1} ms",
        startup.as_secs_f64() * 1000.0
    );

    // Cold vs warm.
    let t = Instant::now();
    let r = http.get(url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cold = t.elapsed();
    let mut warm_health = Vec::new();
    for _ in 0..WARM {
        let t = Instant::now();
        let r = http.get(url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        warm_health.push(t.elapsed());
    }
    println!(
        "GET /health first request after start: {:.2} ms (new process)",
        cold.as_secs_f64() * 1000.0
    );

    // A user and a session to read.
    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "bench-password-123";
    let post = |path: &str, body: Value| {
        http.post(url(path))
            .header("x-api-key", KEY)
            .json(&body)
            .send()
    };
    let mut register = Vec::new();
    let mut id = String::new();
    for i in 0..HASHING {
        let t = Instant::now();
        let e = if i == 0 {
            email.clone()
        } else {
            format!("bench-{i}-{email}")
        };
        let r = post(
            "/users",
            json!({"email": e, "name": "Bench", "password": password}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        register.push(t.elapsed());
        if i == 0 {
            id = body["id"].as_str().unwrap().to_string();
        }
    }
    let mut login = Vec::new();
    let mut token = String::new();
    for _ in 0..HASHING {
        let t = Instant::now();
        let r = post("/sessions", json!({"email": email, "password": password}))
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        login.push(t.elapsed());
        token = body["token"].as_str().unwrap().to_string();
    }

    let timed_get = async |path: String, auth: bool| {
        let mut samples = Vec::new();
        for _ in 0..WARM {
            let mut req = http.get(url(&path)).header("x-api-key", KEY);
            if auth {
                req = req.bearer_auth(&token);
            }
            let t = Instant::now();
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap();
            samples.push(t.elapsed());
        }
        samples
    };
    let mut get_user = timed_get(format!("/users/{id}"), false).await;
    let mut list_users = timed_get("/users?limit=10".to_string(), false).await;
    let mut current = timed_get("/sessions/current".to_string(), true).await;

    let mut direct = Vec::new();
    for _ in 0..WARM {
        let t = Instant::now();
        dynamo
            .get_item()
            .table_name(format!("{prefix}users"))
            .key("pk", AttributeValue::S(format!("USER#{id}")))
            .send()
            .await
            .unwrap();
        direct.push(t.elapsed());
    }

    let base = pct(&mut direct, 50.0);
    println!("\nwarm latency through the local server (ratio = p50 / direct GetItem p50)");
    line("direct DynamoDB GetItem (baseline)", &mut direct, None);
    line("GET /health", &mut warm_health, Some(base));
    line("GET /users/{id}", &mut get_user, Some(base));
    line("GET /users?limit=10", &mut list_users, Some(base));
    line("GET /sessions/current", &mut current, Some(base));
    line("POST /users (argon2id hash)", &mut register, Some(base));
    line("POST /sessions (argon2id verify)", &mut login, Some(base));
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
