//! The mixed load step (`--mix N`): the request mix the capacity model is about, 80% reads,
//! 15% log-ins, 5% registrations, sent first one kind at a time and then interleaved.
//!
//! The one-kind phases are for attributing CPU time: `cargo xtask bench` reads the function
//! processes' CPU counters while this runs and charges each phase's CPU to its route, so the
//! phases are separated by a quiet second and report their wall-clock window. The interleaved
//! phase is the measured anchor: requests per second, p50 and p99, errors.
//!
//! Requests are paced (`--mix-rate`, requests per second; none: as fast as `CONCURRENCY`
//! in-flight requests allow), so a run against a throttled API measures the API rather than
//! its usage plan's 429s. It reuses the bounded load step's registration and log-in
//! ([`crate::load`]); the users it creates are cleaned up with the run's.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::api::Api;
use crate::cleanup::{Created, CreatedUser};
use crate::load::{self, MAX_LOAD};

/// Requests in flight at once, at most.
const CONCURRENCY: usize = 32;
/// Signed-in users the reads and log-ins go round; enough that no address reaches the log-in
/// attempt limit (10 in 10 minutes, cleared by each success) with `CONCURRENCY` in flight.
const POOL: usize = 40;
/// The quiet time between phases, so CPU sampled around a phase is that phase's.
const GAP: Duration = Duration::from_secs(1);

/// The kinds of request of the mix, with their shares in twentieths (80%, 15%, 5%).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `GET /users/me` and `GET /sessions/current` in turn.
    Read,
    LogIn,
    Registration,
}

impl Kind {
    /// The kind of the `i`-th request of the mix: of every 20, one registration, three
    /// log-ins, sixteen reads, spread out.
    fn of(i: usize) -> Kind {
        match i % 20 {
            0 => Kind::Registration,
            5 | 10 | 15 => Kind::LogIn,
            _ => Kind::Read,
        }
    }
}

/// One phase: what was sent, when, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `read`, `log-in`, `registration` or `mix`.
    pub name: String,
    /// Requests per route (`GET /users/me`: 400).
    pub routes: Vec<(String, usize)>,
    pub requests: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
    pub per_second: f64,
    pub p50_ms: u128,
    pub p99_ms: u128,
    /// Wall-clock window, ms since the Unix epoch.
    pub started_unix_ms: u128,
    pub ended_unix_ms: u128,
}

/// What the mixed load step measured.
#[derive(Debug, Clone, Serialize)]
pub struct MixReport {
    pub ok: bool,
    /// The pace asked for, requests per second.
    pub rate: Option<f64>,
    pub phases: Vec<Phase>,
}

/// One request's route, time and outcome.
struct Sent {
    route: &'static str,
    took: Duration,
    error: Option<String>,
}

/// Signs in a pool of users, then sends `n` requests of each kind's share alone and `n` of the
/// mix, at `rate` per second when given.
pub async fn run(
    api: &Api,
    n: usize,
    rate: Option<f64>,
    run_id: &str,
    created: &mut Created,
) -> MixReport {
    let n = n.min(MAX_LOAD);
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("smoke-{run_id}-mix-");
    let mut pool = Vec::new();
    let mut setup_errors = Vec::new();
    for i in 0..POOL {
        let email = format!("{prefix}pool-{i}@example.com");
        let mut user = CreatedUser::new(&email, &password);
        let one = load::one(api, &email, &password).await;
        user.id = one.register.1.as_ref().ok().cloned();
        match (one.register.1, one.login) {
            (_, Some((_, Ok(token)))) => {
                user.token = Some(token.clone());
                pool.push((email, token));
            }
            (Err(e), _) | (_, Some((_, Err(e)))) => setup_errors.push(e),
            (Ok(_), None) => {}
        }
        created.users.push(user);
    }
    if pool.len() < POOL {
        return MixReport {
            ok: false,
            rate,
            phases: vec![Phase {
                name: "setup".to_owned(),
                routes: Vec::new(),
                requests: POOL,
                errors: POOL - pool.len(),
                error_samples: setup_errors.into_iter().take(5).collect(),
                per_second: 0.0,
                p50_ms: 0,
                p99_ms: 0,
                started_unix_ms: 0,
                ended_unix_ms: 0,
            }],
        };
    }
    let pool = Arc::new(pool);
    let (password, prefix) = (Arc::new(password), Arc::new(prefix));
    let mut phases = Vec::new();
    let mut registered = 0;
    for (name, only) in [
        ("read", Some(Kind::Read)),
        ("log-in", Some(Kind::LogIn)),
        ("registration", Some(Kind::Registration)),
        ("mix", None),
    ] {
        // A one-kind phase sends that kind's share of `n`; the mix sends all `n`.
        let kinds: Vec<Kind> = (0..n)
            .map(Kind::of)
            .filter(|kind| only.is_none_or(|only| only == *kind))
            .collect();
        tokio::time::sleep(GAP).await;
        let context = Context {
            api: api.clone(),
            pool: pool.clone(),
            password: password.clone(),
            prefix: prefix.clone(),
        };
        let (phase, emails) = send(name, &kinds, registered, rate, context).await;
        // Numbered by what was sent, so no address is sent twice even if a task was lost.
        registered += kinds
            .iter()
            .filter(|kind| **kind == Kind::Registration)
            .count();
        for (email, id) in emails {
            let mut user = CreatedUser::new(&email, &password);
            user.id = id;
            created.users.push(user);
        }
        phases.push(phase);
    }
    MixReport {
        ok: phases.iter().all(|p| p.errors == 0),
        rate,
        phases,
    }
}

