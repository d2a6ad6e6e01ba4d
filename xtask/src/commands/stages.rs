//! `cargo xtask stages`: the environment's stages, and `stages sweep`: destroy the idle ones.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use xshell::Shell;

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::{StagesArgs, StagesCommand, SweepArgs};
use crate::services::stages::{self, Record};
use crate::services::target;

pub fn run(sh: &Shell, env: &Env, args: StagesArgs) -> Result<()> {
    if env.stage.is_some() {
        bail!("`stages` acts on all of an environment's stages: drop --stage");
    }
    let (target, _moto) = target::target(env)?;
    let records = stages::list(env, &target)?;
    let now = Utc::now();
    match args.command {
        None => {
            let json = serde_json::to_value(&records)?;
            progress::finish(env.json, &json, table(&records, now, &env.name));
        }
        Some(StagesCommand::Sweep(sweep)) => {
            let idle = stages::idle(&records, sweep.older_than, now);
            let names: Vec<&str> = idle.iter().map(|r| r.stage.as_str()).collect();
            if sweep.dry_run || idle.is_empty() {
                let json = serde_json::json!({ "env": env.name, "idle": names, "destroyed": [] });
                let human = match names.is_empty() {
                    true => format!(
                        "no stage of `{}` idle for longer than {}",
                        env.name,
                        humantime::format_duration(sweep.older_than)
                    ),
                    false => format!("would destroy: {}", names.join(", ")),
                };
                progress::finish(env.json, &json, human);
                return Ok(());
            }
            confirm(env, &sweep, &names)?;
            let mut destroyed = Vec::new();
            let mut failed = Vec::new();
            for record in idle {
                let staged = env.staged(&record.stage);
                // One stage that fails to go must not keep the others alive.
                match stages::destroy(sh, &staged, &target) {
                    Ok(_) => destroyed.push(record.stage.clone()),
                    Err(e) => {
                        progress::note(format!("stage `{}`: {e:#}", record.stage));
                        failed.push(record.stage.clone());
                    }
                }
            }
            let json = serde_json::json!({
                "env": env.name, "idle": names, "destroyed": destroyed, "failed": failed,
            });
            progress::finish(
                env.json,
                &json,
                format!(
                    "destroyed {} idle stage(s): {}",
                    destroyed.len(),
                    destroyed.join(", ")
                ),
            );
            if !failed.is_empty() {
                bail!(
                    "{} stage(s) not destroyed: {}",
                    failed.len(),
                    failed.join(", ")
                );
            }
        }
    }
    Ok(())
}

fn confirm(env: &Env, sweep: &SweepArgs, names: &[&str]) -> Result<()> {
    if env.emulated || sweep.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to destroy {} stage(s) of `{}` without confirmation: pass --yes",
            names.len(),
            env.name
        );
    }
    eprint!(
        "Destroy the stages {} of `{}`? Type `yes` to confirm: ",
        names.join(", "),
        env.name
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed; nothing destroyed");
    }
    Ok(())
}

/// One line per stage: name, age, last deploy, commit, URL.
fn table(records: &[Record], now: DateTime<Utc>, env: &str) -> String {
    if records.is_empty() {
        return format!(
            "`{env}` has no stages (`cargo xtask deploy --env {env} --stage NAME` makes one)"
        );
    }
    let ago = |t: DateTime<Utc>| {
        let seconds = (now - t).num_seconds().max(0) as u64;
        // Minutes are enough to judge idleness.
        humantime::format_duration(std::time::Duration::from_secs(seconds / 60 * 60)).to_string()
    };
    let mut lines = vec![format!(
        "{:<8} {:<14} {:<14} {:<9} URL",
        "STAGE", "AGE", "LAST DEPLOY", "COMMIT"
    )];
    for r in records {
        let commit = r.commit.as_deref().map_or("-", |c| &c[..c.len().min(8)]);
        lines.push(format!(
            "{:<8} {:<14} {:<14} {:<9} {}",
            r.stage,
            ago(r.created),
            format!("{} ago", ago(r.deployed)),
            commit,
            r.url
        ));
    }
    lines.join("\n")
}
