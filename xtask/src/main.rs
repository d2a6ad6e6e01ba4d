//! `cargo xtask`: the project's life cycle (build, package, deploy, prove) as
//! one Rust program, so the only prerequisite is cargo itself.
//!
//! This file only parses the command line and dispatches; each task lives in
//! its own module with a `run(&Shell, ...)` entry point.

mod aws;
mod bench;
mod bootstrap;
mod build;
mod check;
mod cli;
mod deploy;
mod destroy;
mod doctor;
mod env;
mod hotswap;
mod local;
mod logs;
mod outputs;
mod package;
mod plan;
mod process;
mod progress;
mod release;
mod rollback;
mod sign;
mod smoke;
mod synth;
mod terraform;
mod test;
mod upload;
mod wait;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

use crate::cli::{Command, Xtask};

fn main() -> ExitCode {
    let flags = Xtask::parse();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Xtask) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = env::workspace_root();
    sh.change_dir(&root);
    // `doctor` must work even when the environment files are broken, and
    // `test` runs the whole suite regardless of environment.
    match flags.command {
        Command::Doctor => return doctor::run(&sh, &flags.global),
        Command::Test(args) => return test::run(&sh, &flags.global, args),
        _ => {}
    }
    let env = env::Env::load(&flags.global)?;
    match flags.command {
        Command::Build(args) => build::run(&sh, &env, args),
        Command::Package(args) => package::run(&sh, &env, args),
        Command::Synth => synth::run(&sh, &env),
        Command::Plan(args) => plan::run(&sh, &env, args),
        Command::Deploy(args) => deploy::run(&sh, &env, args),
        Command::Outputs(args) => outputs::run(&sh, &env, args),
        Command::Logs(args) => logs::run(&sh, &env, args),
        Command::Destroy(args) => destroy::run(&sh, &env, args),
        Command::Bootstrap(args) => bootstrap::run(&sh, &env, args),
        Command::Local(cmd) => local::run(&sh, &env, cmd),
        Command::Smoke(args) => smoke::run(&sh, &env, args),
        Command::Rollback => rollback::run(&env),
        Command::Bench(args) => bench::run(&sh, &env, args),
        Command::Doctor | Command::Test(_) => unreachable!("dispatched above"),
    }
}
