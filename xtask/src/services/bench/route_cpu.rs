//! The measured half of the capacity figures: CPU time per request of each route of the mix
//! in the release binaries, and the mix itself on this machine (the model's anchor).
//!
//! How: the smoke binary's mixed load (`--mix N`) sends each kind of request alone (the read
//! phase, the log-in phase, the registration phase, a quiet second between them) and then the
//! interleaved mix, and reports each phase's wall-clock window. While it runs, a thread reads
//! the CPU counters of the function processes every 100 ms ([`processes::cpu_ms`]); a route's
//! CPU time per request is its function's CPU used over its phase's window divided by the
//! requests of that route in it. The counters are the processes' own (user + system time of
//! every thread), so the local API server, moto and the load generator, which stand in for API
//! Gateway, DynamoDB and the clients, are not counted, and neither is time spent waiting;
//! one phase per kind makes the attribution exact where a function serves several routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::capacity::{self, MixRoute};
use super::processes;
use crate::base::env::Env;

/// How often the CPU counters are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long after a phase's last response its CPU counters are read (well inside the quiet
/// second before the next phase).
const SETTLE_MS: u128 = 300;

/// What the mixed load measured.
pub struct Measured {
    /// Each route of the mix, largest share first: its share of the interleaved phase's
    /// requests and its CPU time per request, measured in its one-kind phase.
    pub routes: Vec<MixRoute>,
    /// The interleaved mix: requests per second, p50, p99, requests and errors.
    pub mix: serde_json::Value,
    /// The pace the mix was sent at, requests per second.
    pub rate: Option<f64>,
}

/// One reading of every function's CPU counters.
struct Sample {
    unix_ms: u128,
    cpu_ms: BTreeMap<String, f64>,
}

/// Runs `load` (the smoke run with its `--mix`, returning its JSON report) while sampling the
/// function processes' CPU counters, and attributes the CPU to the routes.
pub fn measure(env: &Env, load: impl FnOnce() -> Result<serde_json::Value>) -> Result<Measured> {
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (env, done) = (env.clone(), done.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                samples.push(Sample {
                    unix_ms: unix_ms(),
                    cpu_ms: processes::cpu_ms(&env),
                });
                if done.load(Ordering::Relaxed) {
                    return samples;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        })
    };
    let report = load();
    done.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the CPU sampler panicked"))?;
    let report = report?;
    let mix = &report["mix"];
    let phases = mix["phases"]
        .as_array()
        .context("the smoke report has no mix phases")?;
    let mut cpu_ms = BTreeMap::new();
    for phase in phases.iter().filter(|p| p["name"] != "mix") {
        let window = |key: &str| phase[key].as_u64().map(u128::from).unwrap_or_default();
        let (started, ended) = (window("started_unix_ms"), window("ended_unix_ms"));
        let before = samples.iter().rev().find(|s| s.unix_ms <= started);
        let after = samples.iter().find(|s| s.unix_ms >= ended + SETTLE_MS);
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        for (route, count) in route_counts(phase) {
            let function = capacity::function_of(&route)?;
            let used = |s: &Sample| s.cpu_ms.get(function).copied().unwrap_or(0.0);
            cpu_ms.insert(route, (used(after) - used(before)).max(0.0) / count as f64);
        }
    }
    let anchor = phases
        .iter()
        .find(|p| p["name"] == "mix")
        .context("the smoke report has no interleaved mix phase")?;
    let mut counts = route_counts(anchor);
    counts.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    let routes = counts
        .into_iter()
        .map(|(route, count)| {
            let cpu_ms = cpu_ms
                .get(&route)
                .copied()
                .with_context(|| format!("no CPU time was measured for `{route}`"))?;
            Ok(MixRoute {
                share: count as f64 / total as f64,
                route,
                cpu_ms,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Measured {
        routes,
        mix: serde_json::json!({
            "requests": anchor["requests"],
            "errors": anchor["errors"],
            "per_second": anchor["per_second"],
            "p50_ms": anchor["p50_ms"],
            "p99_ms": anchor["p99_ms"],
        }),
        rate: mix["rate"].as_f64(),
    })
}

/// The `(route, requests)` pairs of a phase of the smoke report, in the order sent.
fn route_counts(phase: &serde_json::Value) -> Vec<(String, u64)> {
    phase["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_u64()?)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
