//! Alarms (Lambda errors and throttles, API 4XX/5XX and latency, DynamoDB throttles, per
//! route the functions' own 5xx and p99 latency, and per queue its dead letters and the age of
//! its oldest message) into an encrypted SNS topic, and one dashboard with the same metrics.
//!
//! The per-route metrics come from the functions' Embedded Metric Format lines
//! (`service_common::metrics`: namespace `ProdService`, dimensions `Function` and `Route`), which
//! CloudWatch Logs turns into metrics without an API call.

use super::api::RestApi;
use super::compute::Function;
use super::data::Tables;
use super::queues::Queues;
use super::security::Key;
use crate::config::Alarms;
use crate::iam::{Scope, Statement, star};
use crate::routes::{FunctionName, ROUTES};
use crate::tf::{Expr, Stack};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Handle to the alarm topic and the alarms per function (the gate of a release's traffic
/// shift); a queue's alarms count as its consumer's.
#[derive(Clone, Debug)]
pub struct Observability {
    pub topic_arn: Expr,
    pub function_alarms: BTreeMap<FunctionName, Vec<Expr>>,
}

struct Alarm<'a> {
    logical: String,
    name: String,
    description: String,
    namespace: &'a str,
    metric: &'a str,
    statistic: Option<&'a str>,
    extended_statistic: Option<&'a str>,
    dimensions: Value,
    threshold: f64,
}

fn alarm(stack: &mut Stack, topic: &Expr, a: Alarm<'_>) -> Expr {
    let mut body = json!({
        "alarm_name": a.name,
        "alarm_description": a.description,
        "namespace": a.namespace,
        "metric_name": a.metric,
        "dimensions": a.dimensions,
        "period": 60,
        "evaluation_periods": 5,
        "datapoints_to_alarm": 3,
        "threshold": a.threshold,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        // No traffic is not an incident.
        "treat_missing_data": "notBreaching",
        "alarm_actions": [topic],
        "ok_actions": [topic],
    });
    if let Some(s) = a.statistic {
        body["statistic"] = json!(s);
    }
    if let Some(s) = a.extended_statistic {
        body["extended_statistic"] = json!(s);
    }
    stack
        .resource("aws_cloudwatch_metric_alarm", &a.logical, body)
        .attr("alarm_name")
}

/// The address the alarm topic mails (`[alarms] email`): the environment's only, never a
/// stage's. Every stage's subscription would send the address a confirmation request, and a
/// stage's alarms are for whoever deploys it to watch; and with no subscription to replace,
/// the stages role needs no `sns:Unsubscribe`, which SNS grants only on `"*"` (any
/// subscription of the account).
fn email<'a>(scope: &Scope, alarms: &'a Alarms) -> Option<&'a str> {
    alarms.email.as_deref().filter(|_| scope.stage.is_none())
}

