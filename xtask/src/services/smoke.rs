//! Running the smoke crate against the deployed stack, with the same AWS target
//! deploy used (the emulator for `local`, where the local API server is started
//! first if it is not running): `cargo xtask smoke`, deploy's smoke gate and the
//! benchmark's loads.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::local::{self, MotoState};

/// The smoke run as a person reads it, `extra` passed to the smoke binary.
pub fn run(
    sh: &Shell,
    env: &Env,
    target: &Target,
    moto: Option<&MotoState>,
    extra: Vec<String>,
) -> Result<()> {
    serve_locally(sh, env, moto)?;
    let name = env.name.as_str();
    let outputs_file = env.outputs_file();
    let json = env.json.then_some("--json");
    let (program, prefix) = smoke_program();
    let mut command = cmd!(
        sh,
        "{program} {prefix...} --outputs {outputs_file} {json...} {extra...}"
    )
    .quiet();
    for (key, value) in target.process_env() {
        command = command.env(key, value);
    }
    progress::step(format!("Smoke-testing `{name}`"));
    process::run(&format!("smoke tests of `{name}`"), command)
}

/// `XTASK_SMOKE_BIN`: a smoke binary built beforehand. The deploy workflow
/// builds it in a job without cloud credentials and sets this in the job that
/// has them, so nothing compiles while a role session exists.
pub const SMOKE_BIN_VAR: &str = "XTASK_SMOKE_BIN";

/// The program that runs the smoke tests and the arguments before its own:
/// the prebuilt binary of `XTASK_SMOKE_BIN`, or `cargo run --bin smoke --`.
fn smoke_program() -> (std::ffi::OsString, Vec<&'static str>) {
    match std::env::var_os(SMOKE_BIN_VAR) {
        Some(bin) if !bin.is_empty() => (bin, Vec::new()),
        _ => (
            std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            vec!["run", "--quiet", "--bin", "smoke", "--"],
        ),
    }
}

/// For `local`, the smoke run needs the local API server.
fn serve_locally(sh: &Shell, env: &Env, moto: Option<&MotoState>) -> Result<()> {
    if let Some(moto) = moto
        && local::running_api(env).is_none()
    {
        local::start_api(sh, env, moto)?;
    }
    Ok(())
}

/// `deploy --smoke`: the smoke run as a gate. Its JSON report is kept in
/// `build/<env>/smoke-report.json` (returned); a failure names the first
/// failing step. Progress goes to stderr as usual.
pub fn gate(sh: &Shell, env: &Env, target: &Target, moto: Option<&MotoState>) -> Result<PathBuf> {
    serve_locally(sh, env, moto)?;
    progress::step(format!("Smoke-testing the release on `{}`", env.name));
    let report_path = env.dir().join("smoke-report.json");
    json_run(env, target, &report_path, &[])?;
    Ok(report_path)
}

/// The smoke run plus load steps (`load`: the smoke binary's `--load N`, `--mix N`,
/// `--mix-rate R`), for the benchmark; returns the JSON report (also kept in
/// `build/<env>/smoke-load-report.json`).
pub fn under_load(
    sh: &Shell,
    env: &Env,
    target: &Target,
    moto: Option<&MotoState>,
    load: &[String],
) -> Result<serde_json::Value> {
    serve_locally(sh, env, moto)?;
    let report_path = env.dir().join("smoke-load-report.json");
    let load: Vec<&str> = load.iter().map(String::as_str).collect();
    json_run(env, target, &report_path, &load)?;
    process::read_json(&report_path)
}

/// The smoke binary (see [`smoke_program`]) with `--json` and `extra` arguments, its report written to
/// `report_path`; a failure names the first failing step.
fn json_run(env: &Env, target: &Target, report_path: &Path, extra: &[&str]) -> Result<()> {
    let (program, prefix) = smoke_program();
    let output = Command::new(&program)
        .args(prefix)
        .args(["--json", "--outputs"])
        .arg(env.outputs_file())
        .args(extra)
        .envs(target.process_env())
        .current_dir(&env.root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| {
            format!(
                "running the smoke tests ({} {})",
                program.to_string_lossy(),
                smoke_program().1.join(" ")
            )
        })?;
    // The report records the HTTP exchanges with the API: secrets in them are masked, but it
    // is kept private all the same, like the outputs file beside it.
    process::write_private(report_path, &output.stdout)?;
    if output.status.success() {
        return Ok(());
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let failed = report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["ok"] == false))
        .map(|s| {
            format!(
                "step `{}`: {}",
                s["name"].as_str().unwrap_or("?"),
                s["failure"]["message"]
                    .as_str()
                    .or(s["detail"].as_str())
                    .unwrap_or("failed")
            )
        })
        .unwrap_or_else(|| format!("exit status {}", output.status));
    bail!(
        "the smoke run failed at {failed} (report: {})",
        process::display_path(&env.root, report_path)
    )
}
