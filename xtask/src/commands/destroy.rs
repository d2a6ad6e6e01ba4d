//! `cargo xtask destroy`: remove what deploy created (the environment's service stack, with
//! `--all` its bootstrap stack too; with `--stage` the stage's service stack).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use xshell::Shell;

use crate::base::env::{BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::base::progress;
use crate::cli::DestroyArgs;
use crate::services::stacks::state::LastDeploy;
use crate::services::stacks::teardown;
use crate::services::stacks::terraform::{self, Terraform};
use crate::services::{local, stages, target};

pub fn run(sh: &Shell, env: &Env, args: DestroyArgs) -> Result<()> {
    terraform::require()?;
    if env.stage.is_some() && args.all {
        bail!(
            "--all also destroys the bootstrap stack, which `{}` shares with its stages; destroy \
             the stage without it",
            env.name
        );
    }
    if !env.emulated && !args.yes {
        confirm(env)?;
    }
    let (target, _moto) = target::target(env)?;
    if env.stage.is_some() {
        let gone = stages::destroy(sh, env, &target)?;
        let json = serde_json::json!({
            "env": env.name,
            "stage": env.stage,
            "destroyed": [SERVICE_STACK],
            "checked_by_tag": gone.checked,
        });
        progress::finish(
            env.json,
            &json,
            format!(
                "destroyed the stage `{}`; nothing tagged with it is left ({} checks)",
                env.label(),
                gone.checked
            ),
        );
        return Ok(());
    }
    if env.emulated {
        local::stop_api(sh, env)?;
    }
    teardown::service_stack(env, &target)?;
    let mut destroyed = vec![SERVICE_STACK];
    if args.all {
        let tf = Terraform::new(env, BOOTSTRAP_STACK, target.terraform_env())?;
        progress::step("Destroying the bootstrap stack");
        tf.init()?;
        tf.destroy(None)?;
        destroyed.push(BOOTSTRAP_STACK);
        let _ = std::fs::remove_file(LastDeploy::file(env));
    }
    let json = serde_json::json!({ "env": env.name, "destroyed": destroyed });
    progress::finish(
        env.json,
        &json,
        format!("destroyed {} of `{}`", destroyed.join(" and "), env.name),
    );
    Ok(())
}

fn confirm(env: &Env) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to destroy `{}` without confirmation: pass --yes",
            env.label()
        );
    }
    eprint!(
        "Destroy the `{}` service stack in {}? Type `{}` to confirm: ",
        env.label(),
        env.region,
        env.label()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != env.label() {
        bail!("not confirmed; nothing destroyed");
    }
    Ok(())
}
