//! Proves a deployment end to end: the API answers as the contract says, and what it said it
//! stored is in DynamoDB exactly so (read back with the SDK, not through the API).
//!
//! Works the same against `local` (the loopback server in front of moto) and AWS: it only needs
//! the outputs file, HTTP and DynamoDB read/delete access. Every run uses fresh test data and
//! removes what it created, falling back to direct DynamoDB deletes when the API cannot.

pub mod api;
pub mod cleanup;
pub mod load;
pub mod mix;
pub mod report;
pub mod steps;
pub mod store;
pub mod target;

pub use report::Report;
pub use target::Target;

/// The load steps to run after the smoke steps.
#[derive(Debug, Clone, Default)]
pub struct Loads {
    /// Users to register and log in concurrently ([`load`]); 0: none.
    pub burst: usize,
    /// Requests of the mix ([`mix`]); 0: none.
    pub mix: usize,
    /// The mix's pace, requests per second; `None`: unpaced.
    pub mix_rate: Option<f64>,
}

/// Runs the whole smoke check (and the load steps `loads` asks for) and always cleans up.
pub async fn run(target: &Target, dynamo: aws_sdk_dynamodb::Client, loads: &Loads) -> Report {
    let api = api::Api::new(target);
    let store = store::Store::new(dynamo, target);
    let mut report = Report::new(target);
    let mut created = cleanup::Created::default();

    steps::run(&api, &store, &mut report, &mut created).await;
    let run_id = report.run_id.clone();
    if loads.burst > 0 && report.ok() {
        report.load = Some(load::run(&api, &store, loads.burst, &run_id, &mut created).await);
    }
    if loads.mix > 0 && report.ok() {
        report.mix = Some(mix::run(&api, loads.mix, loads.mix_rate, &run_id, &mut created).await);
    }
    cleanup::run(&api, &store, &mut created, &mut report).await;
    report
}
