//! SQS: one queue per name a function consumes (`[[package.metadata.function.queues]]`, read
//! through the catalog), each with its dead-letter queue, both encrypted with the stack key;
//! the event source mapping that hands the consumer's `live` alias batches of it; what
//! consuming and sending take ([`Queues::grant_consume`], [`Queues::grant_send`] for the
//! functions that declare `sends`), the queue URL a sender gets, and what the deploy role
//! needs to manage them ([`management_statements`]).
//!
//! A message the consumer fails `max_receives` times moves to the dead-letter queue, where it
//! stays 14 days; the consumer reports which records of a batch failed
//! (`ReportBatchItemFailures`), so one bad record never sends its whole batch round again.
//! The alarms on both queues are `super::observability`'s, from the handles here.

use super::compute::Function;
use super::security::Key;
use crate::config::{Lambda, Names};
use crate::iam::{Account, Grant, KeyActions, Scope, Statement, star};
use crate::routes::FunctionName;
use crate::tf::{Expr, Ref, Stack, depends_on};
use catalog::queues::{DEAD_LETTER_SUFFIX, aws_suffix, variable, visibility_timeout_seconds};
use serde_json::json;

/// How long a message waits in a queue before SQS drops it: SQS's default, 4 days, written
/// out because the dead-letter queue must keep a message longer than its source (a message
/// keeps its first enqueue time when it moves, so a shorter dead-letter retention would drop
/// it on arrival).
const RETENTION_SECONDS: u32 = 345_600;
/// How long a dead-letter queue keeps a message: SQS's longest, 14 days, to look at it and
/// redrive it.
const DEAD_LETTER_RETENTION_SECONDS: u32 = 1_209_600;
/// How long SQS reuses a data key before asking KMS for a new one: SQS's default, 5 minutes,
/// which bounds the KMS calls (and their cost) at one per sender and consumer per 5 minutes.
pub const DATA_KEY_REUSE_SECONDS: u32 = 300;
/// `ApproximateAgeOfOldestMessage` leaves out a message once it has been received this often
/// (SQS moves it to the back of the queue and the metric follows the next oldest), so a
/// poison message can't hold the age alarm up.
const RECEIVES_THE_AGE_METRIC_COUNTS: u32 = 3;

/// A queue of the environment, its dead-letter queue and the function that consumes it.
#[derive(Clone, Debug)]
pub struct Queue {
    pub declaration: &'static catalog::Queue,
    pub consumer: FunctionName,
    queue: Ref,
    dead_letter: Ref,
    visibility_timeout_seconds: u32,
}

impl Queue {
    pub fn name(&self) -> &'static str {
        self.declaration.name
    }
    pub fn url(&self) -> Expr {
        self.queue.attr("url")
    }
    pub fn arn(&self) -> Expr {
        self.queue.attr("arn")
    }
    /// The SQS name, the `QueueName` dimension of its metrics.
    pub fn queue_name(&self) -> Expr {
        self.queue.attr("name")
    }
    pub fn dead_letter_url(&self) -> Expr {
        self.dead_letter.attr("url")
    }
    pub fn dead_letter_arn(&self) -> Expr {
        self.dead_letter.attr("arn")
    }
    pub fn dead_letter_name(&self) -> Expr {
        self.dead_letter.attr("name")
    }

    /// The age of the oldest message above which the queue is not being drained: a message
    /// the consumer keeps failing is received again after each visibility timeout, and the
    /// metric counts it for at most [`RECEIVES_THE_AGE_METRIC_COUNTS`] receives (or until
    /// it moves to the dead-letter queue, if that comes first). A message older than that
    /// waits for a consumer that doesn't poll: an event source mapping that is off, a
    /// function throttled to nothing, a role that lost its grants.
    pub fn oldest_message_alarm_seconds(&self) -> u32 {
        self.declaration
            .max_receives
            .min(RECEIVES_THE_AGE_METRIC_COUNTS)
            * self.visibility_timeout_seconds
    }
}

/// The environment's queues, in catalog order.
#[derive(Clone, Debug)]
pub struct Queues {
    queues: Vec<Queue>,
    key: Key,
}

