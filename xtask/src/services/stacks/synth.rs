//! Synthesis: the environment's Terraform JSON, written by the infra crate in
//! the layout CDK for Terraform produces (`cargo xtask synth`, and the first
//! step of every command that runs Terraform).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::base::env::Env;
use crate::base::progress;

/// Writes the stacks into [`Env::synth_out`]; returns how long it took.
pub fn synthesize(env: &Env) -> Result<Duration> {
    progress::step(match &env.stage {
        Some(stage) => format!(
            "Synthesizing the service stack of `{}`'s stage `{stage}`",
            env.name
        ),
        None => format!("Synthesizing the `{}` stacks", env.name),
    });
    let started = Instant::now();
    let out = env.synth_out();
    let result = if out == env.root.join("infra").join("cdktf.out") {
        infra::synth(&env.name, &out)
    } else {
        // A moved build folder (tests) keeps its Terraform state there too, and a stage's
        // state is under its environment's (`stages/<stage>/`).
        let config = env.config()?;
        let mut options = infra::synth::default_options(&env.name, &out);
        options.local_state_dir = env.base_dir().display().to_string();
        infra::synth_with(&config, &options, &out)
    };
    result.map_err(|e| anyhow!("synthesizing `{}`: {e}", env.label()))?;
    Ok(started.elapsed())
}
