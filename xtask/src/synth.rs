//! `cargo xtask synth`: the environment's Terraform JSON, written by the
//! infra crate in the layout CDK for Terraform produces.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use xshell::Shell;

use crate::env::{BOOTSTRAP_STACK, DELIVERY_STACK, Env, SERVICE_STACK};
use crate::{process, progress};

pub fn run(_sh: &Shell, env: &Env) -> Result<()> {
    let elapsed = synthesize(env)?;
    let out = env.synth_out();
    // The delivery stack only exists for environments with `[delivery]`.
    let stacks: Vec<String> = [BOOTSTRAP_STACK, SERVICE_STACK, DELIVERY_STACK]
        .iter()
        .filter(|s| env.stack_dir(s).join("cdk.tf.json").exists())
        .map(|s| process::display_path(&env.root, &env.stack_dir(s).join("cdk.tf.json")))
        .collect();
    let json = serde_json::json!({
        "out_dir": process::display_path(&env.root, &out),
        "stacks": stacks,
        "seconds": elapsed.as_secs_f64(),
    });
    progress::result(
        env,
        &json,
        format!("{}\nsynthesized in {:.0?}", stacks.join("\n"), elapsed),
    );
    Ok(())
}

/// Writes the stacks into [`Env::synth_out`]; returns how long it took.
pub fn synthesize(env: &Env) -> Result<Duration> {
    progress::step(format!("Synthesizing the `{}` stacks", env.name));
    let started = Instant::now();
    let out = env.synth_out();
    let result = if out == env.root.join("infra").join("cdktf.out") {
        infra::synth(&env.name, &out)
    } else {
        // A moved build folder (tests) keeps its Terraform state there too.
        let config = infra::load_config(&env.name).map_err(|e| anyhow!("{e}"))?;
        let mut options = infra::synth::default_options(&env.name, &out);
        options.local_state_dir = env.dir().display().to_string();
        infra::synth_with(&config, &options, &out)
    };
    result.map_err(|e| anyhow!("synthesizing `{}`: {e}", env.name))?;
    Ok(started.elapsed())
}