/// The queue `name`'s SQS name (`<prefix>queue-<name>`) and its dead-letter queue's.
fn aws_names(names: Names, name: &str) -> (String, String) {
    let queue = names.name(&aws_suffix(name));
    let dead_letter = format!("{queue}{DEAD_LETTER_SUFFIX}");
    (queue, dead_letter)
}

/// Creates every declared queue and its dead-letter queue, encrypted with `key`. The
/// visibility timeout follows the consumer's timeout in this environment (`lambda`).
pub fn queues(
    stack: &mut Stack,
    names: Names,
    account: &Account,
    lambda: &Lambda,
    key: &Key,
) -> Queues {
    let queues = catalog::queues()
        .map(|(consumer, declaration)| {
            let logical = format!("queue_{}", declaration.name.replace('-', "_"));
            let (name, dead_letter_name) = aws_names(names, declaration.name);
            // Known before the queue exists: the dead-letter queue names its one source by
            // ARN while the source names it, which as references would be a cycle.
            let source_arn = format!(
                "arn:{}:sqs:{}:{}:{name}",
                account.partition, account.region, account.account_id
            );
            let dead_letter = stack.resource(
                "aws_sqs_queue",
                &format!("{logical}_dlq"),
                json!({
                    "name": dead_letter_name,
                    "kms_master_key_id": key.arn(),
                    "kms_data_key_reuse_period_seconds": DATA_KEY_REUSE_SECONDS,
                    "message_retention_seconds": DEAD_LETTER_RETENTION_SECONDS,
                    // Only its own queue may move messages here.
                    "redrive_allow_policy": json!({
                        "redrivePermission": "byQueue",
                        "sourceQueueArns": [source_arn],
                    }).to_string(),
                }),
            );
            let function = FunctionName::find(consumer.name)
                .expect("the catalog's functions are the functions");
            let visibility_timeout_seconds = visibility_timeout_seconds(
                lambda.timeout_seconds_of(consumer),
                declaration.batching_window_seconds,
            );
            let queue = stack.resource(
                "aws_sqs_queue",
                &logical,
                json!({
                    "name": name,
                    "kms_master_key_id": key.arn(),
                    "kms_data_key_reuse_period_seconds": DATA_KEY_REUSE_SECONDS,
                    "message_retention_seconds": RETENTION_SECONDS,
                    "visibility_timeout_seconds": visibility_timeout_seconds,
                    "redrive_policy": json!({
                        "deadLetterTargetArn": dead_letter.attr("arn"),
                        "maxReceiveCount": declaration.max_receives,
                    }).to_string(),
                }),
            );
            Queue {
                declaration,
                consumer: function,
                queue,
                dead_letter,
                visibility_timeout_seconds,
            }
        })
        .collect();
    Queues {
        queues,
        key: key.clone(),
    }
}

impl Queues {
    pub fn iter(&self) -> impl Iterator<Item = &Queue> {
        self.queues.iter()
    }

    fn get(&self, name: &str) -> &Queue {
        self.queues
            .iter()
            .find(|q| q.name() == name)
            .expect("the catalog checks that a function sends only to declared queues")
    }

    /// The environment variables that hand `function` the URL of each queue it sends to.
    pub fn variables(&self, function: FunctionName) -> Vec<(String, Expr)> {
        function
            .declaration()
            .sends
            .iter()
            .map(|name| (variable(name), self.get(name).url()))
            .collect()
    }

    /// Sending to exactly the queues `function` declares in `sends` (none: no grant). SQS
    /// encrypts the message with the stack key on the sender's behalf.
    pub fn grant_send(&self, function: FunctionName, account: &Account) -> Option<Grant> {
        let arns = function
            .declaration()
            .sends
            .iter()
            .map(|name| self.get(name).arn().to_string())
            .collect();
        sqs_grant(
            &self.key,
            ("SentQueues", &["sqs:SendMessage"]),
            KeyActions::SEND_TO_QUEUE,
            arns,
            account,
        )
    }

