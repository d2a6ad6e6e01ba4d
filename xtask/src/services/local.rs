//! The local stack: the moto emulator and the local API server that xtask
//! leaves running for emulated environments (`cargo xtask local`, deploy, smoke).
//!
//! Both are detached processes recorded by pid and port in `build/local/`
//! (`moto.json`, `local-api.json`); `down` stops exactly those pids, never
//! "every moto on the machine".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use deploy_files::ApiState;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::base::env::{BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::base::{process, progress};
use crate::services::artifacts::build;
use crate::services::stacks::state::LastDeploy;

/// `build/local/moto.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MotoState {
    pub pid: u32,
    pub port: u16,
    pub endpoint: String,
}

pub fn require_emulated(env: &Env) -> Result<()> {
    if !env.emulated {
        bail!(
            "`{}` is a real AWS environment; `local` commands manage the emulator of emulated \
             environments such as `local`",
            env.name
        );
    }
    Ok(())
}

/// The emulator's record: the environment's, which its stages share.
fn moto_file(env: &Env) -> PathBuf {
    env.base_dir().join("moto.json")
}

/// `build/<env>/logs/local-api.log`: the local API server's stdout and stderr, whose JSON
/// lines are its access log (one per request), read by `logs --all` and `trace`.
pub fn api_log_file(env: &Env) -> PathBuf {
    env.dir().join("logs").join("local-api.log")
}

fn api_file(env: &Env) -> PathBuf {
    env.dir().join(deploy_files::API_STATE_FILE)
}

/// The recorded emulator, if its process is alive and answering.
pub fn running_moto(env: &Env) -> Option<MotoState> {
    let state: MotoState = process::read_json(&moto_file(env)).ok()?;
    (process::pid_alive(state.pid) && emulator::is_ready(state.port)).then_some(state)
}

pub fn running_api(env: &Env) -> Option<ApiState> {
    let state: ApiState = process::read_json(&api_file(env)).ok()?;
    (process::pid_alive(state.pid) && process::port_open(state.port)).then_some(state)
}

