//! Releasing: moving each function's `live` alias onto the version a deploy
//! published, all at once or in canary/linear steps, with the environment's
//! alarms as the gate.
//!
//! Terraform publishes versions and never moves the alias after creating it;
//! this module moves it. It drives Lambda's weighted alias routing
//! (`RoutingConfig.AdditionalVersionWeights`), the mechanism CodeDeploy uses
//! underneath, rather than starting CodeDeploy deployments, because:
//! - the same code path runs against the emulator, which stores versions and
//!   alias weights but has no CodeDeploy engine, so canary steps, the alarm
//!   gate and the automatic rollback are tested offline, end to end;
//! - the smoke run against the new version is a gate of the release itself
//!   (`deploy --smoke`), with no hook Lambda to deploy per environment;
//! - one release moves all changed functions together: a canary of `users`
//!   without the matching `sessions` would mix versions inside one request
//!   flow for longer than needed.
//!
//! Alarms already firing when a release starts are reported but are not a
//! gate: a fix for the very problem they report must be able to go out.
//! A release interrupted half-way (the process killed during a bake, an AWS
//! call failing) leaves weights on the alias; `cargo xtask rollback
//! --unfinished` removes them, from any machine, because deploy recorded the
//! release on every alias it moves before it moved any (`rollback`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudwatch::types::StateValue;
use serde::Serialize;

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::release_strategy::Strategy;
use crate::base::{process, progress, signals};
use crate::services::aliases::{self, AliasState, Versions};

/// How often alarms are read while traffic bakes on a step.
const ALARM_POLL: Duration = Duration::from_secs(5);

/// One function's move.
#[derive(Debug, Clone, Serialize)]
pub struct Shift {
    pub from: String,
    pub to: String,
}

/// What a release did, part of deploy's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub strategy: String,
    /// Per function: the version it left and the one it went to.
    pub functions: BTreeMap<String, Shift>,
    /// Percent on the new versions at each completed step.
    pub steps: Vec<u32>,
    /// Alarms that were already firing when the release started (no gate).
    pub already_firing: Vec<String>,
}

/// The functions whose `live` alias moves: those whose version in `to`
/// differs from the one they serve (`from`).
pub fn shifts(from: &Versions, to: &Versions) -> BTreeMap<String, Shift> {
    to.iter()
        .filter_map(|(function, new)| {
            let old = from.get(function)?;
            (old != new).then(|| {
                (
                    function.clone(),
                    Shift {
                        from: old.clone(),
                        to: new.clone(),
                    },
                )
            })
        })
        .collect()
}

/// Moves every function in `shifts` from its old version to its new one,
/// step by step. When an alarm fires, everything goes back to the old
/// versions and the error says which alarm at which step. Any other error
/// (an AWS call failing) can leave aliases anywhere between: the caller
/// recorded the release first (`rollback::begin`) and rolls it back.
pub fn run(
    env: &Env,
    target: &Target,
    shifts: &BTreeMap<String, Shift>,
    strategy: &Strategy,
    alarms: &[String],
) -> Result<Report> {
    let mut report = Report {
        strategy: strategy.to_string(),
        functions: shifts.clone(),
        ..Report::default()
    };
    if shifts.is_empty() {
        return Ok(report);
    }
    let moves: Vec<String> = shifts
        .iter()
        .map(|(f, s)| format!("{f} {} -> {}", s.from, s.to))
        .collect();
    progress::step(format!("Releasing ({strategy}): {}", moves.join(", ")));
    if alarms.is_empty() {
        progress::note("the outputs name no alarms: this release has no alarm gate");
    }
    report.already_firing = firing(target, alarms)?;
    if !report.already_firing.is_empty() {
        progress::note(format!(
            "already in ALARM before the release, so not used as its gate: {}",
            report.already_firing.join(", ")
        ));
    }
    let gate: Vec<String> = alarms
        .iter()
        .filter(|a| !report.already_firing.contains(a))
        .cloned()
        .collect();

    let steps = strategy.steps();
    for (i, percent) in steps.iter().copied().enumerate() {
        // Stopped before this step: deploy's recovery moves everything back.
        signals::check(&format!("release step {}/{}", i + 1, steps.len()))?;
        let state: BTreeMap<String, AliasState> = shifts
            .iter()
            .map(|(function, shift)| (function.clone(), step_state(shift, percent)))
            .collect();
        aliases::set_aliases(env, target, &state)?;
        report.steps.push(percent);
        progress::note(format!(
            "step {}/{}: {percent}% of the traffic on the new versions",
            i + 1,
            steps.len()
        ));
        let bake = if percent < 100 {
            strategy.interval()
        } else {
            Duration::ZERO
        };
        if let Err(err) = watch_alarms(target, &gate, bake) {
            let back: BTreeMap<String, AliasState> = shifts
                .iter()
                .map(|(function, shift)| (function.clone(), step_state(shift, 0)))
                .collect();
            aliases::set_aliases(env, target, &back).context(
                "moving the aliases back after the alarm or signal failed too; run `cargo xtask \
                 rollback`",
            )?;
            let previous: Vec<String> = shifts
                .iter()
                .map(|(f, s)| format!("{f} on {}", s.from))
                .collect();
            return Err(err.context(format!(
                "the release stopped at {percent}% and was rolled back: every function is on \
                 its previous version again ({})",
                previous.join(", ")
            )));
        }
    }
    Ok(report)
}

/// The alias of one function after a step: the old version with a weight on
/// the new one, or the new one alone at 100%, or the old one alone at 0%.
fn step_state(shift: &Shift, percent: u32) -> AliasState {
    match percent {
        0 => AliasState {
            version: shift.from.clone(),
            weights: BTreeMap::new(),
        },
        100.. => AliasState {
            version: shift.to.clone(),
            weights: BTreeMap::new(),
        },
        p => AliasState {
            version: shift.from.clone(),
            weights: BTreeMap::from([(shift.to.clone(), f64::from(p) / 100.0)]),
        },
    }
}

/// Watches the gate alarms for `bake` (at least one read); an error names
/// the alarms that fired.
/// A SIGINT or SIGTERM ends it early with an error, like an alarm (`signals`).
fn watch_alarms(target: &Target, gate: &[String], bake: Duration) -> Result<()> {
    if gate.is_empty() {
        return signals::sleep(bake);
    }
    let until = Instant::now() + bake;
    loop {
        let fired = firing(target, gate)?;
        if !fired.is_empty() {
            bail!("alarm(s) fired during the release: {}", fired.join(", "));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        signals::sleep(left.min(ALARM_POLL))?;
    }
}

/// The alarms among `names` that are in ALARM now.
fn firing(target: &Target, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    process::block_on(async {
        let cloudwatch = target.cloudwatch().await;
        let mut fired = Vec::new();
        // DescribeAlarms takes at most 100 names per call.
        for chunk in names.chunks(100) {
            let out = cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reading the release's alarms: {}",
                        aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                    )
                })?;
            fired.extend(
                out.metric_alarms()
                    .iter()
                    .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                    .filter_map(|a| a.alarm_name().map(str::to_owned)),
            );
        }
        Ok(fired)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_weighs_the_new_version_on_the_old_one() {
        let shift = Shift {
            from: "3".into(),
            to: "4".into(),
        };
        let canary = step_state(&shift, 10);
        assert_eq!(canary.version, "3");
        assert_eq!(canary.weights, BTreeMap::from([("4".to_owned(), 0.1)]));
        assert_eq!(step_state(&shift, 100).version, "4");
        assert!(step_state(&shift, 100).weights.is_empty());
        assert_eq!(step_state(&shift, 0).version, "3");
    }
}
