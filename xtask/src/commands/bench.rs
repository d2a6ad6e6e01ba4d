//! `cargo xtask bench`: the figures that matter to someone deploying often,
//! printed, never asserted: no-op deploy, code-only change (excluding the
//! compile), package sizes, the release build (clean, and after a one-function change),
//! synth time, cold start of each release binary, `watch`'s save-to-served time, the
//! capacity model (each route's CPU time per request and the throughput each deployed
//! environment allows, beside the mix measured on the local API server) and a cost estimate
//! per environment. The
//! measuring is `services::bench`'s; this prints it.

use anyhow::Result;
use xshell::Shell;

use crate::base::env::{self, Env};
use crate::base::progress;
use crate::cli::BenchArgs;
use crate::services::artifacts::package;
use crate::services::bench::{self, capacity, cold_start, cost, queues, release_build};
use crate::services::watch;

/// Messages sent through each declared queue for its delivery figure.
const QUEUE_ROUNDS: usize = 10;

pub fn run(sh: &Shell, env: &Env, args: BenchArgs) -> Result<()> {
    let mut figures = serde_json::Map::new();
    let mut human = Vec::new();

    let (manifest, binaries) = bench::packages(env)?;
    let sizes: serde_json::Map<String, serde_json::Value> = manifest
        .functions
        .iter()
        .map(|(n, p)| (n.clone(), p.bytes.into()))
        .collect();
    human.push("package sizes (zip):".to_owned());
    for (name, pkg) in &manifest.functions {
        human.push(format!("  {name:<9} {}", package::human_bytes(pkg.bytes)));
    }
    figures.insert("package_bytes".into(), sizes.into());

    let built = release_build::measure(env, bench::changed_function()?)?;
    human.push(format!(
        "release build: {:.0} s clean for {} functions; {:.1} s after a change to `{}` (its \
         crate and its binary)",
        built.clean.as_secs_f64(),
        built.functions,
        built.one_function.as_secs_f64(),
        built.changed
    ));
    figures.insert(
        "release_build_clean_seconds".into(),
        built.clean.as_secs_f64().into(),
    );
    figures.insert(
        "release_build_one_function_seconds".into(),
        built.one_function.as_secs_f64().into(),
    );

    let synth_median = bench::synth_seconds(env, 5)?;
    human.push(format!("synth: {:.1} ms (median of 5)", synth_median * 1e3));
    figures.insert("synth_seconds".into(), synth_median.into());

    human.push(format!(
        "cold start, spawn to first response (median of {}):",
        args.iterations
    ));
    let mut cold = serde_json::Map::new();
    for (name, path) in &binaries.paths {
        let m = cold_start::median_seconds(env, name, path, args.iterations)?;
        human.push(format!("  {name:<9} {:.1} ms", m * 1e3));
        cold.insert(name.to_string(), m.into());
    }
    figures.insert("cold_start_seconds".into(), cold.into());

    // Deploy figures need an environment to deploy to: the emulator by default.
    if !args.offline && env.emulated {
        let deploys = bench::deploys(sh, env, &binaries)?;
        human.push(format!(
            "no-op deploy (incl. cargo's up-to-date check): {:.2} s",
            deploys.noop_seconds
        ));
        figures.insert("noop_deploy_seconds".into(), deploys.noop_seconds.into());
        for change in &deploys.code_changes {
            human.push(format!(
                "code-only change of `{}`, excluding compile ({}{}): {:.2} s (updated: {})",
                deploys.changed,
                change.mode,
                if change.hotswap {
                    ", deploy --hotswap"
                } else {
                    ", deploy"
                },
                change.seconds,
                change.updated.join(", ")
            ));
            figures.insert(
                format!("code_change_{}_seconds", change.mode),
                change.seconds.into(),
            );
        }

        let stage = bench::stage(sh, env, &binaries)?;
        human.push(format!(
            "a stage (`deploy --stage`, its own service stack beside the environment's): \
             created in {:.1} s, destroyed and checked in {:.1} s",
            stage.create_seconds, stage.destroy_seconds
        ));
        figures.insert("stage_create_seconds".into(), stage.create_seconds.into());
        figures.insert("stage_destroy_seconds".into(), stage.destroy_seconds.into());

        let burst = bench::burst(sh, env, &binaries, args.burst)?;
        let (registered, unknown) = (burst.refused_registered_ms, burst.refused_unknown_ms);
        human.push(format!(
            "refused log-in, median of {} each: registered address {registered} ms, \
             unknown address {unknown} ms (alike: timing does not tell which addresses exist)",
            args.burst
        ));
        figures.insert(
            "refused_login_median_ms".into(),
            serde_json::json!({ "registered": registered, "unknown": unknown }),
        );
        human.push(format!(
            "peak resident memory per function after {} concurrent registrations and log-ins:",
            args.burst
        ));
        let mut peaks = serde_json::Map::new();
        let mut sizes = serde_json::Map::new();
        for peak in burst.peaks {
            let (peak_mb, memory_mb) = (peak.peak_mb, peak.memory_mb);
            let warning = if peak_mb * 100 > memory_mb * 80 {
                "  WARNING: over 80% of memory_mb; Lambda kills a function that outgrows it"
            } else {
                ""
            };
            human.push(format!(
                "  {:<9} {peak_mb} MB ({}% of {memory_mb} MB){warning}",
                peak.function,
                peak_mb * 100 / memory_mb
            ));
            sizes.insert(peak.function.clone(), memory_mb.into());
            peaks.insert(peak.function, peak_mb.into());
        }
        figures.insert("peak_memory_mb".into(), peaks.into());
        figures.insert("memory_mb".into(), sizes.into());

        let measured = bench::mix(sh, env, args.mix)?;
        human.extend(capacity_lines(env, &measured, &mut figures)?);

        progress::step("Bench: a message through each declared queue, sent until handled");
        let deliveries = queues::measure(env, QUEUE_ROUNDS)?;
        human.push(format!(
            "queue delivery on the local event loop (send to handled, {QUEUE_ROUNDS} messages each):"
        ));
        let mut delivered = serde_json::Map::new();
        for d in deliveries {
            human.push(format!(
                "  {} -> {}: median {:.0} ms, max {:.0} ms",
                d.queue,
                d.function,
                d.median.as_secs_f64() * 1e3,
                d.max.as_secs_f64() * 1e3
            ));
            delivered.insert(d.queue.to_owned(), d.median.as_secs_f64().into());
        }
        figures.insert("queue_delivery_median_seconds".into(), delivered.into());

        // The development loop, on the server that is running now.
        let function = bench::probe()?.0.name;
        progress::step(format!(
            "Bench: `watch`, its start and two one-line changes of the {function} handler until \
             served"
        ));
        let watched = watch::bench(sh, env, function)?;
        human.push(format!(
            "watch: started in {:.1} s (the functions' dev builds, from a fresh clone's state after \
             `deploy`); a one-line change of `{function}` served \
             {:.1} s after the first save and {:.1} s after the next (dev profile; compiled \
             after {:.1} s and {:.1} s)",
            watched.start.as_secs_f64(),
            watched.first_save.served.as_secs_f64(),
            watched.later_save.served.as_secs_f64(),
            watched.first_save.compiled.as_secs_f64(),
            watched.later_save.compiled.as_secs_f64(),
        ));
        figures.insert(
            "watch_start_seconds".into(),
            watched.start.as_secs_f64().into(),
        );
        figures.insert(
            "watch_first_save_to_served_seconds".into(),
            watched.first_save.served.as_secs_f64().into(),
        );
        figures.insert(
            "watch_save_to_served_seconds".into(),
            watched.later_save.served.as_secs_f64().into(),
        );
    }

    human.push(
        "cost estimate (AWS list prices, us-east-1; see PRICES in xtask/src/services/bench/cost.rs):"
            .to_owned(),
    );
    let mut costs = serde_json::Map::new();
    for name in env::available(&env.root)? {
        let cost = cost::estimate(&name)?;
        human.push(format!(
            "  {name:<6} idle ${:>7.2}/month   ${:>6.2} per million requests",
            cost.idle_per_month, cost.per_million
        ));
        costs.insert(name, serde_json::json!({ "idle_per_month_usd": cost.idle_per_month, "per_million_requests_usd": cost.per_million }));
    }
    figures.insert("cost".into(), costs.into());
    progress::finish(env.json, &figures.into(), human.join("\n"));
    Ok(())
}

