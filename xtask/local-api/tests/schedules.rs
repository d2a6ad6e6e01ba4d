//! The local clock: every declared schedule fires and invokes its function through the server,
//! with the Scheduled Event infra gives the schedule on AWS.
//!
//! Real parts: moto over HTTP with the tables made as infra makes them, and the scheduled
//! function's own binary (`table_report`, the one the catalog has today), which describes the
//! tables and logs what it reported.

mod support;

use std::time::{Duration, Instant};

use deploy_files::Outputs;
use local_api::{Options, Server};

/// A debug binary's first start on a busy machine, then a few periods.
const WAIT: Duration = Duration::from_secs(60);

/// With `schedule_every` (what `--schedule-every 1s` sets) a daily schedule fires every second:
/// each run is a fresh invocation whose event names its own time, and the function reports both
/// tables each time.
#[tokio::test(flavor = "multi_thread")]
async fn every_schedule_fires_on_the_clock_with_its_event() {
    let (function, schedule) = catalog::schedules()
        .next()
        .expect("the catalog declares a schedule");
    assert_eq!(
        function.name, "table_report",
        "this test reads its log line"
    );
    let emulator = emulator::Emulator::for_tests().expect("an emulator");
    let endpoint = emulator.endpoint().to_string();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let prefix = format!("sched{id}-");
    let dir = support::scratch("schedules");
    let dynamo = service_common::testing::client(&endpoint);
    let outputs = Outputs::fixture(&prefix, "v1", "schedules-api-key-0123456789");
    service_common::testing::create_tables(&dynamo, &outputs.users_table, &outputs.sessions_table)
        .await;
    let outputs_file = dir.join("outputs.json");
    outputs.write(&outputs_file).unwrap();
    let dist = support::dist_with_real(&dir, function.name);
    let mut options = Options::new(outputs_file, dist, endpoint);
    options.health_requires_api_key = Some(true);
    options.cors_allow_origins = Some(Vec::new());
    options.work_dir = Some(dir.join("work"));
    options.schedule_every = Some(Duration::from_secs(1));
    let server = Server::start(options).await.expect("the server starts");

    let log = dir.join("work").join(function.name).join("output.log");
    let started = Instant::now();
    let reports = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reports: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line["message"] == "tables reported")
            .collect();
        if reports.len() >= 2 {
            break reports;
        }
        assert!(
            started.elapsed() < WAIT,
            "schedule {} did not fire twice; the function's log:\n{text}",
            schedule.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    server.shutdown().await;
    for report in &reports {
        assert_eq!(report["tables"], 2, "{report}");
    }
    assert_ne!(
        reports[0]["scheduled"], reports[1]["scheduled"],
        "each run's event carries its own time"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
