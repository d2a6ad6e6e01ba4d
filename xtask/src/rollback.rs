//! `cargo xtask rollback`: point each function's `live` alias back to the
//! version it served before the last deploy, with all the traffic and no
//! routing weights. Nothing is rebuilt or re-applied: Lambda keeps every
//! published version, so moving the alias is enough and takes seconds.
//!
//! The record lives in `build/<env>/`:
//! - `deploy-in-progress.json`: every alias's version, written before a
//!   deploy changes anything. A deploy that fails half-way leaves it behind,
//!   so the rollback that follows (the deploy workflow runs one on failure)
//!   still knows where each alias was.
//! - `previous-versions.json` (`{"users":"3"}`): after a successful deploy,
//!   only the aliases that deploy moved. A deploy that moves nothing leaves
//!   the file as it was, so a no-op deploy never records the current version
//!   as the "previous" one.
//! - `rolled-back.json`: what the last rollback moved. Rolling back consumes
//!   the record, so a second rollback is refused until a new deploy moves an
//!   alias again; rolling "back" twice would otherwise roll forward onto the
//!   version that was just abandoned.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::aws::Target;
use crate::env::{Env, FUNCTIONS};
use crate::release::{self, AliasState};
use crate::wait::ALIAS;
use crate::{local, process, progress, wait};

/// Version of the `live` alias per function (`health`, `users`, ...).
pub type Versions = BTreeMap<String, String>;

/// One alias moved by a rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Move {
    pub function: String,
    pub function_name: String,
    pub from: String,
    pub to: String,
}

/// What `rollback` did; printed with `--json` and kept in `rolled-back.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub env: String,
    pub alias: String,
    /// The record the versions came from (`previous-versions.json`, or
    /// `deploy-in-progress.json` after a failed deploy).
    pub source: String,
    pub moved: Vec<Move>,
    /// Functions whose alias already served the recorded version.
    pub unchanged: Vec<String>,
}

fn previous_file(env: &Env) -> PathBuf {
    env.dir().join("previous-versions.json")
}

fn pending_file(env: &Env) -> PathBuf {
    env.dir().join("deploy-in-progress.json")
}

fn rolled_back_file(env: &Env) -> PathBuf {
    env.dir().join("rolled-back.json")
}

/// The files that only describe one emulator's functions: a fresh emulator
/// has none of those versions.
pub fn state_files(env: &Env) -> [PathBuf; 3] {
    [previous_file(env), pending_file(env), rolled_back_file(env)]
}

