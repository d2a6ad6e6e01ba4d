//! The sweeper against the emulator (moto over HTTP), invoked with the event Lambda's poller
//! builds from what was really sent to the queue: it removes every stored session of the
//! users named and nothing else (another user's sessions, log-in counters, log-out markers),
//! a message delivered twice changes nothing more, and a batch with a malformed record fails
//! that record only.

use service_common::clock::Timestamp;
use service_common::queues::SweepQueue;
use service_common::store::{LoginAttempts, SessionStore};
use service_common::sweeps::Ended;
use service_common::testing::TestApp;
use sweeper::{State, handle};
use uuid::Uuid;

#[tokio::test]
async fn a_sweep_removes_every_session_of_the_user_and_nothing_else_and_may_repeat() {
    let app = TestApp::start().await;
    let (swept, kept) = (Uuid::new_v4(), Uuid::new_v4());
    let far = Timestamp::now().epoch_seconds() + 3600;
    // Many sessions (the sweep deletes them one call each), and another user's.
    for _ in 0..25 {
        app.seed_session(swept, far).await;
    }
    for _ in 0..2 {
        app.seed_session(kept, far).await;
    }
    // What a sweep must never delete: the log-out marker (it keeps revoked sessions revoked)
    // and log-in counters (deleting one would reset the guessing limit).
    let sessions = SessionStore::new(app.client.clone(), &app.sessions_table);
    let logouts = sessions.log_out_everywhere(swept).await.unwrap();
    assert_eq!(logouts, 1);
    let attempts = LoginAttempts::new(app.client.clone(), &app.sessions_table);
    attempts.admit("guessed@example.com").await.unwrap();
    let others = app.attempt_items().await;
    assert_eq!(others.len(), 2, "the marker and the counter");

    let queue = SweepQueue::new(app.sqs.clone(), Some(app.sweeps_url.clone()));
    queue.request(swept, Ended::All).await;
    let event = app.take_sweeps().await;
    assert_eq!(event.records.len(), 1);
    let state: State = app.state();
    let response = handle(&state, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(app.session_owners().await, vec![kept.to_string(); 2]);
    assert_eq!(app.attempt_items().await, others);

    // Delivered again (SQS delivers at least once): the same outcome, no failure.
    let response = handle(&state, event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(app.session_owners().await, vec![kept.to_string(); 2]);
    assert_eq!(app.attempt_items().await, others);
}

#[tokio::test]
async fn a_malformed_record_fails_alone() {
    let app = TestApp::start().await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let far = Timestamp::now().epoch_seconds() + 3600;
    app.seed_session(first, far).await;
    app.seed_session(second, far).await;
    let queue = SweepQueue::new(app.sqs.clone(), Some(app.sweeps_url.clone()));
    queue.request(first, Ended::All).await;
    app.send_sweep(r#"{"user":"not a sweep"}"#).await;
    queue.request(second, Ended::All).await;
    let event = app.take_sweeps().await;
    assert_eq!(event.records.len(), 3);
    let malformed = event
        .records
        .iter()
        .find(|record| {
            record
                .body
                .as_deref()
                .is_some_and(|b| b.contains("not a sweep"))
        })
        .and_then(|record| record.message_id.clone())
        .unwrap();

    let response = handle(&app.state(), event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [malformed.as_str()]);
    assert!(
        app.session_items().await.is_empty(),
        "both good records swept"
    );
}