/// The capacity figures: the mix as this machine served it, then per deployed environment each
/// route's limits and the mix's verdict; the same figures go into `figures["capacity"]`.
fn capacity_lines(
    env: &Env,
    measured: &bench::route_cpu::Measured,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<String>> {
    let mix = &measured.mix;
    let shares: Vec<String> = measured
        .routes
        .iter()
        .map(|r| format!("{:.0}% {}", r.share * 100.0, r.route))
        .collect();
    let mut human = vec![format!(
        "mix ({}) on this machine, local API server, release binaries, sent at {}/s: {} \
         requests, {:.1}/s, p50 {} ms, p99 {} ms, {} errors",
        shares.join(", "),
        measured.rate.map_or("any".to_owned(), |r| r.to_string()),
        mix["requests"],
        mix["per_second"].as_f64().unwrap_or_default(),
        mix["p50_ms"],
        mix["p99_ms"],
        mix["errors"],
    )];
    let mut json = serde_json::json!({
        "goal_per_second": capacity::GOAL_PER_SECOND,
        "local": mix.clone(),
        "mix": measured.routes.iter().map(|r| serde_json::json!({
            "route": r.route, "share": r.share, "cpu_ms_per_request": r.cpu_ms,
        })).collect::<Vec<_>>(),
    });
    for name in env::available(&env.root)? {
        let config = infra::load_config(&name)?;
        if config.emulator {
            continue;
        }
        let limits = capacity::Limits::of(&config);
        let verdict = capacity::model(&limits, &measured.routes)?;
        human.push(format!(
            "capacity of `{name}` (DynamoDB: {}; requests per second each limit allows a \
             route alone):",
            limits.table_units_source
        ));
        human.push(format!(
            "  {:<22} {:>5} {:>7} {:>9} {:>6} {:>7} {:>9} {:>7}",
            "route", "share", "CPU ms", "Lambda ms", "API", "Lambda", "DynamoDB", "limit"
        ));
        let mut routes = serde_json::Map::new();
        for r in &verdict.routes {
            human.push(format!(
                "  {:<22} {:>4.0}% {:>7.2} {:>9.1} {:>6.0} {:>7.0} {:>9.0} {:>7.0}",
                r.route,
                r.share * 100.0,
                r.cpu_ms,
                r.duration_ms,
                r.api_per_second,
                r.lambda_per_second,
                r.dynamodb_per_second,
                r.limit()
            ));
            routes.insert(
                r.route.clone(),
                serde_json::json!({
                    "share": r.share, "cpu_ms": r.cpu_ms,
                    "lambda_duration_ms": r.duration_ms, "api_per_second": r.api_per_second,
                    "lambda_per_second": r.lambda_per_second,
                    "dynamodb_per_second": r.dynamodb_per_second, "limit_per_second": r.limit(),
                }),
            );
        }
        let bounds: Vec<String> = verdict
            .bounds
            .iter()
            .map(|b| format!("{} {:.0}/s", b.limit, b.per_second))
            .collect();
        human.push(format!(
            "  the mix's limits, lowest first: {}",
            bounds.join(", ")
        ));
        human.push(format!(
            "  verdict: `{name}` {} {:.0} requests per second of the mix (it sustains {:.0}/s; \
             {} binds first)",
            if verdict.meets_goal() {
                "can serve"
            } else {
                "can NOT serve"
            },
            capacity::GOAL_PER_SECOND,
            verdict.mix_per_second(),
            verdict.binding()
        ));
        json[name.as_str()] = serde_json::json!({
            "routes": routes,
            "bounds": verdict.bounds.iter().map(|b| serde_json::json!({"limit": b.limit, "per_second": b.per_second})).collect::<Vec<_>>(),
            "mix_per_second": verdict.mix_per_second(),
            "binding": verdict.binding(),
            "meets_goal": verdict.meets_goal(),
        });
    }
    figures.insert("capacity".into(), json);
    Ok(human)
}
