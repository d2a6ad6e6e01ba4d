//! EventBridge Scheduler, on loopback: every declared schedule (`catalog::schedules()`) fires
//! on its clock and invokes its function through the same pools the API's requests use, with
//! the event Scheduler sends on AWS (`catalog::schedules::event`, the input infra gives the
//! schedule). `cargo xtask invoke NAME --schedule` sends the same event on demand ([`event`]).
//!
//! Where it differs from Scheduler (`docs/development.md`, "The local event loop"): a `rate`
//! schedule's first run is one period after the server starts (Scheduler counts from the
//! schedule's creation), `cron` runs in UTC as Scheduler does by default, and a failed run is
//! logged, not retried (Scheduler retries per the schedule's retry policy).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use croner::parser::{CronParser, Seconds, Year};
use tokio::task::JoinHandle;

use crate::deployment::Deployment;
use crate::traffic::Table;

/// When a schedule fires.
#[derive(Debug)]
pub enum Clock {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Clock {
    /// The clock of a declared expression (which the catalog has checked).
    pub fn of(expression: &str) -> Result<Clock, String> {
        match catalog::schedules::parse(expression)? {
            catalog::schedules::Expression::Rate { seconds } => {
                Ok(Clock::Every(Duration::from_secs(seconds)))
            }
            catalog::schedules::Expression::Cron { fields } => {
                // Scheduler's six fields are Quartz's seven without the seconds, and its
                // weekdays count 1-7 from Sunday as Quartz's do.
                let parser = CronParser::builder()
                    .seconds(Seconds::Required)
                    .year(Year::Required)
                    .alternative_weekdays(true)
                    .build();
                parser
                    .parse(&format!("0 {}", fields.join(" ")))
                    .map(|cron| Clock::Cron(Box::new(cron)))
                    .map_err(|e| format!("schedule expression `{expression}`: {e}"))
            }
        }
    }

    /// The next time after `now` it fires; `None`: never again (a cron with a past year).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Clock::Every(period) => Some(now + *period),
            Clock::Cron(cron) => cron.find_next_occurrence(&now, false).ok(),
        }
    }
}

/// The ARN infra gives schedule `name` in this deployment (the default schedule group).
pub fn arn(deployment: &Deployment, name: &str) -> String {
    format!(
        "arn:aws:scheduler:{}:{}:schedule/default/{}{}",
        deployment.region,
        deployment.account,
        deployment.prefix(),
        catalog::schedules::aws_suffix(name)
    )
}

/// The event `schedule` sends when it fires at `time`, as Scheduler fills in its input.
pub fn event(deployment: &Deployment, schedule: &catalog::Schedule, time: DateTime<Utc>) -> String {
    let execution_id = uuid::Uuid::new_v4().to_string();
    let scheduled_time = time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let schedule_arn = arn(deployment, schedule.name);
    catalog::schedules::event(
        schedule.input,
        catalog::schedules::Context {
            execution_id: &execution_id,
            scheduled_time: &scheduled_time,
            schedule_arn: &schedule_arn,
        },
        &deployment.account,
        &deployment.region,
    )
}

/// Starts one clock per declared schedule (each firing `every` this long instead, if given);
/// they run until their handles are aborted. A schedule whose expression the local clock
/// cannot read is reported and left out.
pub fn spawn(
    deployment: &Deployment,
    table: Arc<Table>,
    every: Option<Duration>,
) -> Vec<JoinHandle<()>> {
    catalog::schedules()
        .map(|(function, schedule)| {
            let clock = match every {
                Some(period) => Ok(Clock::Every(period)),
                None => Clock::of(schedule.expression),
            };
            (function, schedule, clock)
        })
        .filter_map(|(function, schedule, clock)| match clock {
            Ok(clock) => Some(tokio::spawn(fire(
                deployment.clone(),
                table.clone(),
                function.name,
                schedule,
                clock,
            ))),
            Err(e) => {
                eprintln!(
                    "local-api: schedule {} -> {}: {e}; it runs only with `cargo xtask invoke {} --schedule`",
                    schedule.name, function.name, function.name
                );
                None
            }
        })
        .collect()
}

async fn fire(
    deployment: Deployment,
    table: Arc<Table>,
    function: &'static str,
    schedule: &'static catalog::Schedule,
    clock: Clock,
) {
    let label = format!("schedule {} -> {function}", schedule.name);
    let mut now = Utc::now();
    while let Some(next) = clock.next_after(now) {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        now = next;
        let Some(pool) = table.pick(function) else {
            eprintln!("local-api: {label}: the function is not being served; skipped");
            continue;
        };
        let payload = event(&deployment, schedule, next);
        let request_id = uuid::Uuid::new_v4().to_string();
        match pool.invoke(&request_id, payload.into()).await.result {
            Ok(_) => eprintln!("local-api: {label}: ran ({request_id})"),
            Err(e) => eprintln!("local-api: {label}: failed ({request_id}): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// Scheduler's cron: minutes, hours, day of month, month, day of week (1 = Sunday), year.
    #[test]
    fn clocks_fire_as_scheduler_does() {
        let rate = Clock::of("rate(5 minutes)").unwrap();
        let now = at("2026-12-07T10:00:00Z");
        assert_eq!(rate.next_after(now), Some(at("2026-12-07T10:05:00Z")));
        let nightly = Clock::of("cron(0 3 * * ? *)").unwrap();
        assert_eq!(nightly.next_after(now), Some(at("2026-12-08T03:00:00Z")));
        // 2026-12-07 is a Monday: MON-FRI at 10:15 is later the same day, and day 1 is Sunday.
        let weekdays = Clock::of("cron(15 10 ? * MON-FRI *)").unwrap();
        assert_eq!(weekdays.next_after(now), Some(at("2026-12-07T10:15:00Z")));
        let sundays = Clock::of("cron(0 12 ? * 1 *)").unwrap();
        assert_eq!(sundays.next_after(now), Some(at("2026-12-13T12:00:00Z")));
        let past = Clock::of("cron(0 0 1 1 ? 2020)").unwrap();
        assert_eq!(past.next_after(now), None);
    }
}