/// `scope` names the alarms, topic and dashboard and places the dashboard's widgets.
pub fn observability(
    stack: &mut Stack,
    scope: &Scope,
    alarms: &Alarms,
    key: &Key,
    functions: &[Function],
    api: &RestApi,
    tables: &Tables,
) -> Observability {
    let topic = stack.resource(
        "aws_sns_topic",
        "alarms",
        json!({ "name": scope.names().name("alarms"), "kms_master_key_id": key.id() }),
    );
    let topic_arn = topic.attr("arn");
    if let Some(email) = email(scope, alarms) {
        stack.resource(
            "aws_sns_topic_subscription",
            "alarms_email",
            json!({ "topic_arn": topic_arn, "protocol": "email", "endpoint": email }),
        );
    }
    let mut function_alarms = BTreeMap::new();
    for f in functions {
        let name = scope.names().name(f.which.as_str());
        let mut names = Vec::new();
        for (metric, what) in [("Errors", "errors"), ("Throttles", "throttles")] {
            names.push(alarm(
                stack,
                &topic_arn,
                Alarm {
                    logical: format!("{}_{what}", f.which),
                    name: format!("{name}-{what}"),
                    description: format!("Lambda {name} reports {what}"),
                    namespace: "AWS/Lambda",
                    metric,
                    statistic: Some("Sum"),
                    extended_statistic: None,
                    dimensions: json!({ "FunctionName": f.name() }),
                    threshold: 1.0,
                },
            ));
        }
        function_alarms.insert(f.which, names);
    }
    let api_dimensions = json!({ "ApiName": api.name(), "Stage": api.stage_name() });
    let api_alarms = [
        (
            "api_4xx",
            "4XXError",
            "4xx",
            Some("Sum"),
            None,
            50.0,
            "many client errors (bad keys, scanning, a broken client)",
        ),
        (
            "api_5xx",
            "5XXError",
            "5xx",
            Some("Sum"),
            None,
            1.0,
            "server errors",
        ),
        (
            "api_latency",
            "Latency",
            "latency-p99",
            None,
            Some("p99"),
            f64::from(alarms.latency_p99_ms),
            "p99 latency above the target",
        ),
    ];
    for (logical, metric, suffix, statistic, extended, threshold, what) in api_alarms {
        alarm(
            stack,
            &topic_arn,
            Alarm {
                logical: logical.into(),
                name: scope.names().name(&format!("api-{suffix}")),
                description: format!("API Gateway: {what}"),
                namespace: "AWS/ApiGateway",
                metric,
                statistic,
                extended_statistic: extended,
                dimensions: api_dimensions.clone(),
                threshold,
            },
        );
    }
    for table in [&tables.users, &tables.sessions] {
        for (metric, what) in [
            ("ReadThrottleEvents", "read-throttles"),
            ("WriteThrottleEvents", "write-throttles"),
        ] {
            alarm(
                stack,
                &topic_arn,
                Alarm {
                    logical: format!("{}_{}", table.logical(), what.replace('-', "_")),
                    name: scope.names().name(&format!("{}-{what}", table.logical())),
                    description: format!("DynamoDB {} throttles requests", table.logical()),
                    namespace: "AWS/DynamoDB",
                    metric,
                    statistic: Some("Sum"),
                    extended_statistic: None,
                    dimensions: json!({ "TableName": table.name() }),
                    threshold: 1.0,
                },
            );
        }
    }
    for route in ROUTES.iter() {
        let Some(function) = functions.iter().find(|f| f.which == route.function) else {
            continue;
        };
        let slug = route_slug(route.method, route.path);
        let dimensions =
            json!({ "Function": function.name(), "Route": route_label(route.method, route.path) });
        for (metric, what, statistic, extended, threshold) in [
            ("Errors", "5xx", Some("Sum"), None, 1.0),
            (
                "Duration",
                "latency-p99",
                None,
                Some("p99"),
                f64::from(alarms.latency_p99_ms),
            ),
        ] {
            alarm(
                stack,
                &topic_arn,
                Alarm {
                    logical: format!(
                        "route_{}_{}",
                        slug.replace('-', "_"),
                        what.replace('-', "_")
                    ),
                    name: scope.names().name(&format!("route-{slug}-{what}")),
                    description: format!(
                        "{} {}: {}",
                        route.method,
                        route.path,
                        if metric == "Errors" {
                            "server errors answered by the function"
                        } else {
                            "p99 time in the function above the target"
                        }
                    ),
                    namespace: METRICS_NAMESPACE,
                    metric,
                    statistic,
                    extended_statistic: extended,
                    dimensions: dimensions.clone(),
                    threshold,
                },
            );
        }
    }
    dashboard(stack, scope, functions, api, tables);
    Observability {
        topic_arn,
        function_alarms,
    }
}

