//! EventBridge Scheduler: one schedule per schedule a function declares
//! (`[[package.metadata.function.schedules]]`, read through the catalog). Each invokes its
//! function's `live` alias (so a release or a rollback moves it like any other) with the
//! Scheduled Event [`catalog::schedules::event`] makes, the same event the function gets
//! locally, through a role of its own that may invoke only that alias; and what the deploy
//! role needs to manage them ([`management_statements`]).
//!
//! Scheduler invokes Lambda asynchronously: a function's own failures are Lambda's to retry
//! (and, with `[lambda] dead_letter_queue`, to keep); the schedule's retry policy covers a
//! delivery Scheduler could not make (throttling, a missing permission).

use super::compute::{ALIAS, Function};
use super::security::{Key, RoleKind, service_role};
use crate::iam::{KeyActions, Scope, Statement};
use crate::routes::FunctionName;
use crate::tf::{Stack, depends_on};
use catalog::schedules::{Context, aws_suffix, event};
use serde_json::json;

/// The schedules' roles: assumed by Scheduler for this account's schedules only. Passed to
/// Scheduler by [`management_statements`] (only roles named like a schedule's), not by the
/// role kinds the deploy role passes to every service it lists.
pub const ROLE: RoleKind = RoleKind {
    service: "scheduler.amazonaws.com",
    managed: &[],
    source_account: true,
};

/// The schedule group every schedule is in: Scheduler's own, which always exists.
const GROUP: &str = "default";

/// A run Scheduler could not deliver within an hour is dropped: the next one comes on
/// schedule, and a late run of a periodic job is no longer the run it was.
const MAXIMUM_EVENT_AGE_SECONDS: u32 = 3_600;
/// Deliveries Scheduler retries (with back-off) before it gives a run up.
const MAXIMUM_RETRY_ATTEMPTS: u32 = 3;

/// `schedule/default/<prefix>schedule-<name>` in this account and region: known before the
/// schedule exists, so its role's key grant can name it.
fn schedule_arn(scope: &Scope, aws_name: &str) -> String {
    scope.in_region("scheduler", &format!("schedule/{GROUP}/{aws_name}"))
}

/// The `live` alias of `function` in this account and region.
fn alias_arn(scope: &Scope, function: FunctionName) -> String {
    let name = scope.names().name(function.as_str());
    scope.in_region("lambda", &format!("function:{name}:{ALIAS}"))
}

/// Creates every declared schedule with its role; the target input is encrypted with `key`.
pub fn schedules(
    stack: &mut Stack,
    scope: &Scope,
    boundary: Option<&str>,
    key: &Key,
    functions: &[Function],
) {
    for (declaring, schedule) in catalog::schedules() {
        let which =
            FunctionName::find(declaring.name).expect("the catalog's functions are the functions");
        let function = functions
            .iter()
            .find(|f| f.which == which)
            .expect("every catalog function is created");
        let logical = format!("schedule_{}", schedule.name.replace('-', "_"));
        let name = scope.names().name(&aws_suffix(schedule.name));
        let statements = std::iter::once(Statement::allow(
            "InvokeItsFunction",
            &["lambda:InvokeFunction"],
            vec![alias_arn(scope, which)],
        ))
        // Scheduler decrypts the target input with this role when it runs the schedule; the
        // encryption context names the schedule, so the role decrypts no other.
        .chain(key.grant("ItsInputKey", KeyActions::DECRYPT).map(|s| {
            s.condition(json!({ "StringEquals": {
                "kms:EncryptionContext:aws:scheduler:schedule:arn": schedule_arn(scope, &name),
            } }))
        }))
        .collect();
        let role = service_role(
            stack,
            boundary,
            scope.account,
            &logical,
            &name,
            &ROLE,
            statements,
        );
        let input = event(
            schedule.input,
            Context::SCHEDULER,
            &scope.account.account_id.to_string(),
            scope.region,
        );
        let mut after = role.dependencies();
        after.push(function.alias_ref());
        stack.resource(
            "aws_scheduler_schedule",
            &logical,
            json!({
                "name": name,
                "group_name": GROUP,
                "description": format!("Invokes {which} ({})", schedule.expression),
                "schedule_expression": schedule.expression,
                "flexible_time_window": [{ "mode": "OFF" }],
                "kms_key_arn": key.arn(),
                "target": [{
                    "arn": function.alias_arn(),
                    "role_arn": role.arn(),
                    "input": input,
                    "retry_policy": [{
                        "maximum_event_age_in_seconds": MAXIMUM_EVENT_AGE_SECONDS,
                        "maximum_retry_attempts": MAXIMUM_RETRY_ATTEMPTS,
                    }],
                }],
                "depends_on": depends_on(&after),
            }),
        );
    }
}

/// The `live` aliases of the functions that have a schedule, for the permissions boundary
/// (what the schedules' roles invoke); empty when no function has one.
pub fn invoked_aliases(scope: &Scope) -> Vec<String> {
    let mut aliases: Vec<String> = Vec::new();
    for (function, _) in catalog::schedules() {
        let which =
            FunctionName::find(function.name).expect("the catalog's functions are the functions");
        let arn = alias_arn(scope, which);
        if !aliases.contains(&arn) {
            aliases.push(arn);
        }
    }
    aliases
}

/// What the deploy role needs to manage the declared schedules: the schedules by name, and
/// passing their roles (`role/<prefix>schedule-*`; a function's role can't be named so, a
/// function's name has no `-`) to Scheduler only. Scheduler encrypts the target input with
/// the stack key as the caller, which the deploy role may use already
/// (`security::EnvironmentKeys`). Nothing when no function has a schedule.
pub fn management_statements(scope: &Scope) -> Vec<Statement> {
    if catalog::schedules().next().is_none() {
        return Vec::new();
    }
    let (p, a) = (&scope.account.partition, &scope.account.account_id);
    let prefix = scope.names().name(&aws_suffix(""));
    vec![
        Statement::allow(
            "DeclaredSchedules",
            &[
                "scheduler:CreateSchedule",
                "scheduler:GetSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
            ],
            vec![schedule_arn(scope, &format!("{prefix}*"))],
        ),
        Statement::allow(
            "PassScheduleRolesToScheduler",
            &["iam:PassRole"],
            vec![format!("arn:{p}:iam::{a}:role/{prefix}*")],
        )
        .condition(json!({ "StringEquals": { "iam:PassedToService": ROLE.service } })),
    ]
}
