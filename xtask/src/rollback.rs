//! `cargo xtask rollback`: point each function's `live` alias back to the
//! version it served before the last release, with all the traffic and no
//! routing weights. Nothing is rebuilt or re-applied: Lambda keeps every
//! published version, so moving the alias is enough and takes seconds.
//!
//! The record lives with the deployment, not with the machine that deployed:
//! each moved alias's description carries what the release did to it,
//! `The version API Gateway serves; xtask-release:{"release":1712..,"state":
//! "releasing","previous":"3","next":"4"}`. So a rollback works from any
//! checkout with access to the account (a later workflow run, a laptop), and a
//! runner that died mid-release leaves a record the next one can act on.
//! Terraform ignores the description after creating the alias (infra's
//! `lifecycle.ignore_changes`), as it ignores where the alias points.
//!
//! The life of a record:
//! - `releasing`: written on every alias a release will move, before it moves
//!   any. A release stays `releasing` until its last gate (the smoke run of
//!   `deploy --smoke`) passed, so a deploy killed, cancelled or failing at any
//!   point of it leaves a release that `rollback --unfinished` undoes.
//! - `released`: the release finished; `rollback` returns to `previous`.
//! - `rolled-back`: the release was undone. A second rollback is refused
//!   until a new release: rolling "back" twice would roll forward again.
//!
//! The newest release (by its id, the time it started) across the functions is
//! the one rollback acts on; records of older releases are history. A release
//! that an alarm stopped and moved back by itself restores the records it
//! replaced, so the release before it stays the one to roll back.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aws_sdk_lambda::types::AliasRoutingConfiguration;

use crate::aws::Target;
use crate::cli::RollbackArgs;
use crate::env::{Env, FUNCTIONS};
use crate::release::{self, AliasState, Shift};
use crate::wait::ALIAS;
use crate::{local, process, progress, wait};

/// Version of the `live` alias per function (`health`, `users`, ...).
pub type Versions = BTreeMap<String, String>;

/// What precedes the record in an alias description (Terraform's own text).
const DESCRIPTION: &str = "The version API Gateway serves";
/// Marks where the record starts in the description.
const MARK: &str = "xtask-release:";

/// Where a release is in its life (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Releasing,
    Released,
    RolledBack,
}

/// What one release did to one function's alias, kept in its description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The release's id: milliseconds since the epoch when it started, shared
    /// by every function it moves, so the newest release is the highest id.
    pub release: u64,
    pub state: State,
    /// The version the alias served before the release: where rollback goes.
    pub previous: String,
    /// The version the release moves the alias to.
    pub next: String,
}

impl Record {
    /// The alias description carrying this record (well under Lambda's 256 characters).
    fn description(&self) -> String {
        let json = serde_json::to_string(self).expect("a record serializes");
        format!("{DESCRIPTION}; {MARK}{json}")
    }

    /// The record in an alias description, if it holds one.
    pub fn parse(description: &str) -> Option<Record> {
        let (_, json) = description.split_once(MARK)?;
        serde_json::from_str(json).ok()
    }
}

/// One alias moved by a rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Move {
    pub function: String,
    pub function_name: String,
    pub from: String,
    pub to: String,
}

/// What `rollback` did; printed with `--json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub env: String,
    pub alias: String,
    /// Where the versions came from: the release recorded on the aliases.
    pub source: String,
    /// The id of the release undone (absent when there was nothing to undo).
    pub release: Option<u64>,
    /// Whether that release had not finished (a deploy stopped mid-release).
    pub unfinished: bool,
    pub moved: Vec<Move>,
    /// Functions whose alias already served the recorded version.
    pub unchanged: Vec<String>,
}

/// One `live` alias as Lambda returns it.
#[derive(Debug, Clone)]
pub struct Alias {
    pub state: AliasState,
    pub description: String,
}

/// The files that earlier versions of xtask kept the record in (it now lives
/// on the aliases); removed with a discarded emulator's state.
pub fn state_files(env: &Env) -> [std::path::PathBuf; 3] {
    [
        "previous-versions.json",
        "deploy-in-progress.json",
        "rolled-back.json",
    ]
    .map(|name| env.dir().join(name))
}