impl Observability {
    /// Per queue, an alarm on its dead-letter queue's depth and one on the age of its oldest
    /// message, into the alarm topic and, as its consumer's, into the release gate: a new
    /// version that fails every receive fills the dead-letter queue while traffic shifts.
    pub fn watch_queues(&mut self, stack: &mut Stack, scope: &Scope, queues: &Queues) {
        for queue in queues.iter() {
            let logical = format!("queue_{}", queue.name().replace('-', "_"));
            let oldest = queue.oldest_message_alarm_seconds();
            let alarms = [
                // Any message in the dead-letter queue is a message the consumer gave up on.
                (
                    "dead_letters",
                    // The name the local API server sets on `local` too.
                    catalog::queues::dead_letter_alarm(queue.name()),
                    "ApproximateNumberOfMessagesVisible",
                    queue.dead_letter_name(),
                    1,
                    format!(
                        "{} failed messages on every receive; they wait in the dead-letter queue",
                        queue.consumer
                    ),
                ),
                (
                    "oldest_message",
                    format!(
                        "{}-oldest-message",
                        catalog::queues::aws_suffix(queue.name())
                    ),
                    "ApproximateAgeOfOldestMessage",
                    queue.queue_name(),
                    oldest,
                    format!(
                        "a message older than {oldest} s, longer than its retries take: {} is not draining the queue",
                        queue.consumer
                    ),
                ),
            ];
            for (what, name, metric, queue_name, threshold, why) in alarms {
                let alarm = alarm(
                    stack,
                    &self.topic_arn,
                    Alarm {
                        logical: format!("{logical}_{what}"),
                        name: scope.names().name(&name),
                        description: format!("Queue {}: {why}", queue.name()),
                        namespace: "AWS/SQS",
                        metric,
                        statistic: Some("Maximum"),
                        extended_statistic: None,
                        dimensions: json!({ "QueueName": queue_name }),
                        threshold: f64::from(threshold),
                    },
                );
                self.function_alarms
                    .entry(queue.consumer)
                    .or_default()
                    .push(alarm);
            }
        }
    }
}

/// The functions' own metrics' namespace, `service_common::metrics::NAMESPACE` (infra does not
/// depend on the functions' crates: a test on each side pins the literal).
pub const METRICS_NAMESPACE: &str = "ProdService";

/// The `Route` dimension as the functions write it: `METHOD /template`.
pub fn route_label(method: &str, path: &str) -> String {
    format!("{method} {path}")
}

/// `get-users-id` for `GET /users/{id}`: a route in resource and alarm names.
fn route_slug(method: &str, path: &str) -> String {
    let mut slug = method.to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        slug.push('-');
        slug.push_str(
            &part
                .trim_matches(|c| c == '{' || c == '}')
                .to_ascii_lowercase(),
        );
    }
    slug
}

fn dashboard(
    stack: &mut Stack,
    scope: &Scope,
    functions: &[Function],
    api: &RestApi,
    tables: &Tables,
) {
    let region = scope.region;
    let widget = |x: u32, y: u32, title: &str, metrics: Vec<Value>| {
        json!({
            "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": { "title": title, "region": region, "view": "timeSeries", "stat": "Sum", "period": 60, "metrics": metrics },
        })
    };
    let lambda = |metric: &str| -> Vec<Value> {
        functions
            .iter()
            .map(|f| json!(["AWS/Lambda", metric, "FunctionName", f.name()]))
            .collect()
    };
    let api_metric = |metric: &str| {
        json!([
            "AWS/ApiGateway",
            metric,
            "ApiName",
            api.name(),
            "Stage",
            api.stage_name()
        ])
    };
    let table_metrics: Vec<Value> = [&tables.users, &tables.sessions]
        .iter()
        .flat_map(|t| {
            [
                "ConsumedReadCapacityUnits",
                "ConsumedWriteCapacityUnits",
                "ReadThrottleEvents",
                "WriteThrottleEvents",
            ]
            .map(|m| json!(["AWS/DynamoDB", m, "TableName", t.name()]))
        })
        .collect();
    let route_metrics = |metric: &str| -> Vec<Value> {
        ROUTES
            .iter()
            .filter_map(|route| {
                let function = functions.iter().find(|f| f.which == route.function)?;
                Some(json!([
                    METRICS_NAMESPACE,
                    metric,
                    "Function",
                    function.name(),
                    "Route",
                    route_label(route.method, route.path)
                ]))
            })
            .collect()
    };
    let requests_and_errors = [route_metrics("Requests"), route_metrics("Errors")].concat();
    let body = json!({
        "widgets": [
            widget(0, 0, "Lambda invocations", lambda("Invocations")),
            widget(12, 0, "Lambda errors and throttles", [lambda("Errors"), lambda("Throttles")].concat()),
            widget(0, 6, "API requests and errors", vec![api_metric("Count"), api_metric("4XXError"), api_metric("5XXError")]),
            json!({
                "type": "metric", "x": 12, "y": 6, "width": 12, "height": 6,
                "properties": { "title": "API latency p99", "region": region, "view": "timeSeries", "stat": "p99", "period": 60, "metrics": [api_metric("Latency"), api_metric("IntegrationLatency")] },
            }),
            widget(0, 12, "DynamoDB capacity and throttles", table_metrics),
            json!({
                "type": "metric", "x": 12, "y": 12, "width": 12, "height": 6,
                "properties": { "title": "Requests and 5xx per route", "region": region, "view": "timeSeries", "stat": "Sum", "period": 60, "metrics": requests_and_errors },
            }),
            json!({
                "type": "metric", "x": 0, "y": 18, "width": 12, "height": 6,
                "properties": { "title": "Function time p99 per route", "region": region, "view": "timeSeries", "stat": "p99", "period": 60, "metrics": route_metrics("Duration") },
            }),
            json!({
                "type": "metric", "x": 12, "y": 18, "width": 12, "height": 6,
                "properties": { "title": "DynamoDB time per request (average) per route", "region": region, "view": "timeSeries", "stat": "Average", "period": 60, "metrics": route_metrics("DynamoDBTime") },
            }),
        ],
    });
    // The body is JSON with Terraform references inside; Terraform interpolates the string.
    stack.resource(
        "aws_cloudwatch_dashboard",
        "main",
        json!({ "dashboard_name": scope.names().name("dashboard"), "dashboard_body": body.to_string() }),
    );
}

