//! Where AWS calls go for an environment: the emulator (started when needed) or a real
//! account (its credentials checked first). Every command that talks to AWS starts here.

use anyhow::Result;

use crate::base::aws::{self, Target};
use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::local::{self, MotoState};

/// Where AWS calls go for `env`; starts the emulator for emulated
/// environments and checks credentials for real ones.
pub fn target(env: &Env) -> Result<(Target, Option<MotoState>)> {
    if env.emulated {
        let moto = local::ensure_up(env)?;
        Ok((Target::emulator(env, &moto.endpoint), Some(moto)))
    } else {
        let target = Target::real(env);
        let (account, arn) = process::block_on(aws::caller_identity(&target))?;
        progress::step(format!(
            "Deploying `{}` to account {account} in {} as {arn}",
            env.name, env.region
        ));
        Ok((target, None))
    }
}
