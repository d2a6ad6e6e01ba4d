//! `cargo xtask test`: the README's one test command, and what CI runs.
//!
//! Installs the Python tools into build/venv, starts ONE moto that every
//! test binary shares (through `TEST_AWS_ENDPOINT`), runs the workspace's
//! tests, then lints the GitHub workflows. The emulator is stopped however
//! the run ends; every failing part is listed and the exit code is non-zero.

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::cli::{Global, TestArgs};
use crate::{env, process, progress};

pub fn run(sh: &Shell, _global: &Global, args: TestArgs) -> Result<()> {
    progress::step("Ensuring the Python tools in build/venv (moto, checkov, actionlint, zizmor)");
    let venv_bin = emulator::ensure_python_packages(&emulator::ALL_REQUIREMENTS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    progress::step("Starting the shared AWS emulator");
    // Dropped (and so stopped) when this function returns, on success or error.
    let moto = emulator::Emulator::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    progress::note(format!("moto at {}", moto.endpoint()));

    let path = match std::env::var_os("PATH") {
        Some(old) => std::env::join_paths(
            std::iter::once(venv_bin.clone()).chain(std::env::split_paths(&old)),
        )?,
        None => venv_bin.clone().into_os_string(),
    };
    let _path = sh.push_env("PATH", &path);
    let _endpoint = sh.push_env(emulator::TEST_ENDPOINT_VAR, moto.endpoint());

    let mut failures = Vec::new();
    progress::step("cargo test --workspace");
    let extra = args.args;
    if let Err(err) = process::run(
        "cargo test --workspace",
        cmd!(sh, "cargo test --workspace {extra...}"),
    ) {
        failures.push(format!("{err:#}"));
    }

    let workflows = env::workspace_root().join(".github").join("workflows");
    if !args.no_scans && workflows.is_dir() {
        progress::step("actionlint .github/workflows");
        let actionlint = venv_bin.join("actionlint");
        if let Err(err) = process::run("actionlint", cmd!(sh, "{actionlint} -color=false")) {
            failures.push(format!("{err:#}"));
        }
        progress::step("zizmor .github/workflows");
        let zizmor = venv_bin.join("zizmor");
        if let Err(err) = process::run("zizmor", cmd!(sh, "{zizmor} --offline {workflows}")) {
            failures.push(format!("{err:#}"));
        }
    }
    drop(moto);
    if !failures.is_empty() {
        bail!(
            "{} part(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    eprintln!("all tests and scans passed");
    Ok(())
}
