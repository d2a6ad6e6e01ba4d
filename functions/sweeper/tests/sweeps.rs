//! The sweeper against the emulator (moto over HTTP), invoked with the event Lambda's poller
//! builds from what was really sent to the queue: it removes every stored session of a user
//! that no longer authenticates (a deleted user's, a logged-out-everywhere user's) and nothing
//! else (a session started since, another user's, log-in counters, log-out markers), a message
//! delivered twice changes nothing more, and a batch with a malformed record fails that record
//! only.

use service_common::clock::Timestamp;
use service_common::queues::SweepQueue;
use service_common::store::{LoginAttempts, SessionStore};
use service_common::testing::TestApp;
use sweeper::{State, handle};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_sweep_removes_every_ended_session_of_the_user_and_nothing_else_and_may_repeat() {
    let app = TestApp::start().await;
    let user = app.seed_user("edsger@example.com", PASSWORD).await;
    let other = app.seed_user("tony@example.com", PASSWORD).await;
    let far = Timestamp::now().epoch_seconds() + 3600;
    // Many sessions (the sweep deletes them one call each), then the log-out that ends them.
    for _ in 0..25 {
        app.seed_session(user.id, far).await;
    }
    app.seed_session(other.id, far).await;
    let sessions = SessionStore::new(app.client.clone(), &app.sessions_table);
    sessions.log_out_everywhere(user.id).await.unwrap();
    // A session started after the log-out is live, however late the sweep runs.
    let fresh = app.seed_session(user.id, far).await;
    // What a sweep must never delete: the log-out marker (it keeps revoked sessions revoked)
    // and log-in counters (deleting one would reset the guessing limit).
    let attempts = LoginAttempts::new(app.client.clone(), &app.sessions_table);
    attempts.admit("guessed@example.com").await.unwrap();
    let others = app.attempt_items().await;
    assert_eq!(others.len(), 2, "the marker and the counter");

    let queue = SweepQueue::new(app.sqs.clone(), Some(app.sweeps_url.clone()));
    queue.request(user.id).await;
    let event = app.take_sweeps().await;
    assert_eq!(event.records.len(), 1);
    let state: State = app.state();
    let mut kept = vec![user.id.to_string(), other.id.to_string()];
    kept.sort();
    for delivery in ["first", "again"] {
        // SQS delivers at least once: the second delivery changes nothing and fails nothing.
        let response = handle(&state, event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{delivery}");
        assert_eq!(app.session_owners().await, kept, "{delivery}");
        assert_eq!(app.attempt_items().await, others, "{delivery}");
    }
    let live = sessions.get(&fresh.hash()).await.unwrap().unwrap();
    assert_eq!(live.user_id, user.id);
}

#[tokio::test]
async fn a_malformed_record_fails_alone() {
    let app = TestApp::start().await;
    // Users that do not exist (deleted): every session of theirs is dead.
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let far = Timestamp::now().epoch_seconds() + 3600;
    app.seed_session(first, far).await;
    app.seed_session(second, far).await;
    let queue = SweepQueue::new(app.sqs.clone(), Some(app.sweeps_url.clone()));
    queue.request(first).await;
    app.send_sweep(r#"{"user":"not a sweep"}"#).await;
    queue.request(second).await;
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
