//! Lambda's SQS event source mapping, on loopback: for every declared queue
//! (`catalog::queues()`) a task polls the emulator's queue and invokes the consuming function
//! with real `SqsEvent` batches, through the same pools the API's requests use (so the worker
//! follows the `live` alias and runs the packaged or `watch` build, one process per batch).
//!
//! What it does as Lambda's poller does:
//! - a batch is up to the queue's `batch_size` records, gathered for up to its batching window;
//! - with `ReportBatchItemFailures` (infra always sets it): the records the function names in
//!   `batchItemFailures` stay on the queue and every other record is deleted; a response that
//!   names an id not in the batch, a response that is not a batch response, or an invocation
//!   error (crash, timeout, handler error) deletes nothing;
//! - what stays becomes visible again after the queue's visibility timeout, and the queue's
//!   redrive policy (SQS's, here the emulator's) moves a message that was received
//!   `max_receives` times to the dead-letter queue.
//!
//! And as CloudWatch would: the emulator evaluates no metric, so the poller sets the queue's
//! dead-letter alarm (`catalog::queues::dead_letter_alarm`) itself, to `ALARM` while the
//! dead-letter queue holds a message and back to `OK` when it is empty, which is what the
//! alarm's threshold says on AWS; the release gate on `local` then sees it.
//!
//! Where it differs from Lambda (`docs/development.md`, "The local event loop"): one batch at
//! a time per queue (Lambda scales pollers up to the function's concurrency), and long polls of
//! [`WAIT`] so a stopped server stops polling within a second (a receive it abandons may still
//! take a message, which is then invisible for the queue's visibility timeout), and the
//! dead-letter queue counted every [`DEAD_LETTER_CHECK`], so its alarm follows within seconds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::config::{Credentials, Region};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::deployment::Deployment;
use crate::instance::InvokeError;
use crate::traffic::Table;

/// How long one receive waits for a message: short, so shutdown and a queue created after the
/// server started are noticed within a second.
pub const WAIT: Duration = Duration::from_secs(1);

/// How often the dead-letter queue is counted for its alarm. CloudWatch evaluates the alarm
/// once a minute; every poll (once a second) was half of an idle server's calls.
const DEAD_LETTER_CHECK: Duration = Duration::from_secs(5);

/// The most messages one `ReceiveMessage` returns (SQS's limit).
const RECEIVE_MAX: u32 = 10;

/// One declared queue as deployed, and who consumes it.
#[derive(Clone, Debug)]
pub struct Source {
    /// The consuming function (catalog name).
    pub function: &'static str,
    pub queue: &'static catalog::Queue,
    pub url: String,
    pub arn: String,
    pub dead_letter_url: String,
    /// The deployed name of the queue's dead-letter alarm.
    pub dead_letter_alarm: String,
}

impl Source {
    /// Every declared queue the outputs name, with its consumer.
    pub fn all(deployment: &Deployment) -> Vec<Source> {
        catalog::queues()
            .filter_map(|(function, queue)| {
                let deployed = deployment.queues.get(queue.name)?;
                Some(Source {
                    function: function.name,
                    queue,
                    url: deployed.url.clone(),
                    arn: deployed.arn.clone(),
                    dead_letter_url: deployed.dead_letter_url.clone(),
                    dead_letter_alarm: format!(
                        "{}{}",
                        deployment.prefix(),
                        catalog::queues::dead_letter_alarm(queue.name)
                    ),
                })
            })
            .collect()
    }
}

/// The emulator's SQS and CloudWatch.
#[derive(Clone)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// The clients of the emulator at `endpoint`.
    pub fn new(endpoint: &str, region: &str) -> Clients {
        let cloudwatch = aws_sdk_cloudwatch::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_cloudwatch::config::Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "local-api"))
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
            .build();
        Clients {
            sqs: client(endpoint, region),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch),
        }
    }
}

