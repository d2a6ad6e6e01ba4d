//! Running external programs and looking after the ones xtask leaves running.
//!
//! Every call goes through xshell's `cmd!` (arguments are values, never a
//! shell string) and every failure names the step that failed, so the user
//! reads "terraform init (service) failed" rather than an exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xshell::Cmd;

/// Runs `cmd` with the terminal attached (its progress stays visible).
pub fn run(step: &str, cmd: Cmd<'_>) -> Result<()> {
    cmd.run().with_context(|| format!("{step} failed"))
}

/// Looks `program` up on PATH, as the shell would.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Drives an async SDK call from the synchronous tasks.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime always builds")
        .block_on(future)
}

/// True while `pid` is a running (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        // No procfs (macOS): ask the kernel with signal 0.
        Err(_) if !Path::new("/proc/self").exists() => std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        Err(_) => false,
    }
}

/// Stops `pid` (SIGTERM, then SIGKILL after `grace`) and waits until it is gone.
pub fn stop_pid(sh: &xshell::Shell, pid: u32, grace: Duration) -> Result<()> {
    if !pid_alive(pid) {
        return Ok(());
    }
    let pid_arg = pid.to_string();
    // `kill` fails when the process exited in between; liveness decides.
    let _ = xshell::cmd!(sh, "kill {pid_arg}")
        .quiet()
        .ignore_stderr()
        .run();
    let deadline = Instant::now() + grace;
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        let _ = xshell::cmd!(sh, "kill -9 {pid_arg}")
            .quiet()
            .ignore_stderr()
            .run();
        std::thread::sleep(Duration::from_millis(100));
    }
    if pid_alive(pid) {
        bail!("process {pid} did not stop");
    }
    Ok(())
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Writes pretty JSON atomically (temporary file, then rename), so a reader
/// never sees half a file and an interrupted run leaves the old one.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The file's path relative to the workspace root when it is inside it, for
/// messages and manifests that should not depend on where the clone lives.
pub fn display_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
