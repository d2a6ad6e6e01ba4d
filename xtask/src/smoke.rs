//! `cargo xtask smoke`: runs the smoke crate against the deployed stack,
//! with the same AWS target deploy used (the emulator for `local`, where the
//! local API server is started first if it is not running).

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::cli::SmokeArgs;
use crate::env::Env;
use crate::{deploy, local, outputs, process, progress};

pub fn run(sh: &Shell, env: &Env, args: SmokeArgs) -> Result<()> {
    // Fail early with "deploy first" rather than inside the smoke binary.
    outputs::load(env)?;
    let (target, moto) = deploy::target(env)?;
    if let Some(moto) = &moto
        && local::running_api(env).is_none()
    {
        local::start_api(sh, env, moto)?;
    }
    let name = env.name.as_str();
    let outputs_file = env.outputs_file();
    let json = env.json.then_some("--json");
    let extra = args.args;
    let mut command = cmd!(
        sh,
        "cargo run --quiet -p smoke -- --outputs {outputs_file} {json...} {extra...}"
    );
    for (key, value) in target.process_env() {
        command = command.env(key, value);
    }
    progress::step(format!("Smoke-testing `{name}`"));
    process::run(&format!("smoke tests of `{name}`"), command)
}
