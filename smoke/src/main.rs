//! `smoke`: prove a deployment works and persisted what it said (see the library docs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Prove a deployed stack end to end: API answers and the DynamoDB items behind them.
#[derive(Debug, Parser)]
#[command(name = "smoke", version)]
struct Cli {
    /// The deployment's outputs file (`build/<env>/outputs.json`).
    #[arg(long, default_value = "build/local/outputs.json")]
    outputs: PathBuf,
    /// Print the report as JSON (for CI).
    #[arg(long)]
    json: bool,
    /// Also register and log in N users concurrently and report p50/p99 and errors.
    #[arg(long, default_value_t = 0)]
    load: usize,
    /// Also send N requests of the mix (80% reads, 15% log-ins, 5% registrations), after each
    /// kind's share alone, and report requests per second, p50/p99 and errors of each phase.
    #[arg(long, default_value_t = 0)]
    mix: usize,
    /// The mix's pace in requests per second (default: as fast as 32 in flight allow).
    #[arg(long)]
    mix_rate: Option<f64>,
    /// Use this invoke URL instead of the outputs' (or the local server's state file).
    #[arg(long)]
    api_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match smoke::Target::from_outputs(&cli.outputs, cli.api_url.as_deref()) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("smoke: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The standard chain: env credentials or profile on AWS; for `local`, AWS_ENDPOINT_URL and
    // the test credentials that xtask exports.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(target.region.clone()))
        .load()
        .await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let loads = smoke::Loads {
        burst: cli.load,
        mix: cli.mix,
        mix_rate: cli.mix_rate,
    };
    let report = smoke::run(&target, dynamo, &loads).await;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        if cli.json {
            let step = report
                .first_failure()
                .map(|s| s.name.as_str())
                .unwrap_or("load");
            eprintln!("smoke FAILED at step `{step}`");
        }
        ExitCode::FAILURE
    }
}
