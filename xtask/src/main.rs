//! `cargo xtask`: the project's life cycle (build, package, deploy, prove) as
//! one Rust program, so the only prerequisite is cargo itself.
//!
//! This file only parses the command line and dispatches. The code is in three layers, each
//! importing only the ones below it (the `tidy` test holds it to that): `commands` (one
//! module per command), `services` (the life cycle: artifacts, stacks, aliases, the local
//! stack) and `base` (environment, AWS clients, processes, output); `cli` declares the
//! command line that `main` parses and the commands read.

mod base;
mod cli;
mod commands;
mod services;
#[cfg(test)]
mod tidy;
#[cfg(test)]
mod workflows;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

use crate::base::{env, progress};
use crate::cli::{Command, Xtask};
use crate::commands::{
    bench, bootstrap, build, compare, deploy, destroy, doctor, invoke, local, logs, new, outputs,
    package, plan, remove, rollback, secret, smoke, stages, stats, synth, test, trace, watch,
};

fn main() -> ExitCode {
    forget_cargo_run_variables();
    // The functions' declarations, read before the command line (which offers their names):
    // a bad one stops every command here, with the manifest's path and what is wrong.
    if let Err(err) = catalog::load() {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let flags = Xtask::parse();
    progress::set_verbose(flags.global.verbose);
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo run` hands xtask the variables it sets for a package's binary (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...). Every cargo that xtask starts would inherit them, and some build
/// scripts (ring's) name them in `rerun-if-env-changed`: cargo then saw them change between a
/// build started from the shell and one started from xtask, re-ran the script and rebuilt
/// everything above it (rustls, every AWS SDK crate, xtask itself) on every other command.
fn forget_cargo_run_variables() {
    let set_by_cargo_run: Vec<std::ffi::OsString> = std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| emulator::set_by_cargo_for_a_package(name))
        .collect();
    for name in set_by_cargo_run {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::remove_var(name) };
    }
}

fn run(flags: Xtask) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = deploy_files::workspace_root();
    sh.change_dir(&root);
    // `doctor` must work even when the environment files are broken, and
    // `test` runs the whole suite regardless of environment.
    match flags.command {
        Command::Doctor => return doctor::run(&sh, &flags.global),
        Command::Test(args) => return test::run(&sh, &flags.global, args),
        // Both edit the workspace, not an environment.
        Command::New(args) => return new::run(flags.global.json, args),
        Command::Remove(args) => return remove::run(&sh, flags.global.json, args),
        _ => {}
    }
    let env = env::Env::load_stage(
        &flags.global.env,
        flags.global.stage.as_deref(),
        flags.global.json,
    )?;
    match flags.command {
        Command::Build(args) => build::run(&env, args),
        Command::Package(args) => package::run(&env, args),
        Command::Synth => synth::run(&env),
        Command::Plan(args) => plan::run(&env, args),
        Command::Compare(args) => compare::run(&env, args),
        Command::Deploy(args) => deploy::run(&sh, &env, args),
        Command::Outputs(args) => outputs::run(&env, args),
        Command::Logs(args) => logs::run(&env, args),
        Command::Trace(args) => trace::run(&env, args),
        Command::Stats(args) => stats::run(&env, args),
        Command::Watch => watch::run(&sh, &env),
        Command::Invoke(args) => invoke::run(&env, args),
        Command::Destroy(args) => destroy::run(&sh, &env, args),
        Command::Bootstrap(args) => bootstrap::run(&env, args),
        Command::Local(cmd) => local::run(&sh, &env, cmd),
        Command::Smoke(args) => smoke::run(&sh, &env, args),
        Command::Rollback(args) => rollback::run(&env, args),
        Command::Bench(args) => bench::run(&sh, &env, args),
        Command::Secret(cmd) => secret::run(&env, cmd),
        Command::Stages(args) => stages::run(&sh, &env, args),
        Command::Doctor | Command::Test(_) | Command::New(_) | Command::Remove(_) => {
            unreachable!("dispatched above")
        }
    }
}
