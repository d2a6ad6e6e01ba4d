//! `cargo xtask rollback`: point each function's `live` alias back to the
//! version it served before the last release, with all the traffic and no
//! routing weights (the record and its life are described in
//! `services::aliases::rollback`).

use anyhow::{Result, bail};

use crate::base::aws::{self, Target};
use crate::base::env::Env;
use crate::base::{process, progress};
use crate::cli::RollbackArgs;
use crate::services::aliases::{ALIAS, rollback};
use crate::services::local;

pub fn run(env: &Env, args: RollbackArgs) -> Result<()> {
    let scope = match (args.unfinished, args.older_than) {
        (true, Some(age)) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            rollback::Scope::UnfinishedBefore(now.saturating_sub(age).as_millis() as u64)
        }
        (true, None) => rollback::Scope::Unfinished,
        (false, _) => rollback::Scope::Last,
    };
    let target = if env.emulated {
        match local::running_moto(env) {
            Some(moto) => Target::emulator(env, &moto.endpoint),
            None if scope.only_unfinished() => {
                progress::note(format!(
                    "the emulator of `{}` is not running: no release there to finish",
                    env.name
                ));
                return report(env, &rollback::nothing(env, "no emulator running"));
            }
            None => bail!(
                "nothing to roll back to for `{}`: its emulator is not running, so nothing is \
                 deployed there (`cargo xtask deploy --env {}` first)",
                env.name,
                env.name
            ),
        }
    } else {
        let target = Target::real(env);
        let (account, arn) = process::block_on(aws::caller_identity(&target))?;
        progress::step(format!(
            "Rolling back `{}` in account {account} ({}) as {arn}",
            env.name, env.region
        ));
        target
    };
    report(env, &rollback::roll_back(env, &target, scope)?)
}

fn report(env: &Env, report: &rollback::Report) -> Result<()> {
    let mut human: Vec<String> = report
        .moved
        .iter()
        .map(|m| format!("{}: {ALIAS} {} -> {}", m.function, m.from, m.to))
        .collect();
    for function in &report.unchanged {
        human.push(format!(
            "{function}: {ALIAS} already on its recorded version"
        ));
    }
    if report.release.is_none() {
        human.push(format!("nothing to roll back: {}", report.source));
    }
    if !report.weighted.is_empty() {
        human.push(format!(
            "routing weights on the `{ALIAS}` alias of {}, with no unfinished release recorded",
            report.weighted.join(", ")
        ));
    }
    progress::finish(env.json, &serde_json::to_value(report)?, human.join("\n"));
    Ok(())
}
