//! How a release moves traffic to new versions: the environment's
//! `[options.traffic_shifting]` or `deploy --shift`. Part of the environment's
//! configuration, so it lives beside `env` where the command line, the
//! environment and the release all reach it without importing each other.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result, bail};

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
}
