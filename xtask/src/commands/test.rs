//! `cargo xtask test`: the README's one test command, and what CI runs.
//!
//! Three things overlap, because each waits on something else: pip installing the Python tools
//! into build/venv (network and disk) runs while cargo compiles the tests (CPU), and the test
//! binaries then run side by side under cargo-nextest, since most of their time is Terraform's
//! provider polls and moto round trips, not CPU (`.config/nextest.toml` sets how many at once).
//! ONE moto serves every test binary (through `TEST_AWS_ENDPOINT`); it is stopped however the
//! run ends. The GitHub workflows are linted last. Every failing part is listed and the exit
//! code is non-zero.
//!
//! Every cargo command here is `--locked`: `cargo xtask` itself already brought Cargo.lock up
//! to date, so this only stops a CI run from building anything but the committed lock file.
//!
//! Without cargo-nextest the suite runs under `cargo test`, one binary after another, and says
//! how much faster it would be otherwise.

use anyhow::{Result, anyhow, bail};
use xshell::{Shell, cmd};

use crate::base::{process, progress};
use crate::cli::{Global, TestArgs};

/// What `--fast` leaves out (a nextest filterset): every test binary or test that applies a
/// Terraform stack to the emulator (the life-cycle scenarios, `moto_apply`, the delivery
/// stack's apply), runs Terraform or checkov over every environment, or fuzzes the contract
/// for two minutes. Everything else, against moto and the real binaries, stays in.
const SLOW_TESTS: &str = "binary(life_cycle) | binary(moto_apply) | binary(terraform_validate) \
     | binary(checkov) | binary(contract_fuzz) | test(applies_to_the_emulator)";

pub fn run(sh: &Shell, _global: &Global, args: TestArgs) -> Result<()> {
    let nextest = has_nextest(sh);
    if !nextest {
        progress::note(
            "cargo-nextest is not installed: running the suite under `cargo test`, one test \
             binary at a time (several times slower; `cargo install --locked cargo-nextest`)",
        );
    }

    progress::step(
        "Compiling the tests, while the Python tools install into build/venv (moto, checkov, parliament, \
         schemathesis, actionlint, zizmor)",
    );
    let tools =
        std::thread::spawn(|| emulator::ensure_python_packages(&emulator::ALL_REQUIREMENTS));
    let compiled = if nextest {
        process::run(
            "compiling the tests",
            cmd!(
                sh,
                "cargo nextest run --workspace --locked --no-run --cargo-quiet"
            ),
        )
    } else {
        process::run(
            "compiling the tests",
            cmd!(sh, "cargo test --workspace --locked --no-run --quiet"),
        )
    };
    let venv_bin = tools
        .join()
        .map_err(|_| anyhow!("installing the Python tools panicked"))?
        .map_err(|e| anyhow!("{e}"))?;
    compiled?;
    if args.no_run {
        eprintln!("tests compiled and tools installed; nothing run (--no-run)");
        return Ok(());
    }

    progress::step("Starting the shared AWS emulator");
    // Dropped (and so stopped) when this function returns, on success or error.
    let moto = emulator::Emulator::start().map_err(|e| anyhow!("{e}"))?;
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
    let mut extra = args.args;
    if args.fast {
        if !nextest {
            bail!("--fast selects tests with a nextest filterset: install cargo-nextest");
        }
        progress::note(format!("--fast: leaving out {SLOW_TESTS}"));
        extra.extend(["-E".to_owned(), format!("not ({SLOW_TESTS})")]);
    }
    let suite = if nextest {
        progress::step("cargo nextest run --workspace");
        process::run(
            "cargo nextest run --workspace",
            cmd!(
                sh,
                "cargo nextest run --workspace --locked --cargo-quiet {extra...}"
            ),
        )
    } else {
        progress::step("cargo test --workspace");
        process::run(
            "cargo test --workspace",
            cmd!(sh, "cargo test --workspace --locked --quiet {extra...}"),
        )
    };
    if let Err(err) = suite {
        failures.push(format!("{err:#}"));
    }

    let workflows = deploy_files::workspace_root()
        .join(".github")
        .join("workflows");
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

fn has_nextest(sh: &Shell) -> bool {
    cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}
