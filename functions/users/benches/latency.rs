//! Warm handler latency per route against the emulator (moto on loopback), p50 and p99.
//!
//! Prints figures and asserts nothing about time: moto's speed, not ours, dominates most
//! routes, and the argon2id routes (register, log in, password change) are slow by design.
//! Run with `cargo bench -p users`; `BENCH_ITERATIONS` sets the samples per route (default 50).

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::json;
use service_common::clock::Timestamp;
use service_common::testing::{Event, TestApp, body_json};

const WARM_UP: usize = 3;

struct Stats {
    route: &'static str,
    samples: Vec<Duration>,
}

impl Stats {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
    }

    fn mean(&self) -> f64 {
        self.samples.iter().map(Duration::as_secs_f64).sum::<f64>() / self.samples.len() as f64
            * 1e3
    }
}

/// Times `iterations` calls of `call(i)` after a warm-up; each call must answer `expected`.
async fn measure(
    route: &'static str,
    iterations: usize,
    expected: StatusCode,
    mut call: impl AsyncFnMut(usize) -> StatusCode,
) -> Stats {
    for i in 0..WARM_UP {
        assert_eq!(call(i).await, expected, "{route} (warm-up)");
    }
    let mut samples = Vec::with_capacity(iterations);
    for i in WARM_UP..WARM_UP + iterations {
        let started = Instant::now();
        let status = call(i).await;
        samples.push(started.elapsed());
        assert_eq!(status, expected, "{route}");
    }
    Stats { route, samples }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let app = TestApp::start().await;
    // One state per function, built once, as each function's process builds its own.
    let health_state: health::State = app.state();
    let users_state: users::State = app.state();
    let sessions_state: sessions::State = app.state();
    let password = "benchmark password";
    let mut results = Vec::new();

    results.push(
        measure("GET /health", iterations, StatusCode::OK, async |_| {
            let request = Event::rest(Method::GET, "/health").build();
            health::handle(&health_state, request)
                .await
                .unwrap()
                .status()
        })
        .await,
    );
    results.push(
        measure(
            "GET /health?deep=true",
            iterations,
            StatusCode::OK,
            async |_| {
                let request = Event::rest(Method::GET, "/health")
                    .query("deep", "true")
                    .build();
                health::handle(&health_state, request)
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await,
    );
    results.push(
        measure("POST /users", iterations, StatusCode::CREATED, async |i| {
            let request = Event::rest(Method::POST, "/users")
                .json(&json!({"email": format!("bench{i}@example.com"), "name": "Bench", "password": password}))
                .build();
            users::handle(&users_state, request).await.unwrap().status()
        })
        .await,
    );
    let user = app.seed_user("me@example.com", password).await;
    let id = user.id.to_string();
    results.push(
        measure("GET /users/{id}", iterations, StatusCode::OK, async |_| {
            let request = Event::rest(Method::GET, "/users/{id}")
                .param("id", &id)
                .build();
            users::handle(&users_state, request).await.unwrap().status()
        })
        .await,
    );
    results.push(
        measure(
            "GET /users?limit=20",
            iterations,
            StatusCode::OK,
            async |_| {
                let request = Event::rest(Method::GET, "/users")
                    .query("limit", 20)
                    .build();
                users::handle(&users_state, request).await.unwrap().status()
            },
        )
        .await,
    );
    results.push(
        measure(
            "POST /sessions",
            iterations,
            StatusCode::CREATED,
            async |_| {
                let request = Event::rest(Method::POST, "/sessions")
                    .json(&json!({"email": "me@example.com", "password": password}))
                    .build();
                sessions::handle(&sessions_state, request)
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await,
    );
    let far = Timestamp::now().epoch_seconds() + 3600;
    let token = app.seed_session(user.id, far).await;
    results.push(
        measure(
            "GET /sessions/current",
            iterations,
            StatusCode::OK,
            async |_| {
                let request = Event::rest(Method::GET, "/sessions/current")
                    .bearer(token.expose())
                    .build();
                sessions::handle(&sessions_state, request)
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await,
    );
    let mut version = 1;
    results.push(
        measure(
            "PATCH /users/{id} (name)",
            iterations,
            StatusCode::OK,
            async |i| {
                let request = Event::rest(Method::PATCH, "/users/{id}")
                    .param("id", &id)
                    .bearer(token.expose())
                    .json(&json!({"version": version, "name": format!("Name {i}")}))
                    .build();
                let response = users::handle(&users_state, request).await.unwrap();
                version = body_json(&response)["version"].as_u64().unwrap_or(version);
                response.status()
            },
        )
        .await,
    );

    // Routes that consume what they act on get fresh sessions and users, made untimed.
    let mut spare_tokens = Vec::new();
    for _ in 0..WARM_UP + iterations {
        spare_tokens.push(app.seed_session(user.id, far).await);
    }
    results.push(
        measure(
            "DELETE /sessions/current",
            iterations,
            StatusCode::NO_CONTENT,
            async |i| {
                let request = Event::rest(Method::DELETE, "/sessions/current")
                    .bearer(spare_tokens[i].expose())
                    .build();
                sessions::handle(&sessions_state, request)
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await,
    );
    results.push(
        measure(
            "DELETE /sessions",
            iterations,
            StatusCode::NO_CONTENT,
            async |_| {
                let token = app.seed_session(user.id, far).await;
                let request = Event::rest(Method::DELETE, "/sessions")
                    .bearer(token.expose())
                    .build();
                sessions::handle(&sessions_state, request)
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await,
    );
    let mut doomed = Vec::new();
    for i in 0..WARM_UP + iterations {
        let user = app
            .seed_user(&format!("doomed{i}@example.com"), password)
            .await;
        let token = app.seed_session(user.id, far).await;
        doomed.push((user.id.to_string(), token));
    }
    results.push(
        measure(
            "DELETE /users/{id}",
            iterations,
            StatusCode::NO_CONTENT,
            async |i| {
                let (id, token) = &doomed[i];
                let request = Event::rest(Method::DELETE, "/users/{id}")
                    .param("id", id)
                    .bearer(token.expose())
                    .json(&json!({ "current_password": password }))
                    .build();
                users::handle(&users_state, request).await.unwrap().status()
            },
        )
        .await,
    );

    println!("\nwarm handler latency against moto, {iterations} samples per route (ms)");
    println!("{:<28} {:>9} {:>9} {:>9}", "route", "p50", "p99", "mean");
    for stats in &results {
        println!(
            "{:<28} {:>9.2} {:>9.2} {:>9.2}",
            stats.route,
            stats.percentile(50.0),
            stats.percentile(99.0),
            stats.mean()
        );
    }
}