/// Returns the running emulator, starting (and on first use installing) one
/// when there is none. A new emulator starts empty, so the Terraform state
/// that described the previous one is discarded with it.
pub fn ensure_up(env: &Env) -> Result<MotoState> {
    if let Some(state) = running_moto(env) {
        return Ok(state);
    }
    if let Ok(stale) = process::read_json::<MotoState>(&moto_file(env)) {
        if process::pid_alive(stale.pid) {
            // Alive but not answering: wedged. Replace it rather than wait forever.
            emulator::stop(stale.pid).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        progress::note(format!(
            "the emulator recorded in {} is gone; starting a new one",
            moto_file(env).display()
        ));
    }
    progress::step("Starting the AWS emulator (moto)");
    let detached = emulator::Emulator::spawn_detached()
        .map_err(|e| anyhow::anyhow!("starting the emulator: {e}"))?;
    let state = MotoState {
        pid: detached.pid,
        port: detached.port,
        endpoint: detached.endpoint,
    };
    forget_emulated_state(env)?;
    process::write_json(&moto_file(env), &state)?;
    progress::note(format!(
        "emulator at {} (pid {})",
        state.endpoint, state.pid
    ));
    Ok(state)
}

/// Deletes the state files that only made sense for a previous emulator: the environment's
/// and every stage's (a new emulator holds none of them).
fn forget_emulated_state(env: &Env) -> Result<()> {
    let env = &env.base();
    let stages = env.stages_dir();
    if stages.exists() {
        std::fs::remove_dir_all(&stages)
            .with_context(|| format!("removing {}", stages.display()))?;
    }
    for stack in [BOOTSTRAP_STACK, SERVICE_STACK] {
        for suffix in ["tfstate", "tfstate.backup"] {
            let path = env.dir().join(format!("{stack}.{suffix}"));
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    // Besides the record of the last deploy, the files earlier versions of xtask kept the
    // release record in (it now lives on the aliases).
    let legacy = [
        "previous-versions.json",
        "deploy-in-progress.json",
        "rolled-back.json",
    ]
    .map(|name| env.dir().join(name));
    for path in std::iter::once(LastDeploy::file(env)).chain(legacy) {
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Stops the local API server and the emulator; returns the pids stopped. The emulator holds
/// every stage of the environment, so their local API servers stop with it.
pub fn down(sh: &Shell, env: &Env) -> Result<(Option<u32>, Option<u32>)> {
    let base = env.base();
    for stage in base.local_stages() {
        stop_api(sh, &base.staged(&stage))?;
    }
    let api = stop_api(sh, &base)?;
    let moto = match process::read_json::<MotoState>(&moto_file(env)) {
        Ok(state) => {
            let stopped = emulator::stop(state.pid).map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::remove_file(moto_file(env))?;
            stopped.then_some(state.pid)
        }
        Err(_) => None,
    };
    Ok((api, moto))
}

pub fn stop_api(sh: &Shell, env: &Env) -> Result<Option<u32>> {
    let Ok(state) = process::read_json::<ApiState>(&api_file(env)) else {
        return Ok(None);
    };
    let was_alive = process::pid_alive(state.pid);
    process::stop_pid(sh, state.pid, Duration::from_secs(5))?;
    let _ = std::fs::remove_file(api_file(env));
    Ok(was_alive.then_some(state.pid))
}

/// Starts the local API server detached (after stopping a previous one) and
/// waits until it has written its state file and accepts connections.
pub fn start_api(sh: &Shell, env: &Env, moto: &MotoState) -> Result<ApiState> {
    stop_api(sh, env)?;
    progress::step("Starting the local API server");
    let binary = local_api_binary(sh, env)?;
    let state_path = api_file(env);
    let log = api_log_file(env);
    let log_file = deploy_files::open_private_log(&log, false)
        .with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(&binary);
    command
        .args(["--port", "0"])
        .arg("--outputs")
        .arg(env.outputs_file())
        .arg("--dist")
        .arg(env.dist())
        .args(["--endpoint", &moto.endpoint])
        .arg("--state")
        .arg(&state_path)
        .current_dir(&env.root)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in this terminal must not stop it.
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the local API server exited at start ({status}); its log:\n{}",
                tail(&log, 20)
            );
        }
        if let Ok(state) = process::read_json::<ApiState>(&state_path)
            && state.pid == child.id()
            && process::port_open(state.port)
        {
            return Ok(state);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "the local API server did not start within 60 s; its log:\n{}",
                tail(&log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The local API server and smoke binaries (debug) building in the background, so a deploy can
/// compile them beside the service stack's apply; [`start_api`] and the smoke run then find
/// them up to date. Dropped before [`Prebuild::wait`] (the deploy failed), it stops the build.
pub struct Prebuild(Option<std::process::Child>);

impl Prebuild {
    pub fn start() -> Prebuild {
        let child = emulator::cargo()
            .args(["build", "--quiet", "--bin", "local-api", "--bin", "smoke"])
            .current_dir(deploy_files::workspace_root())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok();
        Prebuild(child)
    }

    /// Waits for the build. Its failure is not reported here: the server's own build shows
    /// cargo's message right after.
    pub fn wait(mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Prebuild {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The local API server binary: built (debug, cheap when up to date) from
/// the workspace, so it always matches the source.
fn local_api_binary(sh: &Shell, env: &Env) -> Result<PathBuf> {
    process::run(
        "building the local API server (cargo build --bin local-api)",
        xshell::cmd!(sh, "cargo build --quiet --bin local-api").quiet(),
    )?;
    Ok(build::target_dir(env).join("debug").join("local-api"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where the running local API server records what it serves (`routing.json`).
pub fn routing_file(env: &Env, api: &ApiState) -> PathBuf {
    api.routing
        .clone()
        .unwrap_or_else(|| env.dir().join("functions").join(deploy_files::ROUTING_FILE))
}

/// Makes the running local API server re-read the aliases and the watch builds now (`SIGHUP`)
/// instead of at its next one-second refresh.
pub fn refresh_api(api: &ApiState) {
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &api.pid.to_string()])
        .status();
}