/// What each request task needs.
#[derive(Clone)]
struct Context {
    api: Api,
    pool: Arc<Vec<(String, String)>>,
    password: Arc<String>,
    prefix: Arc<String>,
}

/// Sends `kinds` in order, paced and bounded; returns the phase and the addresses it
/// registered (with the ids the API gave them).
async fn send(
    name: &str,
    kinds: &[Kind],
    registered: usize,
    rate: Option<f64>,
    context: Context,
) -> (Phase, Vec<(String, Option<String>)>) {
    let in_flight = Arc::new(Semaphore::new(CONCURRENCY));
    let started_unix_ms = unix_ms();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(kinds.len());
    let mut registrations = registered;
    // The how-manieth request of its kind each is: it picks the pool user and the read route,
    // so every kind goes round the whole pool whatever the order of kinds.
    let mut seen = [0_usize; 3];
    for (i, kind) in kinds.iter().copied().enumerate() {
        let nth = seen[kind as usize];
        seen[kind as usize] += 1;
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let email = (kind == Kind::Registration).then(|| {
            registrations += 1;
            format!("{}{}@example.com", context.prefix, registrations)
        });
        let context = context.clone();
        tasks.push(tokio::spawn(async move {
            let sent = one(&context, kind, nth, email.as_deref()).await;
            drop(permit);
            (sent, email)
        }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    let mut emails = Vec::new();
    for task in tasks {
        if let Ok(((one, id), email)) = task.await {
            if let Some(email) = email {
                emails.push((email, id));
            }
            sent.push(one);
        }
    }
    let wall = started.elapsed();
    let ended_unix_ms = unix_ms();
    let mut routes: Vec<(String, usize)> = Vec::new();
    for one in &sent {
        match routes.iter_mut().find(|(route, _)| route == one.route) {
            Some((_, count)) => *count += 1,
            None => routes.push((one.route.to_owned(), 1)),
        }
    }
    let errors: Vec<String> = sent
        .iter()
        .filter_map(|one| Some(format!("{}: {}", one.route, one.error.as_ref()?)))
        .collect();
    let mut times: Vec<Duration> = sent.iter().map(|one| one.took).collect();
    let phase = Phase {
        name: name.to_owned(),
        routes,
        requests: kinds.len(),
        errors: errors.len() + (kinds.len() - sent.len()),
        error_samples: errors.into_iter().take(5).collect(),
        per_second: sent.len() as f64 / wall.as_secs_f64().max(1e-9),
        p50_ms: load::percentile(&mut times, 50.0),
        p99_ms: load::percentile(&mut times, 99.0),
        started_unix_ms,
        ended_unix_ms,
    };
    (phase, emails)
}

/// The `nth` request of `kind` (which picks the pool user and the read route); with the id a
/// registration got.
async fn one(
    context: &Context,
    kind: Kind,
    nth: usize,
    email: Option<&str>,
) -> (Sent, Option<String>) {
    let (email_of_pool, token) = &context.pool[nth % context.pool.len()];
    let (route, ex, expected) = match kind {
        Kind::Read if nth.is_multiple_of(2) => {
            let route = "GET /users/me";
            (
                route,
                context
                    .api
                    .call(Method::GET, "/users/me", Some(token), None)
                    .await,
                200,
            )
        }
        Kind::Read => {
            let route = "GET /sessions/current";
            let ex = context
                .api
                .call(Method::GET, "/sessions/current", Some(token), None)
                .await;
            (route, ex, 200)
        }
        Kind::LogIn => {
            let body = json!({"email": email_of_pool, "password": *context.password});
            let ex = context
                .api
                .call(Method::POST, "/sessions", None, Some(body))
                .await;
            ("POST /sessions", ex, 201)
        }
        Kind::Registration => {
            let body = json!({
                "email": email.unwrap_or_default(),
                "name": "Smoke mix",
                "password": *context.password,
            });
            let ex = context
                .api
                .call(Method::POST, "/users", None, Some(body))
                .await;
            ("POST /users", ex, 201)
        }
    };
    let id = ex
        .body()
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let error = (ex.status() != Some(expected)).then(|| load::describe(ex.status(), &ex.error));
    let sent = Sent {
        route,
        took: Duration::from_millis(ex.millis as u64),
        error,
    };
    (sent, id.filter(|_| kind == Kind::Registration))
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_80_15_5_in_every_twenty() {
        let kinds: Vec<Kind> = (0..1000).map(Kind::of).collect();
        let count = |k| kinds.iter().filter(|kind| **kind == k).count();
        assert_eq!(
            (
                count(Kind::Read),
                count(Kind::LogIn),
                count(Kind::Registration)
            ),
            (800, 150, 50)
        );
    }
}