/// The SQS client of the emulator at `endpoint` (no retries: loopback).
pub fn client(endpoint: &str, region: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version_latest()
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "local-api"))
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Starts one poller per source; they run until their handles are aborted.
pub fn spawn(
    sources: Vec<Source>,
    table: Arc<Table>,
    clients: Clients,
    region: &str,
) -> Vec<JoinHandle<()>> {
    sources
        .into_iter()
        .map(|source| {
            let poller = Poller {
                source,
                table: table.clone(),
                client: clients.sqs.clone(),
                cloudwatch: clients.cloudwatch.clone(),
                region: region.to_string(),
            };
            tokio::spawn(poller.run())
        })
        .collect()
}

/// What one batch came to, for the log line and the tests.
#[derive(Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    pub received: usize,
    pub deleted: usize,
    /// Why nothing or not everything was deleted; `None`: the whole batch succeeded.
    pub kept: Option<String>,
}

struct Poller {
    source: Source,
    table: Arc<Table>,
    client: aws_sdk_sqs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    region: String,
}

impl Poller {
    async fn run(self) {
        let label = format!("{} -> {}", self.source.queue.name, self.source.function);
        let mut last_error: Option<String> = None;
        // What the dead-letter alarm was last set to (`None`: not set by this server yet), and
        // the last error setting it (printed once).
        let mut alarmed: Option<bool> = None;
        let mut alarm_error: Option<String> = None;
        let mut counted: Option<Instant> = None;
        loop {
            let due = counted.is_none_or(|at| at.elapsed() >= DEAD_LETTER_CHECK);
            if due {
                counted = Some(Instant::now());
            }
            // An error reading the dead-letter queue: the receive below reports the queue.
            if due
                && let Ok(count) = self.dead_letters().await
                && alarmed != Some(count > 0)
            {
                match self.set_alarm(count).await {
                    Ok(()) => {
                        alarmed = Some(count > 0);
                        alarm_error = None;
                    }
                    Err(e) => {
                        if alarm_error.as_deref() != Some(e.as_str()) {
                            eprintln!(
                                "local-api: {label}: setting {}: {e}",
                                self.source.dead_letter_alarm
                            );
                        }
                        alarm_error = Some(e);
                    }
                }
            }
            match self.once().await {
                Ok(None) => last_error = None,
                Ok(Some(outcome)) => {
                    last_error = None;
                    let kept = outcome
                        .kept
                        .map(|why| format!("; kept the rest ({why})"))
                        .unwrap_or_default();
                    eprintln!(
                        "local-api: {label}: {} record(s), {} deleted{kept}",
                        outcome.received, outcome.deleted
                    );
                }
                Err(error) => {
                    // Once per distinct error: a queue that does not exist yet would otherwise
                    // print every second.
                    if last_error.as_deref() != Some(error.as_str()) {
                        eprintln!("local-api: {label}: {error}; retrying");
                    }
                    last_error = Some(error);
                    tokio::time::sleep(WAIT).await;
                }
            }
        }
    }

    /// Receives one batch (waiting up to [`WAIT`] for its first record) and hands it to the
    /// function; `None` when the queue was empty.
    async fn once(&self) -> Result<Option<BatchOutcome>, String> {
        let messages = self.receive_batch().await?;
        if messages.is_empty() {
            return Ok(None);
        }
        let Some(pool) = self.table.pick(self.source.function) else {
            // Not routed (yet): leave the batch to become visible again, as Lambda leaves a
            // queue whose mapping points at a missing function.
            return Ok(Some(BatchOutcome {
                received: messages.len(),
                deleted: 0,
                kept: Some("the function is not being served".into()),
            }));
        };
        let event = event(&self.source.arn, &self.region, &messages);
        let payload = Bytes::from(serde_json::to_vec(&event).map_err(|e| e.to_string())?);
        let request_id = uuid::Uuid::new_v4().to_string();
        let invoked = pool.invoke(&request_id, payload).await;
        let (failed, kept) = failures(&messages, invoked.result);
        let done: Vec<&aws_sdk_sqs::types::Message> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        self.delete(&done).await?;
        Ok(Some(BatchOutcome {
            received: messages.len(),
            deleted: done.len(),
            kept,
        }))
    }