/// What the deploy role needs to manage the log groups the stacks create, each named
/// `<prefix><environment prefix>...` for one of `prefixes` (each construct that creates a log
/// group names its prefix), and to find them.
pub fn log_group_management_statements(scope: &Scope, prefixes: &[&str]) -> Vec<Statement> {
    vec![
        Statement::allow(
            "LogGroupsOfThisEnvironment",
            &[
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:AssociateKmsKey",
                "logs:DisassociateKmsKey",
                "logs:ListTagsForResource",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:TagLogGroup",
            ],
            prefixes
                .iter()
                .map(|p| scope.in_region("logs", &format!("log-group:{p}{}*", scope.prefix)))
                .collect(),
        ),
        star("FindLogGroups", &["logs:DescribeLogGroups"]),
    ]
}

/// What the deploy role needs to manage the alarms, the alarm topic (and its e-mail
/// subscription) and the dashboard.
pub fn management_statements(scope: &Scope, alarms: &Alarms) -> Vec<Statement> {
    let p = &scope.account.partition;
    let a = &scope.account.account_id;
    let pre = scope.prefix;
    let in_region = |service: &str, resource: &str| scope.in_region(service, resource);
    let mut s = Vec::new();
    s.push(Statement::allow(
        "AlarmTopic",
        &[
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:DeleteTopic",
            "sns:ListTagsForResource",
            "sns:TagResource",
            "sns:UntagResource",
            "sns:Subscribe",
        ],
        vec![in_region("sns", &format!("{pre}*"))],
    ));
    if email(scope, alarms).is_some() {
        s.push(star(
            "AlarmEmailSubscription",
            &["sns:GetSubscriptionAttributes", "sns:Unsubscribe"],
        ));
    }
    s.push(Statement::allow(
        "Alarms",
        &[
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:ListTagsForResource",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
        ],
        vec![in_region("cloudwatch", &format!("alarm:{pre}*"))],
    ));
    // By name, like Terraform and xtask's release gate ask: DescribeAlarms takes resource-level
    // permissions for metric alarms (only composite alarms need "*", and there are none):
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    s.push(Statement::allow(
        "ReadAlarms",
        &["cloudwatch:DescribeAlarms"],
        vec![in_region("cloudwatch", &format!("alarm:{pre}*"))],
    ));
    s.push(Statement::allow(
        "Dashboard",
        &[
            "cloudwatch:PutDashboard",
            "cloudwatch:GetDashboard",
            "cloudwatch:DeleteDashboards",
        ],
        vec![format!("arn:{p}:cloudwatch::{a}:dashboard/{pre}*")],
    ));
    s
}
