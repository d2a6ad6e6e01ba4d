//! `cargo xtask logs <function>` and `logs --all`: CloudWatch log events on AWS, the local API
//! server's log files on emulated environments, optionally followed like `tail -f`.

use anyhow::{Context, Result};

use crate::base::env::Env;
use crate::cli::LogsArgs;
use crate::services::logs;

pub fn run(env: &Env, args: LogsArgs) -> Result<()> {
    let since = humantime::parse_duration(&args.since).with_context(|| {
        format!(
            "`--since {}` is not a duration like 30s, 10m, 2h or 1d",
            args.since
        )
    })?;
    let sources = match &args.function {
        Some(function) if !args.all => vec![logs::function_source(env, function)],
        _ => logs::all_sources(env),
    };
    let filter = args.filter.as_deref();
    if env.emulated {
        logs::local(env, &sources, filter, since, args.follow)
    } else {
        logs::cloudwatch(
            env,
            &logs::log_groups(env, &sources),
            filter,
            since,
            args.follow,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::services::logs::format_ts;

    #[test]
    fn timestamps() {
        assert_eq!(format_ts(3_723_004), "01:02:03.004");
    }
}
