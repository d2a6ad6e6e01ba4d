//! `cargo xtask smoke`: runs the smoke crate against the deployed stack,
//! with the same AWS target deploy used (the emulator for `local`, where the
//! local API server is started first if it is not running).

use anyhow::Result;
use xshell::Shell;

use crate::base::env::Env;
use crate::cli::SmokeArgs;
use crate::services::stacks::outputs;
use crate::services::{smoke, target};

pub fn run(sh: &Shell, env: &Env, args: SmokeArgs) -> Result<()> {
    // Fail early with "deploy first" rather than inside the smoke binary.
    outputs::load(env)?;
    let (target, moto) = target::target(env)?;
    smoke::run(sh, env, &target, moto.as_ref(), args.args)
}
