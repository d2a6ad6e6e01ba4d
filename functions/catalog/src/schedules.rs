//! The rules for a schedule that invokes a function (`[[package.metadata.function.schedules]]`):
//! its name and its expression, in EventBridge Scheduler's syntax. Kept here, beside the
//! declarations, so the catalog refuses an expression Scheduler would refuse at apply time.

/// The longest name: with the longest prefix (20) and `schedule-`, the Scheduler name stays
/// inside its 64 characters.
pub const MAX_LEN: usize = 32;

/// Checks a schedule name (by default the function's name, `_` written `-`).
pub fn check_name(name: &str) -> Result<(), String> {
    if !crate::names::is_kebab(name, MAX_LEN) {
        return Err(format!(
            "schedule `{name}`: use 1-{MAX_LEN} characters of a-z, 0-9 and single '-', \
             starting with a letter and not ending with '-' (it becomes the Scheduler name \
             `<prefix>{}`)",
            aws_suffix(name)
        ));
    }
    Ok(())
}

/// The schedule's name in EventBridge Scheduler, after the environment's prefix.
pub fn aws_suffix(name: &str) -> String {
    format!("schedule-{name}")
}

/// The name of a function's schedule when its declaration gives none.
pub fn default_name(function: &str) -> String {
    function.replace('_', "-")
}

/// A checked expression: `rate(<n> <unit>)` or `cron(<6 fields>)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expression<'a> {
    /// Every this many seconds.
    Rate { seconds: u64 },
    /// Scheduler's six fields: minutes, hours, day of month, month, day of week, year.
    Cron { fields: [&'a str; 6] },
}

/// Parses a schedule expression as EventBridge Scheduler reads it: `rate(5 minutes)`,
/// `rate(1 day)` (the unit singular exactly when the value is 1), or
/// `cron(0 3 * * ? *)` (six fields, one of day-of-month and day-of-week `?`).
pub fn parse(expression: &str) -> Result<Expression<'_>, String> {
    let refuse = |why: &str| {
        Err(format!(
            "schedule expression `{expression}`: {why} (EventBridge Scheduler's syntax: \
             `rate(5 minutes)`, `rate(1 day)` or `cron(0 3 * * ? *)`)"
        ))
    };
    if let Some(body) = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let Some((value, unit)) = body.split_once(' ') else {
            return refuse("a rate is a number and a unit");
        };
        let Ok(value) = value.parse::<u64>() else {
            return refuse("the rate's value must be a positive whole number");
        };
        let unit_seconds = match unit.strip_suffix('s').unwrap_or(unit) {
            "minute" => 60,
            "hour" => 3_600,
            "day" => 86_400,
            _ => return refuse("the unit must be minute(s), hour(s) or day(s)"),
        };
        if value == 0 || (value == 1) == unit.ends_with('s') {
            return refuse("the value must be at least 1, with a singular unit for 1 only");
        }
        return Ok(Expression::Rate {
            seconds: value * unit_seconds,
        });
    }
    if let Some(body) = expression
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let fields: Vec<&str> = body.split(' ').collect();
        let Ok(fields) = <[&str; 6]>::try_from(fields) else {
            return refuse("a cron expression has six fields separated by single spaces");
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || ",-*/?#L".contains(c);
        if fields
            .iter()
            .any(|f| f.is_empty() || !f.chars().all(allowed))
        {
            return refuse("a cron field holds digits, names and , - * / ? L # only");
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return refuse("exactly one of day-of-month and day-of-week must be `?`");
        }
        return Ok(Expression::Cron { fields });
    }
    refuse("it must be `rate(...)` or `cron(...)`")
}

/// What a schedule's invocation is named by: Scheduler's context attributes on AWS (infra
/// passes [`Context::SCHEDULER`], which Scheduler fills in per invocation), real values locally.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub execution_id: &'a str,
    /// RFC 3339, UTC.
    pub scheduled_time: &'a str,
    pub schedule_arn: &'a str,
}

impl Context<'static> {
    /// Scheduler's placeholders, replaced in the target's input at each invocation.
    pub const SCHEDULER: Context<'static> = Context {
        execution_id: "<aws.scheduler.execution-id>",
        scheduled_time: "<aws.scheduler.scheduled-time>",
        schedule_arn: "<aws.scheduler.schedule-arn>",
    };
}

/// The event a schedule invokes its function with, as JSON text: EventBridge's "Scheduled
/// Event" shape (what `aws_lambda_events::eventbridge::EventBridgeEvent` reads), with the
/// declared input (`detail`, JSON text) as its detail. Scheduler hands a Lambda target exactly
/// its input, so infra sets this as the input and the function sees the same event on AWS,
/// from the local clock and from `cargo xtask invoke --schedule`.
pub fn event(detail: &str, context: Context<'_>, account: &str, region: &str) -> String {
    let detail: serde_json::Value =
        serde_json::from_str(detail).expect("a checked schedule's input is JSON");
    serde_json::json!({
        "version": "0",
        "id": context.execution_id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": account,
        "time": context.scheduled_time,
        "region": region,
        "resources": [context.schedule_arn],
        "detail": detail,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_crons_as_scheduler_reads_them() {
        assert_eq!(
            parse("rate(5 minutes)"),
            Ok(Expression::Rate { seconds: 300 })
        );
        assert_eq!(
            parse("rate(1 day)"),
            Ok(Expression::Rate { seconds: 86_400 })
        );
        assert_eq!(
            parse("rate(2 hours)"),
            Ok(Expression::Rate { seconds: 7_200 })
        );
        assert_eq!(
            parse("cron(0 3 * * ? *)"),
            Ok(Expression::Cron {
                fields: ["0", "3", "*", "*", "?", "*"]
            })
        );
        parse("cron(15 10 ? * MON-FRI *)").unwrap();
        for (bad, why) in [
            ("rate(1 days)", "singular unit"),
            ("rate(5 minute)", "singular unit"),
            ("rate(0 minutes)", "at least 1"),
            ("rate(5 weeks)", "unit must be"),
            ("rate(five minutes)", "positive whole number"),
            ("cron(0 3 * * *)", "six fields"),
            ("cron(0 3 * * * *)", "exactly one of"),
            ("cron(0 3 ? * ? *)", "exactly one of"),
            ("at(2026-12-07T00:00:00)", "must be `rate"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_event_is_a_scheduled_event_with_the_input_as_detail() {
        let event = event(
            r#"{"report":"all"}"#,
            Context::SCHEDULER,
            "123456789012",
            "eu-west-1",
        );
        let event: serde_json::Value = serde_json::from_str(&event).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["detail"]["report"], "all");
        assert_eq!(event["resources"][0], "<aws.scheduler.schedule-arn>");
        assert_eq!(event["time"], "<aws.scheduler.scheduled-time>");
    }

    #[test]
    fn names_fit_scheduler() {
        assert_eq!(default_name("table_report"), "table-report");
        check_name(&"a".repeat(MAX_LEN)).unwrap();
        assert!(check_name("Nightly").is_err());
        assert!(format!("{}{}", "p".repeat(20), aws_suffix(&"a".repeat(MAX_LEN))).len() <= 64);
    }
}