/// The `live` alias of every function that has one: version, weights and description.
pub fn read_aliases(env: &Env, target: &Target) -> Result<BTreeMap<String, Alias>> {
    process::block_on(async {
        let lambda = target.lambda().await;
        let mut aliases = BTreeMap::new();
        for &function in FUNCTIONS {
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
                            Alias {
                                state: AliasState {
                                    version: version.to_owned(),
                                    weights,
                                },
                                description: alias.description().unwrap_or_default().to_owned(),
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

/// The `live` alias of every function that has one: version and weights.
pub fn aliases(env: &Env, target: &Target) -> Result<BTreeMap<String, AliasState>> {
    Ok(read_aliases(env, target)?
        .into_iter()
        .map(|(function, alias)| (function, alias.state))
        .collect())
}

/// The `live` alias's primary version of every function that has one.
pub fn live_versions(env: &Env, target: &Target) -> Result<Versions> {
    Ok(aliases(env, target)?
        .into_iter()
        .map(|(function, alias)| (function, alias.version))
        .collect())
}

/// Writes `description` on a function's alias, restating where it points (`at`, what the
/// caller just read or set) rather than relying on UpdateAlias leaving omitted fields alone.
fn describe(
    env: &Env,
    target: &Target,
    function: &str,
    at: &AliasState,
    description: &str,
) -> Result<()> {
    let name = env.function_name(function);
    let weights = at.weights.iter().map(|(v, w)| (v.clone(), *w)).collect();
    process::block_on(async {
        target
            .lambda()
            .await
            .update_alias()
            .function_name(&name)
            .name(ALIAS)
            .function_version(&at.version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(weights))
                    .build(),
            )
            .description(description)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "recording the release on {name}'s `{ALIAS}` alias: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                )
            })
    })?;
    Ok(())
}

/// An alias on `version` with all the traffic.
fn alone(version: &str) -> AliasState {
    AliasState {
        version: version.to_owned(),
        weights: BTreeMap::new(),
    }
}

/// A release in progress, as `deploy` holds it between [`begin`] and [`finish`].
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: u64,
    pub shifts: BTreeMap<String, Shift>,
    /// Each moving alias's description before the release, to restore when
    /// the release moved back by itself.
    replaced: BTreeMap<String, String>,
}

impl Pending {
    /// Whether every alias of the release is back on its old version, alone.
    pub fn is_back(&self, now: &BTreeMap<String, AliasState>) -> bool {
        self.shifts.iter().all(|(function, shift)| {
            now.get(function)
                .is_some_and(|a| a.version == shift.from && a.weights.is_empty())
        })
    }
}

/// Called by `deploy` before a release moves anything: marks every alias it
/// will move as `releasing`, with the version to go back to.
pub fn begin(env: &Env, target: &Target, shifts: &BTreeMap<String, Shift>) -> Result<Pending> {
    let id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_millis() as u64;
    let current = read_aliases(env, target)?;
    let mut pending = Pending {
        id,
        shifts: shifts.clone(),
        replaced: BTreeMap::new(),
    };
    for (function, shift) in shifts {
        let alias = current.get(function).with_context(|| {
            format!(
                "function {} has no `{ALIAS}` alias to release onto",
                env.function_name(function)
            )
        })?;
        pending
            .replaced
            .insert(function.clone(), alias.description.clone());
        let record = Record {
            release: id,
            state: State::Releasing,
            previous: shift.from.clone(),
            next: shift.to.clone(),
        };
        if let Err(err) = describe(env, target, function, &alias.state, &record.description()) {
            // Nothing moved yet: put back the records already replaced (best effort), so
            // the release before stays the one `rollback` returns to.
            for (done, description) in &pending.replaced {
                if done != function {
                    let _ = describe(env, target, done, &current[done].state, description);
                }
            }
            return Err(err);
        }
    }
    Ok(pending)
}

/// Called by `deploy` once the release passed its last gate.
pub fn finish(env: &Env, target: &Target, pending: &Pending) -> Result<()> {
    for (function, shift) in &pending.shifts {
        let record = Record {
            release: pending.id,
            state: State::Released,
            previous: shift.from.clone(),
            next: shift.to.clone(),
        };
        describe(
            env,
            target,
            function,
            &alone(&shift.to),
            &record.description(),
        )?;
    }
    Ok(())
}

/// Called by `deploy` when its release was stopped and already moved back:
/// nothing changed, so the records it replaced hold again.
pub fn abandon(env: &Env, target: &Target, pending: &Pending) -> Result<()> {
    for (function, description) in &pending.replaced {
        let from = &pending.shifts[function].from;
        describe(env, target, function, &alone(from), description)?;
    }
    Ok(())
}

/// The newest release recorded on the aliases: its id and, per function, its record.
fn newest(aliases: &BTreeMap<String, Alias>) -> Option<(u64, BTreeMap<String, Record>)> {
    let records: BTreeMap<String, Record> = aliases
        .iter()
        .filter_map(|(f, a)| Some((f.clone(), Record::parse(&a.description)?)))
        .collect();
    let id = records.values().map(|r| r.release).max()?;
    Some((
        id,
        records
            .into_iter()
            .filter(|(_, r)| r.release == id)
            .collect(),
    ))
}

/// Which releases a rollback undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The last release, finished or not.
    Last,
    /// Only a release that has not finished; nothing otherwise (the deploy
    /// workflow runs this after any deploy that did not succeed).
    Unfinished,
}

