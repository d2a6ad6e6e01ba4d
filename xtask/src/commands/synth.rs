//! `cargo xtask synth`: the environment's Terraform JSON, written by the
//! infra crate in the layout CDK for Terraform produces.

use anyhow::Result;

use crate::base::env::{BOOTSTRAP_STACK, DELIVERY_STACK, Env, SERVICE_STACK};
use crate::base::{process, progress};
use crate::services::stacks::synth::synthesize;

pub fn run(env: &Env) -> Result<()> {
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
    progress::finish(
        env.json,
        &json,
        format!("{}\nsynthesized in {:.0?}", stacks.join("\n"), elapsed),
    );
    Ok(())
}
