//! What a deploy needs before it compiles anything, checked in a second or two.
//!
//! A fresh deploy compiles for minutes before it first runs terraform or the emulator, so a
//! missing tool or an unreachable provider used to show only after that. `doctor` lists the
//! same facts for a person; this stops the command that needs them.

use std::path::Path;

use anyhow::Result;

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::stacks::terraform;

/// What `deploy` needs before it compiles anything, checked in a second or two: terraform,
/// the AWS provider it will install, and (for emulated environments) python3 for the
/// emulator. A missing one stops the deploy with what to do, instead of after minutes of
/// compiling.
pub fn check(env: &Env) -> Result<()> {
    terraform::require()?;
    if env.emulated {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        if process::find_program(&python).is_none() && !Path::new(&python).is_file() {
            anyhow::bail!(
                "{python} was not found on PATH; the `{}` environment runs the AWS emulator \
                 (moto) in a Python venv. Install Python 3.9+ with the venv module and run again",
                env.name
            );
        }
    }
    let provider = terraform::provider_source(&env.build_root)?;
    progress::note(format!("hashicorp/aws provider: {provider}"));
    Ok(())
}
