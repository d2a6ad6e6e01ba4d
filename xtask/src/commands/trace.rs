//! `cargo xtask trace REQUEST_ID`: one request from the access log through every function log
//! line to its cause, from the local API server's files or CloudWatch Logs Insights.

use anyhow::{Context, Result, bail};

use crate::base::env::Env;
use crate::cli::TraceArgs;
use crate::services::{logs, trace};

pub fn run(env: &Env, args: TraceArgs) -> Result<()> {
    let since = humantime::parse_duration(&args.since).with_context(|| {
        format!(
            "`--since {}` is not a duration like 30m, 2h or 1d",
            args.since
        )
    })?;
    let sources = logs::all_sources(env);
    let found = if env.emulated {
        trace::local(&sources, &args.request_id)?
    } else {
        trace::cloudwatch(
            env,
            &logs::log_groups(env, &sources),
            &args.request_id,
            since,
        )?
    };
    if found.lines.is_empty() {
        bail!(
            "no log line has request id {} ({}); is it the `x-request-id` of a request to this \
             environment (`--env {}`)?",
            args.request_id,
            if env.emulated {
                "in the local API server's log files".to_owned()
            } else {
                format!(
                    "in the functions' and the access log's groups over the last {}",
                    args.since
                )
            },
            env.name
        );
    }
    let cause = found.cause();
    if env.json {
        let mut value = serde_json::to_value(&found)?;
        value["cause"] = cause.into();
        value["xray_trace_id"] = found.xray_trace_id().into();
        println!("{value}");
        return Ok(());
    }
    print!("{}", found.render());
    match cause {
        Some(cause) => println!("cause: {cause}"),
        None => println!("no error logged for this request"),
    }
    if let Some(id) = found.xray_trace_id() {
        println!("X-Ray trace: {id}");
    }
    Ok(())
}