    /// Messages waiting in the dead-letter queue.
    async fn dead_letters(&self) -> Result<usize, String> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.source.dead_letter_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(output
            .attributes
            .unwrap_or_default()
            .values()
            .filter_map(|v| v.parse::<usize>().ok())
            .sum())
    }

    /// Sets the dead-letter alarm as CloudWatch would for `count` messages in the queue.
    async fn set_alarm(&self, count: usize) -> Result<(), String> {
        let (state, reason) = if count > 0 {
            (
                aws_sdk_cloudwatch::types::StateValue::Alarm,
                format!("local-api: {count} message(s) in the dead-letter queue"),
            )
        } else {
            (
                aws_sdk_cloudwatch::types::StateValue::Ok,
                "local-api: the dead-letter queue is empty".to_string(),
            )
        };
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(&self.source.dead_letter_alarm)
            .state_value(state)
            .state_reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string())
    }

    /// Up to `batch_size` messages: the first receive waits up to [`WAIT`]; with a batching
    /// window, more receives follow until the batch is full or the window has passed.
    async fn receive_batch(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
        let queue = self.source.queue;
        let window = Duration::from_secs(queue.batching_window_seconds.into());
        let mut batch = Vec::new();
        let started = Instant::now();
        loop {
            let wanted = (queue.batch_size as usize - batch.len()).min(RECEIVE_MAX as usize);
            let wait = if batch.is_empty() {
                WAIT
            } else {
                Duration::ZERO
            };
            let output = self
                .client
                .receive_message()
                .queue_url(&self.source.url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(wait.as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "receiving from {}: {}",
                        self.source.url,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            let received = output.messages.unwrap_or_default();
            let empty = received.is_empty();
            batch.extend(received);
            let full = batch.len() >= queue.batch_size as usize;
            if batch.is_empty() || full || started.elapsed() >= window {
                return Ok(batch);
            }
            if empty {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn delete(&self, messages: &[&aws_sdk_sqs::types::Message]) -> Result<(), String> {
        for chunk in messages.chunks(RECEIVE_MAX as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.source.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "deleting from {}: {}",
                        self.source.url,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            if let Some(failed) = output.failed.first() {
                return Err(format!(
                    "deleting from {}: {} ({})",
                    self.source.url,
                    failed.message().unwrap_or_default(),
                    failed.code()
                ));
            }
        }
        Ok(())
    }
}

/// The event Lambda's poller sends for these messages of the queue `arn`: one record per
/// message, as `SqsEvent` reads it.
pub fn event(arn: &str, region: &str, messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.md5_of_message_attributes = m.md5_of_message_attributes.clone();
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_string(), value.clone()))
                .collect::<HashMap<_, _>>();
            record.message_attributes = m
                .message_attributes
                .iter()
                .flatten()
                .map(|(name, value)| {
                    let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
                    attribute.string_value = value.string_value.clone();
                    attribute.data_type = Some(value.data_type.clone());
                    (name.clone(), attribute)
                })
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(arn.to_string());
            record.aws_region = Some(region.to_string());
            record
        })
        .collect();
    event
}

/// The event `cargo xtask invoke --example sqs` sends: one record holding the queue's declared
/// `example` body, received once, now.
pub fn example_event(arn: &str, region: &str, queue: &catalog::Queue) -> SqsEvent {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let message = aws_sdk_sqs::types::Message::builder()
        .message_id(uuid::Uuid::new_v4().to_string())
        .receipt_handle(format!("example-{}", uuid::Uuid::new_v4()))
        .body(queue.example)
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
        .attributes(MessageSystemAttributeName::SentTimestamp, now.clone())
        .attributes(
            MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
            now,
        )
        .build();
    event(arn, region, &[message])
}