/// The `live` alias of every function that has one: version and weights.
pub fn aliases(env: &Env, target: &Target) -> Result<BTreeMap<String, AliasState>> {
    process::block_on(async {
        let lambda = target.lambda().await;
        let mut aliases = BTreeMap::new();
        for function in FUNCTIONS {
            let name = env.function_name(function);
            match lambda
                .get_alias()
                .function_name(&name)
                .name(ALIAS)
                .send()
                .await
            {
                Ok(alias) => {
                    if let Some(version) = alias.function_version() {
                        let weights = alias
                            .routing_config()
                            .and_then(|r| r.additional_version_weights())
                            .map(|w| w.iter().map(|(v, w)| (v.clone(), *w)).collect())
                            .unwrap_or_default();
                        aliases.insert(
                            function.to_owned(),
                            AliasState {
                                version: version.to_owned(),
                                weights,
                            },
                        );
                    }
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(err) => bail!(
                    "reading alias {ALIAS} of {name}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&err)
                ),
            }
        }
        Ok(aliases)
    })
}

/// The `live` alias's primary version of every function that has one.
pub fn live_versions(env: &Env, target: &Target) -> Result<Versions> {
    Ok(aliases(env, target)?
        .into_iter()
        .map(|(function, alias)| (function, alias.version))
        .collect())
}

/// Called by `deploy` before it changes any function: remembers where every
/// alias is, on disk, so even a failed deploy can be rolled back.
pub fn before_deploy(env: &Env, target: &Target) -> Result<Versions> {
    let before = live_versions(env, target)?;
    process::write_json(&pending_file(env), &before)?;
    Ok(before)
}

/// Called by `deploy` once it succeeded: records the aliases it moved as the
/// versions to roll back to, unless it moved none.
pub fn after_deploy(env: &Env, target: &Target, before: &Versions) -> Result<()> {
    let after = live_versions(env, target)?;
    let moved: Versions = before
        .iter()
        .filter(|(function, version)| after.get(*function) != Some(*version))
        .map(|(f, v)| (f.clone(), v.clone()))
        .collect();
    if !moved.is_empty() {
        process::write_json(&previous_file(env), &moved)?;
        remove_if_present(&rolled_back_file(env))?;
    }
    remove_if_present(&pending_file(env))
}

/// Called by `deploy` when its release was stopped and moved back: nothing
/// changed, so there is nothing new to roll back to.
pub fn discard_pending(env: &Env) -> Result<()> {
    remove_if_present(&pending_file(env))
}

fn remove_if_present(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The versions to go back to, and the file they came from.
fn record(env: &Env) -> Result<(Versions, PathBuf)> {
    for path in [pending_file(env), previous_file(env)] {
        if path.exists() {
            let versions: Versions = process::read_json(&path)?;
            if versions.is_empty() {
                bail!(
                    "nothing to roll back to for `{}`: the last deploy found no `{ALIAS}` alias \
                     (a first deploy), so there is no earlier version",
                    env.name
                );
            }
            return Ok((versions, path));
        }
    }
    if let Ok(done) = process::read_json::<Report>(&rolled_back_file(env)) {
        let moves: Vec<String> = done
            .moved
            .iter()
            .map(|m| format!("{}: {ALIAS} {} -> {}", m.function, m.from, m.to))
            .collect();
        bail!(
            "`{}` was already rolled back ({}); there is nothing older recorded to roll back to. \
             Deploy a fixed version with `cargo xtask deploy --env {}`",
            env.name,
            if moves.is_empty() {
                "nothing had to move".to_owned()
            } else {
                moves.join(", ")
            },
            env.name
        );
    }
    bail!(
        "nothing to roll back to for `{}`: no deploy has moved a `{ALIAS}` alias from this \
         machine's build folder ({} is missing). Rollback returns to the versions served \
         before the last `cargo xtask deploy --env {}` that changed a function",
        env.name,
        process::display_path(&env.root, &previous_file(env)),
        env.name
    )
}

pub fn run(env: &Env) -> Result<()> {
    // Nothing recorded is the likelier problem, and needs no AWS access to tell.
    record(env)?;
    let target = if env.emulated {
        let moto = local::running_moto(env).with_context(|| {
            format!(
                "the emulator of `{}` is not running, so nothing is deployed there to roll back",
                env.name
            )
        })?;
        Target::emulator(env, &moto.endpoint)
    } else {
        let target = Target::real(env);
        let (account, arn) = process::block_on(crate::aws::caller_identity(&target))?;
        progress::step(format!(
            "Rolling back `{}` in account {account} ({}) as {arn}",
            env.name, env.region
        ));
        target
    };
    let report = roll_back(env, &target)?;
    let mut human: Vec<String> = report
        .moved
        .iter()
        .map(|m| format!("{}: {ALIAS} {} -> {}", m.function, m.from, m.to))
        .collect();
    for function in &report.unchanged {
        human.push(format!(
            "{function}: {ALIAS} already on its recorded version"
        ));
    }
    progress::result(env, &serde_json::to_value(&report)?, human.join("\n"));
    Ok(())
}

/// Moves every recorded alias back (also called by `deploy --smoke` when
/// the smoke run fails) and consumes the record.
pub fn roll_back(env: &Env, target: &Target) -> Result<Report> {
    let (record, source) = record(env)?;
    let current = aliases(env, target)?;
    let mut report = Report {
        env: env.name.clone(),
        alias: ALIAS.to_owned(),
        source: process::display_path(&env.root, &source),
        ..Report::default()
    };
    let mut targets = BTreeMap::new();
    for (function, previous) in &record {
        let name = env.function_name(function);
        let now = current.get(function).with_context(|| {
            format!("function {name} has no `{ALIAS}` alias any more; deploy again")
        })?;
        // An alias mid-shift points at the old version with weight on the
        // new one: it must move too, to drop the weights.
        if now.version == *previous && now.weights.is_empty() {
            report.unchanged.push(function.clone());
            continue;
        }
        progress::note(format!("{function}: {ALIAS} {} -> {previous}", now.version));
        report.moved.push(Move {
            function: function.clone(),
            function_name: name,
            from: now.version.clone(),
            to: previous.clone(),
        });
        targets.insert(
            function.clone(),
            AliasState {
                version: previous.clone(),
                weights: BTreeMap::new(),
            },
        );
    }
    release::set_aliases(env, target, &targets)?;
    wait::functions_live(env, target)?;
    let now = live_versions(env, target)?;
    for (function, previous) in &record {
        if now.get(function) != Some(previous) {
            bail!(
                "{}'s `{ALIAS}` alias is on version {} after the rollback, not {previous}",
                env.function_name(function),
                now.get(function).map_or("(none)", String::as_str)
            );
        }
    }
    // Consumed: a second rollback is refused until a deploy records anew.
    process::write_json(&rolled_back_file(env), &report)?;
    remove_if_present(&pending_file(env))?;
    remove_if_present(&previous_file(env))?;
    Ok(report)
}
