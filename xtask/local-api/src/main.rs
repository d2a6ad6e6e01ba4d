//! `local-api`: serves a deployment's REST API on loopback (see the library docs for why).
//!
//! Signals: SIGTERM or SIGINT stop it (and every function process); SIGHUP re-reads the
//! aliases at once (see `local_api::traffic` for `routing.json`, which shows when the change is
//! in use).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{Signal, SignalKind, signal};

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
    // Installed before the state file exists: whoever reads it may signal at once, and an
    // unhandled SIGHUP would end the process.
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let server = local_api::Server::start(cli.into_options()).await?;
    eprintln!("local-api: serving {}", server.url());
    wait_for_stop(&server, &mut hangup, &mut terminate).await;
    eprintln!("local-api: stopping");
    server.shutdown().await;
    Ok(())
}

/// `local down` sends SIGTERM; a terminal sends SIGINT. Either stops the function processes
/// too. SIGHUP (xtask after moving an alias) asks for an immediate refresh.
async fn wait_for_stop(server: &local_api::Server, hangup: &mut Signal, terminate: &mut Signal) {
    loop {
        tokio::select! {
            _ = terminate.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hangup.recv() => server.request_refresh(),
        }
    }
}
