//! What `cargo xtask bench` measures, one module per figure that takes more than a call:
//! `cold_start` (a release binary's start to first response), `memory` (peak resident memory
//! of the functions' processes), `route_cpu` (CPU time per request of each route, under the
//! mix), `capacity` (the throughput model), `cost` (the price model), `processes` (the function
//! processes in `/proc`), `release_build` (a clean release build and a one-function rebuild),
//! `queues` (a message's way through the local event loop), and here the packages, synthesis and the measured deploys. The command prints; these
//! measure.
//!
//! The functions measured are picked from the catalog by what they declare, never by name, so
//! the benchmark runs unchanged after `cargo xtask new` or `remove`.

pub mod capacity;
pub mod cold_start;
pub mod cost;
pub mod memory;
pub mod processes;
pub mod queues;
pub mod release_build;
pub mod route_cpu;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::Shell;

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::artifacts::build::{self, Binaries};
use crate::services::artifacts::package::{self, Manifest};
use crate::services::deploy::{self, Options};
use crate::services::stacks::synth;
use crate::services::{smoke, target};

/// The packages (a release build when the binaries are stale) and the release binaries in them.
pub fn packages(env: &Env) -> Result<(Manifest, Binaries)> {
    let manifest = package::build_check_package(env, None)?;
    let binaries = build::from_dir(&release_dir(env))?;
    Ok((manifest, binaries))
}

/// The median of `runs` syntheses of the environment's stacks, in seconds.
pub fn synth_seconds(env: &Env, runs: usize) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(synth::synthesize(env)?.as_secs_f64());
    }
    Ok(median(&mut times))
}

/// The function the single-function probes use (the watch loop's rebuild, the cold start's
/// request): the first whose role may read or write no item (its grants, if any, only
/// describe tables) and that serves a GET without path parameters, so it answers without the
/// tables and the figure is the function's own time.
pub fn probe() -> Result<(&'static catalog::Function, &'static catalog::Route)> {
    catalog::FUNCTIONS
        .iter()
        .filter(|f| {
            f.grants
                .iter()
                .flat_map(|g| g.actions)
                .all(|action| *action == "dynamodb:DescribeTable")
        })
        .find_map(|f| {
            let route = f
                .routes
                .iter()
                .find(|r| r.method == "GET" && !r.path.contains('{'))?;
            Some((f, route))
        })
        .context(
            "no function serves a GET without path parameters and without touching a table's \
             items: the benchmark's probes need one",
        )
}

/// The function whose code the measured code-only change ships: the first that serves a write
/// (POST, PUT, PATCH or DELETE), the kind of function a typical fix changes.
pub fn changed_function() -> Result<&'static str> {
    catalog::FUNCTIONS
        .iter()
        .find(|f| {
            f.routes
                .iter()
                .any(|r| matches!(r.method, "POST" | "PUT" | "PATCH" | "DELETE"))
        })
        .map(|f| f.name)
        .context("no function serves a write route: the code-only change needs one")
}

/// The deploy figures, measured on an emulated environment.
pub struct Deploys {
    /// A deploy with nothing changed, cargo's up-to-date check included.
    pub noop_seconds: f64,
    /// The function [`changed_function`] picked.
    pub changed: &'static str,
    /// A code-only change of it by Terraform, then by `--hotswap`.
    pub code_changes: Vec<CodeChange>,
}

/// One measured code-only change.
pub struct CodeChange {
    /// `terraform` or `hotswap`.
    pub mode: &'static str,
    pub hotswap: bool,
    /// The deploy's time without building and packaging.
    pub seconds: f64,
    /// The functions the deploy updated.
    pub updated: Vec<String>,
}

/// Deploys the prebuilt `binaries`, then measures a no-op deploy and a code-only change of one
/// function (by Terraform and by `--hotswap`), and deploys the original binaries again.
pub fn deploys(sh: &Shell, env: &Env, binaries: &Binaries) -> Result<Deploys> {
    let args = Options {
        no_serve: true,
        ..Options::default()
    };
    let prebuilt = Options {
        prebuilt: Some(binaries_dir(binaries)),
        ..args.clone()
    };
    progress::step("Bench: making sure the stack is deployed");
    deploy::deploy(sh, env, &prebuilt)?;
    progress::step("Bench: no-op deploy");
    let t = Instant::now();
    deploy::deploy(sh, env, &args)?;
    let noop_seconds = t.elapsed().as_secs_f64();

    let changed = changed_function()?;
    let dir = env.build_root.join("bench").join("prebuilt");
    std::fs::create_dir_all(&dir)?;
    let mut code_changes = Vec::new();
    for (mode, hotswap) in [("terraform", false), ("hotswap", true)] {
        progress::step(format!("Bench: code-only change of one function ({mode})"));
        for (name, path) in &binaries.paths {
            std::fs::copy(path, dir.join(name))?;
        }
        // Trailing bytes change the package hash and nothing else.
        let stamp = format!("xtask-bench {mode} {:?}", std::time::SystemTime::now());
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(changed))?
            .write_all(stamp.as_bytes())?;
        let report = deploy::deploy(
            sh,
            env,
            &Options {
                prebuilt: Some(dir.clone()),
                hotswap,
                ..args.clone()
            },
        )?;
        let timing = |step: &str| report.timings.get(step).copied().unwrap_or_default();
        code_changes.push(CodeChange {
            mode,
            hotswap,
            seconds: timing("total") - timing("build_and_package"),
            updated: report.changed_functions,
        });
    }
    progress::step(format!("Bench: restoring the original `{changed}`"));
    deploy::deploy(sh, env, &prebuilt)?;
    Ok(Deploys {
        noop_seconds,
        changed,
        code_changes,
    })
}

