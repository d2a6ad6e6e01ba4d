//! `cargo xtask watch`: rebuild a function on every saved change and have the local API server
//! serve the new build at once (no Terraform, no upload); the loop itself is a service so the
//! benchmark can time it.

use anyhow::Result;
use xshell::Shell;

use crate::base::env::Env;
use crate::services::watch;

pub fn run(sh: &Shell, env: &Env) -> Result<()> {
    watch::run(sh, env)
}
