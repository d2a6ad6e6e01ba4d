//! `cargo xtask logs <function>`: a function's CloudWatch log events,
//! optionally followed like `tail -f`. On emulated environments the functions
//! run in the local API server, whose log files [`crate::local_logs`] reads.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::base::env::Env;
use crate::base::process;
use crate::cli::LogsArgs;
use crate::services::logs::{self as local_logs, format_ts};
use crate::services::target;

pub fn run(env: &Env, args: LogsArgs) -> Result<()> {
    let since = humantime::parse_duration(&args.since).with_context(|| {
        format!(
            "`--since {}` is not a duration like 30s, 10m, 2h or 1d",
            args.since
        )
    })?;
    if env.emulated {
        return local_logs::local(
            env,
            &args.function,
            args.filter.as_deref(),
            since,
            args.follow,
        );
    }
    let (target, _moto) = target::target(env)?;
    let group = format!("/aws/lambda/{}", env.function_name(&args.function));
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let mut start = now_ms - since.as_millis() as i64;
    process::block_on(async {
        let config = target.sdk_config().await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let mut token = None;
            let mut newest = start;
            loop {
                let mut request = logs
                    .filter_log_events()
                    .log_group_name(&group)
                    .start_time(start);
                if let Some(pattern) = &args.filter {
                    request = request.filter_pattern(pattern);
                }
                if let Some(t) = token.take() {
                    request = request.next_token(t);
                }
                let page = request.send().await.map_err(|err| {
                    anyhow::anyhow!(
                        "reading log group {group}: {}",
                        aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err)
                    )
                })?;
                for event in page.events() {
                    let id = event.event_id().unwrap_or_default().to_owned();
                    if !seen.insert(id) {
                        continue;
                    }
                    let ts = event.timestamp().unwrap_or_default();
                    newest = newest.max(ts);
                    let message = event.message().unwrap_or_default().trim_end();
                    if env.json {
                        println!(
                            "{}",
                            serde_json::json!({ "timestamp": ts, "stream": event.log_stream_name(), "message": message })
                        );
                    } else {
                        println!("{} {message}", format_ts(ts));
                    }
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            if !args.follow {
                return Ok(());
            }
            // Events can arrive late with older timestamps; overlap a little
            // and rely on `seen` to print each once.
            start = newest.saturating_sub(5_000).max(start);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_ts(3_723_004), "01:02:03.004");
    }
}
