//! The table report against the emulator (moto over HTTP), invoked with the event its
//! schedule sends (`catalog::schedules::event`, as infra hands it to Scheduler and the local
//! clock sends it): it reports each table's item count, and a table it cannot read fails the
//! invocation.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use catalog::schedules::{Context, event};
use service_common::clock::Timestamp;
use service_common::testing::TestApp;
use table_report::{State, handle};

/// The event of the function's declared schedule, at a real time.
fn scheduled_event() -> EventBridgeEvent {
    let declared = catalog::find("table_report").expect("the catalog has the table report");
    assert_eq!(declared.schedules.len(), 1);
    let schedule = &declared.schedules[0];
    assert_eq!(schedule.expression, "rate(1 day)");
    let context = Context {
        execution_id: "e-1",
        scheduled_time: "2026-12-07T03:00:00Z",
        schedule_arn: "arn:aws:scheduler:us-east-1:123456789012:schedule/default/p-table-report",
    };
    let text = event(schedule.input, context, "123456789012", "us-east-1");
    serde_json::from_str(&text).expect("a Scheduled Event")
}

#[tokio::test]
async fn the_report_counts_the_items_of_each_table() {
    let app = TestApp::start().await;
    let far = Timestamp::now().epoch_seconds() + 3600;
    for _ in 0..3 {
        app.seed_session(uuid::Uuid::new_v4(), far).await;
    }
    let state: State = app.state();
    let report = handle(&state, "r-1", scheduled_event()).await.unwrap();
    let figures: Vec<(&str, i64)> = report
        .tables
        .iter()
        .map(|size| (size.table.as_str(), size.item_count))
        .collect();
    assert_eq!(
        figures,
        [
            (app.users_table.as_str(), 0),
            (app.sessions_table.as_str(), 3)
        ]
    );
    assert!(report.tables.iter().all(|size| size.size_bytes >= 0));
}

#[tokio::test]
async fn a_table_it_cannot_read_fails_the_invocation() {
    let app = TestApp::start_with(|config| config.users_table = "no-such-table".into()).await;
    let error = handle(&app.state::<State>(), "r-2", scheduled_event())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "internal_error");
}