/// Creates every declared queue and its dead-letter queue in the emulator as infra does (the
/// names, the redrive after `max_receives`), for a stack without Terraform, and records them in
/// `outputs`. `visibility_timeout`: seconds a received message stays hidden (infra derives it
/// from the function's timeout; a test wants a failed record back within a second).
pub async fn create_declared(
    sqs: &aws_sdk_sqs::Client,
    outputs: &mut deploy_files::Outputs,
    prefix: &str,
    visibility_timeout: u32,
) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let arn_of = |url: String| async move {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("reading {url}: {e:?}"));
        let arn = attributes.attributes.unwrap_or_default()[&QueueAttributeName::QueueArn].clone();
        (url, arn)
    };
    for (_, queue) in catalog::queues() {
        let name = format!("{prefix}{}", catalog::queues::aws_suffix(queue.name));
        let dead_letter = sqs
            .create_queue()
            .queue_name(format!("{name}{}", catalog::queues::DEAD_LETTER_SUFFIX))
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating the dead-letter queue of {name}: {e:?}"));
        let (dead_letter_url, dead_letter_arn) =
            arn_of(dead_letter.queue_url.expect("a created queue has a URL")).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": queue.max_receives,
        });
        let created = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e:?}"));
        let (url, arn) = arn_of(created.queue_url.expect("a created queue has a URL")).await;
        let deployed = deploy_files::DeployedQueue {
            url,
            arn,
            dead_letter_url,
            dead_letter_arn,
        };
        outputs.queues.insert(queue.name.to_owned(), deployed);
    }
}

/// The message ids to keep on the queue after an invocation, and why (for the log), by
/// Lambda's rules for `ReportBatchItemFailures`.
fn failures(
    messages: &[aws_sdk_sqs::types::Message],
    result: Result<Bytes, InvokeError>,
) -> (BTreeSet<String>, Option<String>) {
    let all: BTreeSet<String> = messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    let body = match result {
        Ok(body) => body,
        Err(error) => return (all, Some(error.to_string())),
    };
    // An empty or null response is a success, as is `{}`.
    if body.iter().all(u8::is_ascii_whitespace) || body.as_ref() == b"null" {
        return (BTreeSet::new(), None);
    }
    let response: SqsBatchResponse = match serde_json::from_slice(&body) {
        Ok(response) => response,
        Err(e) => return (all, Some(format!("the response is no batch response: {e}"))),
    };
    let named: BTreeSet<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    if let Some(unknown) = named.iter().find(|id| !all.contains(*id)) {
        return (
            all,
            Some(format!(
                "batchItemFailures names `{unknown}`, which is not in the batch: the whole batch \
                 failed"
            )),
        );
    }
    let why = (!named.is_empty()).then(|| format!("{} failed record(s)", named.len()));
    (named, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> aws_sdk_sqs::types::Message {
        aws_sdk_sqs::types::Message::builder()
            .message_id(id)
            .receipt_handle(format!("r-{id}"))
            .body("{}")
            .build()
    }

    /// The example is the event Lambda would send for one message holding the declared body.
    #[test]
    fn the_example_event_carries_the_declared_body() {
        let (_, queue) = catalog::queues().next().expect("a declared queue");
        let arn = "arn:aws:sqs:us-east-1:123456789012:p-queue-x";
        let event: serde_json::Value =
            serde_json::to_value(example_event(arn, "us-east-1", queue)).unwrap();
        let record = &event["Records"][0];
        assert_eq!(record["body"], queue.example);
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], arn);
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
    }

    /// Lambda's rules for a batch response: named records stay, unknown ids or errors keep all.
    #[test]
    fn failures_follow_report_batch_item_failures() {
        let batch = [message("a"), message("b")];
        let ok = |body: &str| failures(&batch, Ok(Bytes::from(body.to_string())));
        assert_eq!(ok(r#"{"batchItemFailures":[]}"#), (BTreeSet::new(), None));
        assert_eq!(ok("null"), (BTreeSet::new(), None));
        let (kept, why) = ok(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#);
        assert_eq!(kept, BTreeSet::from(["b".to_string()]));
        assert_eq!(why.as_deref(), Some("1 failed record(s)"));
        let (kept, why) = ok(r#"{"batchItemFailures":[{"itemIdentifier":"z"}]}"#);
        assert_eq!(kept.len(), 2);
        assert!(why.unwrap().contains("not in the batch"));
        let (kept, why) = ok("\"done\"");
        assert_eq!(kept.len(), 2);
        assert!(why.unwrap().contains("no batch response"));
        let (kept, why) = failures(&batch, Err(InvokeError::Timeout));
        assert_eq!(kept.len(), 2);
        assert_eq!(why.as_deref(), Some("the function timed out"));
    }
}
