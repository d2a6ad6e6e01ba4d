//! Sending a session sweep against the emulator (moto over HTTP, SQS's JSON protocol): one
//! message per request, in the shape the sweeper reads; a queue whose variable is missing
//! fails only the send, with an error line that names the user and the variable.

use service_common::queues::{SESSION_SWEEPS_URL, SweepQueue};
use service_common::sweeps::{QUEUE, SessionSweep};
use service_common::testing::{LogCapture, TestApp};

#[test]
fn the_variable_is_the_one_infra_sets() {
    assert_eq!(SESSION_SWEEPS_URL, catalog::queues::variable(QUEUE));
    // The queue is a declared one: some function consumes it.
    assert!(
        catalog::FUNCTIONS
            .iter()
            .any(|f| f.queues.iter().any(|q| q.name == QUEUE)),
        "no function consumes `{QUEUE}`"
    );
}

#[tokio::test]
async fn a_request_sends_one_sweep_of_the_user() {
    let app = TestApp::start().await;
    let queue = SweepQueue::new(app.sqs.clone(), Some(app.sweeps_url.clone()));
    let user_id = uuid::Uuid::new_v4();
    queue.request(user_id).await;
    let event = app.take_sweeps().await;
    assert_eq!(event.records.len(), 1);
    let body = event.records[0].body.as_deref().unwrap();
    let sweep: SessionSweep = serde_json::from_str(body).unwrap();
    assert_eq!(sweep, SessionSweep { user_id });
    assert!(app.take_sweeps().await.records.is_empty(), "taken once");
}

#[tokio::test]
async fn a_missing_queue_url_logs_the_user_and_sends_nothing() {
    let app = TestApp::start().await;
    let capture = LogCapture::default();
    let queue = SweepQueue::new(app.sqs.clone(), None);
    let user_id = uuid::Uuid::new_v4();
    let _guard = tracing::subscriber::set_default(capture.subscriber("info"));
    queue.request(user_id).await;
    let logged = capture.text(0..capture.len());
    let line: serde_json::Value = serde_json::from_str(logged.trim()).unwrap();
    assert_eq!(line["level"], "ERROR", "{logged}");
    assert_eq!(line["user_id"], user_id.to_string(), "{logged}");
    assert!(
        line["error"].as_str().unwrap().contains(SESSION_SWEEPS_URL),
        "{logged}"
    );
    assert!(app.take_sweeps().await.records.is_empty());
}
