//! `cargo xtask stats`: per-route requests, errors and p50/p99 latency from the functions'
//! metric lines, locally; on AWS the same lines are the dashboard's metrics.

use anyhow::{Context, Result, bail};

use crate::base::env::Env;
use crate::cli::StatsArgs;
use crate::services::stats;

pub fn run(env: &Env, args: StatsArgs) -> Result<()> {
    let since = humantime::parse_duration(&args.since).with_context(|| {
        format!(
            "`--since {}` is not a duration like 30s, 10m, 2h or 1d",
            args.since
        )
    })?;
    if !env.emulated {
        bail!(
            "`stats` reads the local log files; on `{}` CloudWatch turns the same metric lines \
             into metrics (namespace ProdService, dimensions Function and Route): see them in \
             CloudWatch's console",
            env.name
        );
    }
    stats::local(env, since, args.follow)
}
