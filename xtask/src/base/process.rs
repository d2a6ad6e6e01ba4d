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
    write_atomic(path, json_text(value)?.as_bytes())
}

/// [`write_json`] for a file that holds a secret (the outputs file holds the API key): see
/// [`write_private`].
pub fn write_json_private<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    write_private(path, json_text(value)?.as_bytes())
}

fn json_text<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// Writes `bytes` to `path` atomically, with the default mode (0666 less the umask).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_through_temporary(path, bytes, 0o666)
}

/// Writes a file that holds a key, token or password: mode 0600 from the start, not a
/// world-readable file tightened afterwards (a reader could open it in between). The
/// temporary file is created 0600 and renamed over `path`, so a file left wider by an
/// older version is replaced by a private one on the next write.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_through_temporary(path, bytes, 0o600)
}

/// A temporary file beside `path` (same file system, so the rename is atomic), created new
/// with `mode` (less the umask): `create_new` means a stale temporary file left by a killed run
/// is never reused with whatever mode it had.
fn write_through_temporary(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("a file path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    match std::fs::remove_file(&tmp) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing {}", tmp.display()));
        }
        _ => {}
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Takes group and other permissions off an existing file that holds a secret but that
/// xtask does not write itself (Terraform's local state, which holds the API key): Terraform
/// rewrites an existing state file in place, keeping its mode. A missing file is fine.
pub fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-process-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_are_0600_new_rewritten_and_over_a_stale_temporary_file() {
        let dir = scratch("private");
        let path = dir.join("nested").join("outputs.json");
        write_json_private(&path, &serde_json::json!({ "api_key_value": "k" })).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"k\""));

        // A file an older xtask left world-readable is replaced by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // So is a temporary file a killed run left behind, with a wide mode.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, "stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&path, b"new\n").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert!(!tmp.exists());
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["outputs.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn make_private_tightens_existing_files_and_ignores_missing_ones() {
        let dir = scratch("tighten");
        let state = dir.join("service.tfstate");
        std::fs::write(&state, "{}").unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&state).unwrap();
        assert_eq!(mode(&state), 0o600);
        make_private(&dir.join("missing.tfstate")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