pub fn run(env: &Env, args: RollbackArgs) -> Result<()> {
    let scope = if args.unfinished {
        Scope::Unfinished
    } else {
        Scope::Last
    };
    let target = if env.emulated {
        match local::running_moto(env) {
            Some(moto) => Target::emulator(env, &moto.endpoint),
            None if scope == Scope::Unfinished => {
                progress::note(format!(
                    "the emulator of `{}` is not running: no release there to finish",
                    env.name
                ));
                return report(env, &nothing(env, "no emulator running"));
            }
            None => bail!(
                "nothing to roll back to for `{}`: its emulator is not running, so nothing is \
                 deployed there (`cargo xtask deploy --env {}` first)",
                env.name,
                env.name
            ),
        }
    } else {
        let target = Target::real(env);
        let (account, arn) = process::block_on(crate::aws::caller_identity(&target))?;
        progress::step(format!(
            "Rolling back `{}` in account {account} ({}) as {arn}",
            env.name, env.region
        ));
        target
    };
    report(env, &roll_back(env, &target, scope)?)
}

fn report(env: &Env, report: &Report) -> Result<()> {
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
    if report.release.is_none() {
        human.push(format!("nothing to roll back: {}", report.source));
    }
    progress::result(env, &serde_json::to_value(report)?, human.join("\n"));
    Ok(())
}

fn nothing(env: &Env, why: &str) -> Report {
    Report {
        env: env.name.clone(),
        alias: ALIAS.to_owned(),
        source: why.to_owned(),
        ..Report::default()
    }
}

