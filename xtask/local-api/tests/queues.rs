//! The local event source mapping: the server polls the emulator's queue for each declared
//! queue and hands batches to the consuming function, as Lambda's poller does.
//!
//! Everything is real: moto over HTTP with its SQS redrive, DynamoDB tables made as infra
//! makes them, and the `sweeper` function's own binary, which reports per-record failures.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use deploy_files::Outputs;
use local_api::{Options, Server};

const KEY: &str = "queues-api-key-0123456789";
/// A debug binary's first start on a busy 2-core machine, three receives one visibility
/// timeout apart, and moto's one-second long polls.
const WAIT: Duration = Duration::from_secs(90);
/// The queue's declaration (the one queue the catalog has today is `sweeper`'s).
const QUEUE: &str = "session-sweeps";

struct Fixture {
    _emulator: emulator::Emulator,
    dir: PathBuf,
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    sessions_table: String,
    queue_url: String,
    dead_letter_url: String,
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// The queue's dead-letter alarm, as infra names it.
    alarm: String,
    server: Option<Server>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    /// The tables, the declared queue with its dead-letter queue as infra makes them (but a
    /// visibility timeout of 1 s, so a failed record is back within a second), and the server
    /// with the real `sweeper` behind it.
    async fn start() -> Fixture {
        let emulator = emulator::Emulator::for_tests().expect("an emulator");
        let endpoint = emulator.endpoint().to_string();
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let prefix = format!("queues{id}-");
        let dir = support::scratch("queues");
        let dynamo = service_common::testing::client(&endpoint);
        let (users_table, sessions_table) = (format!("{prefix}users"), format!("{prefix}sessions"));
        service_common::testing::create_tables(&dynamo, &users_table, &sessions_table).await;

        let sqs = local_api::queues::client(&endpoint, "us-east-1");
        // The dead-letter alarm as infra makes it; the emulator never evaluates it.
        let cloudwatch = local_api::queues::Clients::new(&endpoint, "us-east-1").cloudwatch;
        let alarm = format!("{prefix}{}", catalog::queues::dead_letter_alarm(QUEUE));
        cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("AWS/SQS")
            .metric_name("ApproximateNumberOfMessagesVisible")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();

        let mut outputs = Outputs::fixture(&prefix, "v1", KEY);
        outputs.users_table = users_table;
        outputs.sessions_table = sessions_table.clone();
        // A failed record is back after 1 s (infra's timeout would make this test minutes).
        local_api::queues::create_declared(&sqs, &mut outputs, &prefix, 1).await;
        let deployed = &outputs.queues[QUEUE];
        let (queue_url, dead_letter_url) = (deployed.url.clone(), deployed.dead_letter_url.clone());
        let outputs_file = dir.join("outputs.json");
        outputs.write(&outputs_file).unwrap();

        let dist = support::dist_with_real(&dir, "sweeper");
        let mut options = Options::new(outputs_file, dist, endpoint);
        options.health_requires_api_key = Some(true);
        options.cors_allow_origins = Some(Vec::new());
        options.work_dir = Some(dir.join("work"));
        let server = Server::start(options).await.expect("the server starts");
        Fixture {
            _emulator: emulator,
            dir,
            sqs,
            dynamo,
            sessions_table,
            queue_url,
            dead_letter_url,
            cloudwatch,
            alarm,
            server: Some(server),
        }
    }

    fn sweeper_log(&self) -> String {
        std::fs::read_to_string(log_file(&self.dir)).unwrap_or_default()
    }

    /// Stored sessions of `user`, as the `by-user` index sees them.
    async fn sessions_of(&self, user: &str) -> usize {
        service_common::testing::scan(&self.dynamo, &self.sessions_table)
            .await
            .iter()
            .filter(|item| item.get("user_id") == Some(&AttributeValue::S(user.to_string())))
            .count()
    }

    async fn add_session(&self, user: &str) {
        self.dynamo
            .put_item()
            .table_name(&self.sessions_table)
            .item(
                "token_hash",
                AttributeValue::S(uuid::Uuid::new_v4().to_string()),
            )
            .item("user_id", AttributeValue::S(user.to_string()))
            .send()
            .await
            .unwrap();
    }

    /// The dead-letter alarm's state.
    async fn alarm_state(&self) -> String {
        let alarms = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(&self.alarm)
            .send()
            .await
            .unwrap();
        let alarm = alarms.metric_alarms().first().expect("the alarm exists");
        alarm.state_value().unwrap().as_str().to_string()
    }

    /// Messages waiting or in flight on `url`.
    async fn depth(&self, url: &str) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|v| v.parse::<usize>().unwrap())
            .sum()
    }
}

fn log_file(dir: &Path) -> PathBuf {
    dir.join("work/sweeper/output.log")
}

/// One batch with a good record and a poison one: the good one is swept once and deleted; the
/// poison one alone comes back, is tried `max_receives` (3) times in all and then sits in the
/// dead-letter queue, whose alarm goes from OK to ALARM; the source queue ends empty and the
/// other user's session is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_record_alone_is_retried_and_dead_letters_after_its_receives() {
    let f = Fixture::start().await;
    let started = Instant::now();
    while f.alarm_state().await != "OK" {
        assert!(
            started.elapsed() < WAIT,
            "the empty dead-letter queue's alarm is set to OK"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (swept, other) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    for _ in 0..3 {
        f.add_session(&swept).await;
    }
    f.add_session(&other).await;

    let entry = |id: &str, body: String| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
            .build()
            .unwrap()
    };
    let sent = f
        .sqs
        .send_message_batch()
        .queue_url(&f.queue_url)
        .entries(entry(
            "good",
            serde_json::json!({ "user_id": swept }).to_string(),
        ))
        .entries(entry("poison", "{\"user\": \"not a sweep\"}".into()))
        .send()
        .await
        .unwrap();
    let poison_id = sent
        .successful
        .iter()
        .find(|s| s.id == "poison")
        .unwrap()
        .message_id
        .clone();

    let started = Instant::now();
    let dead = loop {
        let received = f
            .sqs
            .receive_message()
            .queue_url(&f.dead_letter_url)
            // Looked at, not taken: it stays visible, as the alarm's metric counts it.
            .visibility_timeout(0)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if let Some(message) = received.into_iter().next() {
            break message;
        }
        assert!(
            started.elapsed() < WAIT,
            "nothing reached the dead-letter queue; the sweeper's log:\n{}",
            f.sweeper_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.message_id.as_deref(), Some(poison_id.as_str()));

    let log = f.sweeper_log();
    let lines_with = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    let declared = catalog::queues().find(|(_, q)| q.name == QUEUE).unwrap().1;
    assert_eq!(
        lines_with(&poison_id),
        declared.max_receives as usize,
        "the poison record is tried exactly max_receives times:\n{log}"
    );
    assert_eq!(
        lines_with(&swept),
        1,
        "the good record is swept once, not redelivered with the bad one:\n{log}"
    );
    assert_eq!(f.sessions_of(&swept).await, 0);
    assert_eq!(f.sessions_of(&other).await, 1);
    assert_eq!(
        f.depth(&f.queue_url).await,
        0,
        "nothing is left on the queue"
    );
}