/// The stage the bench makes and destroys (short enough for every prefix).
const BENCH_STAGE: &str = "bench";

/// How long a stage takes to make and to destroy on `env` (its own service stack, the packages
/// already built), in seconds: what a developer or a pull request pays per stage.
pub struct StageTimes {
    pub create_seconds: f64,
    pub destroy_seconds: f64,
}

/// Deploys the prebuilt `binaries` as the stage [`BENCH_STAGE`] of `env`, then destroys it
/// (with its check that nothing of it is left).
pub fn stage(sh: &Shell, env: &Env, binaries: &Binaries) -> Result<StageTimes> {
    let staged = env.staged(BENCH_STAGE);
    progress::step(format!("Bench: creating the stage `{}`", staged.label()));
    let t = Instant::now();
    deploy::deploy(
        sh,
        &staged,
        &Options {
            prebuilt: Some(binaries_dir(binaries)),
            ..Options::default()
        },
    )?;
    let create_seconds = t.elapsed().as_secs_f64();
    progress::step(format!("Bench: destroying the stage `{}`", staged.label()));
    let t = Instant::now();
    let (target, _moto) = crate::services::target::target(&staged)?;
    crate::services::stages::destroy(sh, &staged, &target)?;
    Ok(StageTimes {
        create_seconds,
        destroy_seconds: t.elapsed().as_secs_f64(),
    })
}

/// What a burst of registrations and log-ins showed.
pub struct Burst {
    /// Median time of a refused log-in of a registered address, in ms.
    pub refused_registered_ms: u64,
    /// The same for an address nobody registered.
    pub refused_unknown_ms: u64,
    pub peaks: Vec<memory::Peak>,
}

/// Serves the prebuilt `binaries` behind the local API server, sends `users` concurrent
/// registrations and log-ins (each hashes with argon2id, 19 MiB) and reads the functions'
/// peak memory.
pub fn burst(sh: &Shell, env: &Env, binaries: &Binaries, users: usize) -> Result<Burst> {
    progress::step(format!(
        "Bench: peak memory under a burst of {users} registrations and log-ins"
    ));
    let served = Options {
        prebuilt: Some(binaries_dir(binaries)),
        ..Options::default()
    };
    deploy::deploy(sh, env, &served)?;
    let (target, moto) = target::target(env)?;
    let load = smoke::under_load(
        sh,
        env,
        &target,
        moto.as_ref(),
        &["--load".to_owned(), users.to_string()],
    )?;
    let refused = |key: &str| load["load"][key].as_u64().unwrap_or_default();
    Ok(Burst {
        refused_registered_ms: refused("refused_login_registered_p50_ms"),
        refused_unknown_ms: refused("refused_login_unknown_p50_ms"),
        peaks: memory::peaks(env)?,
    })
}

/// Sends `requests` of the capacity model's mix (and each kind's share alone first) to the
/// release binaries [`burst`] deployed, at the rate of the environment's first API client (its
/// usage plan would answer faster traffic with 429s), and measures each route's CPU time.
pub fn mix(sh: &Shell, env: &Env, requests: usize) -> Result<route_cpu::Measured> {
    let rate = infra::load_config(&env.name)?
        .api
        .clients
        .first()
        .map(|client| client.rate_per_second);
    progress::step(format!(
        "Bench: {requests} requests of the mix, each kind alone and then mixed, at {} per second",
        rate.map_or("any rate".to_owned(), |r| r.to_string())
    ));
    let (target, moto) = target::target(env)?;
    let mut load = vec!["--mix".to_owned(), requests.to_string()];
    if let Some(rate) = rate {
        load.extend(["--mix-rate".to_owned(), rate.to_string()]);
    }
    route_cpu::measure(env, || {
        smoke::under_load(sh, env, &target, moto.as_ref(), &load)
    })
}

/// The folder the release binaries are in.
fn binaries_dir(binaries: &Binaries) -> PathBuf {
    binaries
        .paths
        .values()
        .next()
        .and_then(|path| path.parent())
        .map(Path::to_path_buf)
        .expect("a binary has a folder")
}

fn release_dir(env: &Env) -> PathBuf {
    if process::find_program("cargo-zigbuild").is_some() {
        build::target_dir(env)
            .join(env.arch.triple())
            .join("release")
    } else {
        build::target_dir(env).join("release")
    }
}

/// The middle sample (the upper one of an even count).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The picks are properties of the declarations, so they hold for whatever functions the
    /// workspace has; these pin what they mean for today's.
    #[test]
    fn the_measured_functions_are_picked_by_what_they_declare() {
        let (function, route) = probe().unwrap();
        assert!(
            function
                .grants
                .iter()
                .all(|g| g.actions == ["dynamodb:DescribeTable"])
        );
        assert_eq!((route.method, route.path.contains('{')), ("GET", false));
        let changed = catalog::find(changed_function().unwrap()).unwrap();
        assert!(changed.routes.iter().any(|r| r.method != "GET"));
        assert_ne!(function.name, changed.name);
    }
}