/// Moves every alias of the newest recorded release back to its previous
/// version (also called by `deploy` when a release fails) and marks the
/// release rolled back.
pub fn roll_back(env: &Env, target: &Target, scope: Scope) -> Result<Report> {
    let current = read_aliases(env, target)?;
    let Some((id, records)) = newest(&current) else {
        if scope == Scope::Unfinished {
            return Ok(nothing(env, "no release is recorded on the aliases"));
        }
        bail!(
            "nothing to roll back to for `{}`: no `{ALIAS}` alias records a release (a first \
             deploy creates the aliases and moves none, so there is no earlier version). \
             Rollback returns to the versions served before the last `cargo xtask deploy --env \
             {}` that changed a function",
            env.name,
            env.name
        );
    };
    let unfinished = records.values().any(|r| r.state == State::Releasing);
    if scope == Scope::Unfinished && !unfinished {
        return Ok(nothing(env, &format!("release {id} finished")));
    }
    if records.values().all(|r| r.state == State::RolledBack) {
        let moves: Vec<String> = records
            .iter()
            .map(|(f, r)| format!("{f}: {ALIAS} {} -> {}", r.next, r.previous))
            .collect();
        bail!(
            "`{}` was already rolled back ({}); there is nothing older recorded to roll back to. \
             Deploy a fixed version with `cargo xtask deploy --env {}`",
            env.name,
            moves.join(", "),
            env.name
        );
    }
    let mut report = Report {
        env: env.name.clone(),
        alias: ALIAS.to_owned(),
        source: format!("release {id} recorded on the `{ALIAS}` aliases"),
        release: Some(id),
        unfinished,
        ..Report::default()
    };
    let mut targets = BTreeMap::new();
    for (function, record) in &records {
        let name = env.function_name(function);
        let now = &current[function].state;
        // An alias mid-shift points at the old version with weight on the
        // new one: it must move too, to drop the weights.
        if now.version == record.previous && now.weights.is_empty() {
            report.unchanged.push(function.clone());
            continue;
        }
        let weights: Vec<String> = now
            .weights
            .iter()
            .map(|(version, weight)| format!(" + {:.0}% on {version}", weight * 100.0))
            .collect();
        progress::note(format!(
            "{function}: {ALIAS} {}{} -> {}",
            now.version,
            weights.concat(),
            record.previous
        ));
        report.moved.push(Move {
            function: function.clone(),
            function_name: name,
            from: now.version.clone(),
            to: record.previous.clone(),
        });
        targets.insert(
            function.clone(),
            AliasState {
                version: record.previous.clone(),
                weights: BTreeMap::new(),
            },
        );
    }
    release::set_aliases(env, target, &targets)?;
    wait::functions_live(env, target)?;
    let now = live_versions(env, target)?;
    for (function, record) in &records {
        if now.get(function) != Some(&record.previous) {
            bail!(
                "{}'s `{ALIAS}` alias is on version {} after the rollback, not {}",
                env.function_name(function),
                now.get(function).map_or("(none)", String::as_str),
                record.previous
            );
        }
    }
    // Consumed: a second rollback is refused until a release records anew.
    for (function, record) in &records {
        let done = Record {
            state: State::RolledBack,
            ..record.clone()
        };
        describe(
            env,
            target,
            function,
            &alone(&record.previous),
            &done.description(),
        )?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(version: &str, description: &str) -> Alias {
        Alias {
            state: AliasState {
                version: version.to_owned(),
                weights: BTreeMap::new(),
            },
            description: description.to_owned(),
        }
    }

    #[test]
    fn a_record_round_trips_through_the_description_within_lambdas_limit() {
        let record = Record {
            release: u64::MAX,
            state: State::RolledBack,
            previous: "123456".into(),
            next: "123457".into(),
        };
        let description = record.description();
        assert!(description.starts_with(DESCRIPTION), "{description}");
        assert!(description.len() <= 256, "{}", description.len());
        assert_eq!(Record::parse(&description), Some(record));
        assert_eq!(Record::parse(DESCRIPTION), None);
        assert_eq!(Record::parse(""), None);
    }

    #[test]
    fn the_newest_release_is_the_one_undone() {
        let old = Record {
            release: 1,
            state: State::Released,
            previous: "1".into(),
            next: "2".into(),
        };
        let new = Record {
            release: 2,
            state: State::Releasing,
            previous: "5".into(),
            next: "6".into(),
        };
        let aliases = BTreeMap::from([
            ("users".to_owned(), alias("2", &old.description())),
            ("health".to_owned(), alias("5", &new.description())),
            ("sessions".to_owned(), alias("1", DESCRIPTION)),
        ]);
        let (id, records) = newest(&aliases).unwrap();
        assert_eq!(id, 2);
        assert_eq!(records, BTreeMap::from([("health".to_owned(), new)]));
        let none = BTreeMap::from([("users".to_owned(), alias("1", DESCRIPTION))]);
        assert!(newest(&none).is_none());
    }

    #[test]
    fn a_release_is_back_only_when_every_alias_is_on_its_old_version_alone() {
        let pending = Pending {
            id: 1,
            shifts: BTreeMap::from([(
                "users".to_owned(),
                Shift {
                    from: "3".into(),
                    to: "4".into(),
                },
            )]),
            replaced: BTreeMap::new(),
        };
        let at = |version: &str, weights: &[(&str, f64)]| {
            BTreeMap::from([(
                "users".to_owned(),
                AliasState {
                    version: version.to_owned(),
                    weights: weights.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect(),
                },
            )])
        };
        assert!(pending.is_back(&at("3", &[])));
        assert!(!pending.is_back(&at("3", &[("4", 0.5)])));
        assert!(!pending.is_back(&at("4", &[])));
        assert!(!pending.is_back(&BTreeMap::new()));
    }
}