    /// What Lambda's poller does with `function`'s role on the queues it consumes (none: no
    /// grant): receive, delete what was handled, read the attributes; SQS decrypts each
    /// message with the stack key on its behalf.
    pub fn grant_consume(&self, function: FunctionName, account: &Account) -> Option<Grant> {
        let arns = self
            .queues
            .iter()
            .filter(|q| q.consumer == function)
            .map(|q| q.arn().to_string())
            .collect();
        sqs_grant(
            &self.key,
            (
                "ConsumedQueues",
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ],
            ),
            KeyActions::DECRYPT,
            arns,
            account,
        )
    }

    /// Lambda polls each queue and invokes its consumer's `live` alias (so a release or a
    /// rollback moves the consumer like any other function) with batches, and deletes the
    /// records the function does not report as failed.
    pub fn event_source_mappings(&self, stack: &mut Stack, functions: &[Function]) {
        for queue in &self.queues {
            let function = functions
                .iter()
                .find(|f| f.which == queue.consumer)
                .expect("every catalog function is created");
            // Lambda checks at creation that the role may receive from the queue.
            let mut after = function.role.dependencies();
            after.push(function.alias_ref());
            stack.resource(
                "aws_lambda_event_source_mapping",
                &format!("queue_{}", queue.name().replace('-', "_")),
                json!({
                    "event_source_arn": queue.arn(),
                    "function_name": function.alias_arn(),
                    "batch_size": queue.declaration.batch_size,
                    "maximum_batching_window_in_seconds":
                        queue.declaration.batching_window_seconds,
                    "function_response_types": ["ReportBatchItemFailures"],
                    "depends_on": depends_on(&after),
                }),
            );
        }
    }
}

/// `actions` (statement `sid`) on the queues `arns`, with `key_actions` on the stack key in
/// SQS's requests only (`kms:ViaService`), so the role can't use the key directly; `None` for
/// no queue. Every grant on an SQS queue of the stacks is one of these (the functions' shared
/// dead-letter queue's too).
pub(super) fn sqs_grant(
    key: &Key,
    (sid, actions): (&str, &[&str]),
    key_actions: KeyActions,
    arns: Vec<String>,
    account: &Account,
) -> Option<Grant> {
    if arns.is_empty() {
        return None;
    }
    let via = format!("sqs.{}.amazonaws.com", account.region);
    Some(Grant {
        statements: std::iter::once(Statement::allow(sid, actions, arns))
            .chain(key.grant_through(&format!("{sid}Key"), key_actions, &via))
            .collect(),
        key: KeyActions::NONE,
    })
}

/// The ARN pattern of every declared queue and dead-letter queue: `<prefix>queue-*`.
pub fn arn_pattern(scope: &Scope) -> String {
    scope.in_region("sqs", &format!("{}*", scope.names().name(&aws_suffix(""))))
}

/// The ARN pattern of this environment's functions, versions and aliases, for the conditions
/// on what names a function (`lambda:FunctionArn`).
fn functions_pattern(scope: &Scope) -> String {
    scope.in_region("lambda", &format!("function:{}*", scope.prefix))
}

/// What the deploy role needs to manage the declared queues and their event source mappings.
/// Nothing when no function consumes a queue.
pub fn management_statements(scope: &Scope) -> Vec<Statement> {
    if catalog::queues().next().is_none() {
        return Vec::new();
    }
    let of_these_functions =
        json!({ "ArnLike": { "lambda:FunctionArn": functions_pattern(scope) } });
    vec![
        // DeleteQueue too: a queue whose declaration is gone has no consumer left.
        Statement::allow(
            "DeclaredQueues",
            &[
                "sqs:CreateQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:DeleteQueue",
            ],
            vec![arn_pattern(scope)],
        ),
        // A mapping's ARN carries an id Lambda generates, so creating one is granted on "*",
        // and creating, changing and deleting one only for this environment's functions (and,
        // for a scope over stages, changing only a mapping with their `Stage` tag).
        star(
            "CreateEventSourceMappings",
            &["lambda:CreateEventSourceMapping"],
        )
        .condition(of_these_functions.clone()),
        Statement::allow(
            "ChangeEventSourceMappings",
            &[
                "lambda:UpdateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
            ],
            vec![scope.in_region("lambda", "event-source-mapping:*")],
        )
        .condition(scope.within_stages(of_these_functions)),
        // Reading and tagging (the provider's default tags) take no function condition.
        Statement::allow(
            "ReadEventSourceMappings",
            &[
                "lambda:GetEventSourceMapping",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
            ],
            vec![scope.in_region("lambda", "event-source-mapping:*")],
        ),
    ]
}
