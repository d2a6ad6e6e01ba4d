//! Proves a deployment end to end: the API answers as the contract says, and what it said it
//! stored is in DynamoDB exactly so (read back with the SDK, not through the API).
//!
//! Works the same against `local` (the loopback server in front of moto) and AWS: it only needs
//! the outputs file, HTTP and DynamoDB read/delete access. Every run uses fresh test data and
//! removes what it created, falling back to direct DynamoDB deletes when the API cannot.

pub mod api;
pub mod cleanup;
pub mod load;
pub mod report;
pub mod steps;
pub mod store;
pub mod target;

pub use report::Report;
pub use target::Target;

/// Runs the whole smoke check (and the load step when `load` > 0) and always cleans up.
pub async fn run(target: &Target, dynamo: aws_sdk_dynamodb::Client, load: usize) -> Report {
    let api = api::Api::new(target);
    let store = store::Store::new(dynamo, target);
    let mut report = Report::new(target);
    let mut created = cleanup::Created::default();

    steps::run(&api, &store, &mut report, &mut created).await;
    if load > 0 && report.ok() {
        report.load =
            Some(load::run(&api, &store, load, &report.run_id.clone(), &mut created).await);
    }
    cleanup::run(&api, &store, &mut created, &mut report).await;
    report
}
