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
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde::Serialize;

use crate::aws::Target;
use crate::env::Env;
use crate::rollback::Versions;
use crate::wait::ALIAS;
use crate::{local, process, progress};

/// How often alarms are read while traffic bakes on a step.
const ALARM_POLL: Duration = Duration::from_secs(5);

/// How traffic moves to the new versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce,
    /// `percent` for `interval`, then everything.
    Canary {
        percent: u32,
        interval: Duration,
    },
    /// `percent` more every `interval` until everything.
    Linear {
        percent: u32,
        interval: Duration,
    },
}

impl Strategy {
    /// The environment's `[options.traffic_shifting]`; none means all at once.
    pub fn from_config(shifting: Option<&infra::config::TrafficShifting>) -> Strategy {
        let Some(shift) = shifting else {
            return Strategy::AllAtOnce;
        };
        let interval = Duration::from_secs(u64::from(shift.interval_minutes) * 60);
        match shift.kind {
            infra::config::ShiftKind::Canary => Strategy::Canary {
                percent: shift.percentage,
                interval,
            },
            infra::config::ShiftKind::Linear => Strategy::Linear {
                percent: shift.percentage,
                interval,
            },
        }
    }

    /// `all-at-once`, `canary:10:5m` or `linear:25:1m` (the `--shift` flag).
    pub fn parse(spec: &str) -> Result<Strategy> {
        let usage = || {
            format!(
                "`{spec}` is not a traffic shift: use `all-at-once`, `canary:PERCENT:INTERVAL` \
                 or `linear:PERCENT:INTERVAL`, e.g. `canary:10:5m`"
            )
        };
        if spec == "all-at-once" {
            return Ok(Strategy::AllAtOnce);
        }
        let mut parts = spec.split(':');
        let (Some(kind), Some(percent), Some(interval), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!(usage());
        };
        let percent: u32 = percent.trim_end_matches('%').parse().with_context(usage)?;
        if !(1..=99).contains(&percent) {
            bail!("{}: PERCENT must be 1..=99", usage());
        }
        let interval = humantime::parse_duration(interval).with_context(usage)?;
        match kind {
            "canary" => Ok(Strategy::Canary { percent, interval }),
            "linear" => Ok(Strategy::Linear { percent, interval }),
            _ => bail!(usage()),
        }
    }

    /// Percent of the traffic on the new versions after each step; the last is 100.
    pub fn steps(&self) -> Vec<u32> {
        match *self {
            Strategy::AllAtOnce => vec![100],
            Strategy::Canary { percent, .. } => vec![percent, 100],
            Strategy::Linear { percent, .. } => (1..)
                .map(|i| i * percent)
                .take_while(|p| *p < 100)
                .chain([100])
                .collect(),
        }
    }

    /// How long traffic stays on each step before the next.
    pub fn interval(&self) -> Duration {
        match *self {
            Strategy::AllAtOnce => Duration::ZERO,
            Strategy::Canary { interval, .. } | Strategy::Linear { interval, .. } => interval,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::AllAtOnce => f.write_str("all-at-once"),
            Strategy::Canary { percent, interval } => write!(
                f,
                "canary:{percent}:{}",
                humantime::format_duration(*interval)
            ),
            Strategy::Linear { percent, interval } => write!(
                f,
                "linear:{percent}:{}",
                humantime::format_duration(*interval)
            ),
        }
    }
}

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

/// The alias state of one function: its primary version and, during a
/// shift, the weight of the new one.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
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
        let state: BTreeMap<String, AliasState> = shifts
            .iter()
            .map(|(function, shift)| (function.clone(), step_state(shift, percent)))
            .collect();
        set_aliases(env, target, &state)?;
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
        if let Err(err) = watch(target, &gate, bake) {
            let back: BTreeMap<String, AliasState> = shifts
                .iter()
                .map(|(function, shift)| (function.clone(), step_state(shift, 0)))
                .collect();
            set_aliases(env, target, &back).context(
                "moving the aliases back after the alarm failed too; run `cargo xtask rollback`",
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

/// Points each function's `live` alias as given and, locally, waits until
/// the local API server routes the same way.
pub fn set_aliases(env: &Env, target: &Target, state: &BTreeMap<String, AliasState>) -> Result<()> {
    process::block_on(async {
        let lambda = target.lambda().await;
        for (function, alias) in state {
            let name = env.function_name(function);
            if env.emulated {
                injected_failure(function, &name)?;
            }
            let weights = alias.weights.iter().map(|(v, w)| (v.clone(), *w)).collect();
            lambda
                .update_alias()
                .function_name(&name)
                .name(ALIAS)
                .function_version(&alias.version)
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .set_additional_version_weights(Some(weights))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "moving {name}'s `{ALIAS}` alias to version {}: {}",
                        alias.version,
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    )
                })?;
        }
        anyhow::Ok(())
    })?;
    if env.emulated {
        local::follow_aliases(env, state)?;
    }
    Ok(())
}

/// `XTASK_INJECT_ALIAS_ERROR=FUNCTION:N`, honoured against the emulator only:
/// the N-th and every later move of FUNCTION's alias in this process fails as
/// an AWS error would. The life-cycle tests use it to fail a release half-way
/// (moto has no fault injection of its own) and prove it is rolled back.
fn injected_failure(function: &str, name: &str) -> Result<()> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static MOVES: AtomicU32 = AtomicU32::new(0);
    let Ok(spec) = std::env::var("XTASK_INJECT_ALIAS_ERROR") else {
        return Ok(());
    };
    let Some((which, nth)) = spec.split_once(':') else {
        bail!("XTASK_INJECT_ALIAS_ERROR is FUNCTION:N, not `{spec}`");
    };
    let nth: u32 = nth
        .parse()
        .with_context(|| format!("XTASK_INJECT_ALIAS_ERROR is FUNCTION:N, not `{spec}`"))?;
    if which == function && MOVES.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        bail!(
            "moving {name}'s `{ALIAS}` alias: ServiceException: injected by \
             XTASK_INJECT_ALIAS_ERROR={spec}"
        );
    }
    Ok(())
}

/// Watches the gate alarms for `bake` (at least one read); an error names
/// the alarms that fired.
fn watch(target: &Target, gate: &[String], bake: Duration) -> Result<()> {
    if gate.is_empty() {
        std::thread::sleep(bake);
        return Ok(());
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
        std::thread::sleep(left.min(ALARM_POLL));
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
    fn steps_end_at_everything() {
        assert_eq!(Strategy::AllAtOnce.steps(), vec![100]);
        let canary = Strategy::parse("canary:10:5m").unwrap();
        assert_eq!(canary.steps(), vec![10, 100]);
        assert_eq!(canary.interval(), Duration::from_secs(300));
        assert_eq!(
            Strategy::parse("linear:30:1m").unwrap().steps(),
            vec![30, 60, 90, 100]
        );
        assert_eq!(
            Strategy::parse("linear:25:10s").unwrap().steps(),
            vec![25, 50, 75, 100]
        );
    }

    #[test]
    fn parse_round_trips_and_names_the_forms() {
        for spec in ["all-at-once", "canary:10:5m", "linear:25:30s"] {
            assert_eq!(Strategy::parse(spec).unwrap().to_string(), spec);
        }
        for bad in [
            "canary",
            "canary:0:1m",
            "canary:100:1m",
            "blue:10:1m",
            "canary:10:soon",
        ] {
            let err = format!("{:#}", Strategy::parse(bad).unwrap_err());
            assert!(err.contains("canary:PERCENT:INTERVAL"), "{bad}: {err}");
        }
    }

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
