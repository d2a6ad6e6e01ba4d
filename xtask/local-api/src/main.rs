//! `local-api`: serves a deployment's REST API on loopback (see the library docs for why).

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let server = local_api::Server::start(cli.into_options()).await?;
    eprintln!("local-api: serving {}", server.url());
    wait_for_stop().await;
    eprintln!("local-api: stopping");
    server.shutdown().await;
    Ok(())
}

/// `local down` sends SIGTERM; a terminal sends SIGINT. Either stops the function processes too.
async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
