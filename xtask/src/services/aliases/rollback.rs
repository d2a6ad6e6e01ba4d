//! Rolling back: point each function's `live` alias back to the
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

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::git::{self, Lineage};
use crate::base::progress;
use crate::services::aliases::release::Shift;
use crate::services::aliases::{self, ALIAS, Alias, AliasState, wait};

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
    /// The commit the release shipped (absent in records of older xtask versions, or when
    /// the deploy ran outside a git checkout). Deploy refuses an ancestor of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
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
    /// With nothing unfinished to undo: functions whose alias still carries routing weights
    /// (a shift no record explains; the release check fails on it).
    #[serde(default)]
    pub weighted: Vec<String>,
    /// An unfinished release left alone because it started too recently to be abandoned
    /// ([`Scope::UnfinishedBefore`]): a deploy may still be moving it.
    #[serde(default)]
    pub in_progress: Option<u64>,
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
    /// The commit being released, recorded on every alias it moves.
    pub commit: Option<String>,
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
    let current = aliases::read_aliases(env, target)?;
    let mut pending = Pending {
        id,
        commit: git::head(&env.root),
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
            commit: pending.commit.clone(),
        };
        if let Err(err) =
            aliases::describe(env, target, function, &alias.state, &record.description())
        {
            // Nothing moved yet: put back the records already replaced (best effort), so
            // the release before stays the one `rollback` returns to.
            for (done, description) in &pending.replaced {
                if done != function {
                    let _ = aliases::describe(env, target, done, &current[done].state, description);
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
            commit: pending.commit.clone(),
        };
        aliases::describe(
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
        aliases::describe(env, target, function, &alone(from), description)?;
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

/// The commit of the newest release recorded on the aliases, with that release's id.
fn serving_commit(aliases: &BTreeMap<String, Alias>) -> Option<(u64, String)> {
    let (id, records) = newest(aliases)?;
    let commit = records.into_values().find_map(|r| r.commit)?;
    Some((id, commit))
}

/// Called by `deploy` before it applies anything: refuses to deploy a commit that is an
/// ancestor of the newest release's (a re-run of an old workflow run, or deploys finishing
/// in another order than their commits). Going back is `rollback`'s job; to ship older code
/// on purpose, revert it in a new commit. Deploys nothing when it can't tell (no git
/// checkout, no commit recorded yet, or the recorded commit not in this checkout's history).
pub fn refuse_backwards(env: &Env, target: &Target) -> Result<()> {
    let Some(candidate) = git::head(&env.root) else {
        progress::note(format!(
            "{} is not a git checkout: the release records no commit, and deploy can't check \
             it is not older than the one serving",
            env.root.display()
        ));
        return Ok(());
    };
    let Some((id, serving)) = serving_commit(&aliases::read_aliases(env, target)?) else {
        return Ok(());
    };
    match git::lineage(&env.root, &candidate, &serving)? {
        Lineage::Same | Lineage::NotOlder => Ok(()),
        Lineage::Older => bail!(
            "refusing to deploy {candidate} to `{}`: it is an ancestor of {serving}, the commit \
             of the newest release there ({id}), so it would move `{}` backwards. A re-run of \
             an old workflow run, or a deploy that finished after a newer one, gets here. To go \
             back to the versions served before the last release, run `cargo xtask rollback \
             --env {}`; to ship older code on purpose, revert it in a new commit",
            env.name,
            env.name,
            env.name
        ),
        Lineage::Unknown => {
            progress::note(format!(
                "the newest release on `{}` ({id}) shipped {serving}, which this checkout's \
                 history doesn't hold (a shallow clone, or a commit never fetched): not \
                 checked that {candidate} is newer",
                env.name
            ));
            Ok(())
        }
    }
}

/// Which releases a rollback undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The last release, finished or not.
    Last,
    /// Only a release that has not finished; nothing otherwise (the deploy
    /// workflow runs this after any deploy that did not succeed).
    Unfinished,
    /// Only a release that has not finished and started before this time (milliseconds
    /// since the epoch, as release ids are): one younger may belong to a deploy still
    /// running. The scheduled release check, which can run beside a deploy, uses this.
    UnfinishedBefore(u64),
}

impl Scope {
    /// Whether only an unfinished release is undone (and nothing is an error).
    pub fn only_unfinished(self) -> bool {
        !matches!(self, Scope::Last)
    }

    /// Whether release `id`, unfinished, is left alone as possibly still in progress.
    fn spares(self, id: u64) -> bool {
        matches!(self, Scope::UnfinishedBefore(cutoff) if id >= cutoff)
    }
}

/// Functions whose `live` alias carries routing weights, i.e. is split between versions.
fn weighted(aliases: &BTreeMap<String, Alias>) -> Vec<String> {
    aliases
        .iter()
        .filter(|(_, a)| !a.state.weights.is_empty())
        .map(|(f, _)| f.clone())
        .collect()
}

pub fn nothing(env: &Env, why: &str) -> Report {
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
    let current = aliases::read_aliases(env, target)?;
    let Some((id, records)) = newest(&current) else {
        if scope.only_unfinished() {
            return Ok(Report {
                weighted: weighted(&current),
                ..nothing(env, "no release is recorded on the aliases")
            });
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
    if scope.only_unfinished() && !unfinished {
        return Ok(Report {
            weighted: weighted(&current),
            ..nothing(env, &format!("release {id} finished"))
        });
    }
    if unfinished && scope.spares(id) {
        return Ok(Report {
            in_progress: Some(id),
            ..nothing(
                env,
                &format!("release {id} has not finished but started too recently to be abandoned"),
            )
        });
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
    aliases::set_aliases(env, target, &targets)?;
    wait::functions_live(env, target)?;
    let now = aliases::live_versions(env, target)?;
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
        aliases::describe(
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
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        };
        let description = record.description();
        assert!(description.starts_with(DESCRIPTION), "{description}");
        assert!(description.len() <= 256, "{}", description.len());
        assert_eq!(Record::parse(&description), Some(record));
        // A record written before releases carried their commit still reads.
        let old = format!(
            "{DESCRIPTION}; {MARK}{{\"release\":1,\"state\":\"released\",\"previous\":\"1\",\"next\":\"2\"}}"
        );
        assert_eq!(Record::parse(&old).unwrap().commit, None);
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
            commit: Some("a".into()),
        };
        let new = Record {
            release: 2,
            state: State::Releasing,
            previous: "5".into(),
            next: "6".into(),
            commit: Some("b".into()),
        };
        let aliases = BTreeMap::from([
            ("users".to_owned(), alias("2", &old.description())),
            ("health".to_owned(), alias("5", &new.description())),
            ("sessions".to_owned(), alias("1", DESCRIPTION)),
        ]);
        assert_eq!(serving_commit(&aliases), Some((2, "b".to_owned())));
        let (id, records) = newest(&aliases).unwrap();
        assert_eq!(id, 2);
        assert_eq!(records, BTreeMap::from([("health".to_owned(), new)]));
        let none = BTreeMap::from([("users".to_owned(), alias("1", DESCRIPTION))]);
        assert!(newest(&none).is_none());
    }

    #[test]
    fn the_release_check_spares_a_young_release_and_reports_weights() {
        assert!(Scope::UnfinishedBefore(100).spares(100));
        assert!(Scope::UnfinishedBefore(100).spares(101));
        assert!(!Scope::UnfinishedBefore(100).spares(99));
        assert!(!Scope::Unfinished.spares(u64::MAX));
        assert!(!Scope::Last.spares(u64::MAX));
        assert!(Scope::Unfinished.only_unfinished() && !Scope::Last.only_unfinished());
        let mut split = alias("3", DESCRIPTION);
        split.state.weights.insert("4".into(), 0.1);
        let aliases = BTreeMap::from([
            ("users".to_owned(), split),
            ("health".to_owned(), alias("5", DESCRIPTION)),
        ]);
        assert_eq!(weighted(&aliases), vec!["users".to_owned()]);
    }

    #[test]
    fn a_release_is_back_only_when_every_alias_is_on_its_old_version_alone() {
        let pending = Pending {
            id: 1,
            commit: None,
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
