//! One execution environment: a function process and the runtime endpoint it polls.
//!
//! Like a Lambda sandbox, an instance handles one invocation at a time, is reused while it
//! behaves, and is thrown away (process killed) when it crashes, reports an init error, runs
//! past its timeout or its peak resident memory passes the function's memory size. Dropping an [`Instance`] kills its process, so cancelling an invocation
//! (API Gateway's integration timeout) cleans up by itself.

use std::fs::OpenOptions;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};

use crate::function_env::FunctionSpec;
use crate::runtime_api::{Fault, Invocation, Outcome, RuntimeApi};

/// Why an invocation produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The process could not be started at all.
    Spawn(String),
    /// The process exited or reported an init error before answering.
    Crashed(String),
    /// The handler returned an error (`/invocation/{id}/error`).
    FunctionError(String),
    /// The function ran past its own configured timeout and was killed.
    Timeout,
    /// The response was larger than Lambda allows.
    ResponseTooLarge,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Spawn(e) => write!(f, "could not start the function process: {e}"),
            InvokeError::Crashed(e) => write!(f, "the function process died: {e}"),
            InvokeError::FunctionError(e) => write!(f, "the function returned an error: {e}"),
            InvokeError::Timeout => write!(f, "the function timed out"),
            InvokeError::ResponseTooLarge => write!(f, "the function response exceeded 6 MB"),
        }
    }
}

/// A started function process with its own runtime endpoint.
pub struct Instance {
    spec: Arc<FunctionSpec>,
    pid: Option<u32>,
    /// Set once the memory limit has been reported, so the watcher and `invoke` log it once.
    memory_reported: Arc<AtomicBool>,
    invocations: mpsc::Sender<Invocation>,
    /// Set to the reason once the process is gone.
    dead: watch::Receiver<Option<String>>,
    /// Dropping this kills the process.
    _kill: oneshot::Sender<()>,
    _runtime: RuntimeApi,
}

impl Instance {
    /// Starts the process. It initialises in the background; the first invocation waits for
    /// its first `next` (that wait is the cold start).
    pub async fn spawn(spec: Arc<FunctionSpec>) -> Result<Instance, InvokeError> {
        let (fault_tx, mut fault_rx) = mpsc::unbounded_channel();
        let (runtime, invocations) = RuntimeApi::start(spec.arn.clone(), fault_tx)
            .await
            .map_err(|e| InvokeError::Spawn(format!("binding the runtime API: {e}")))?;
        // Private: the function reads secrets (never logging them, but its log is theirs).
        let log = deploy_files::open_private_log(&spec.log_file, true)
            .map_err(|e| InvokeError::Spawn(format!("opening {}: {e}", spec.log_file.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| InvokeError::Spawn(e.to_string()))?;
        let mut child = Command::new(&spec.bootstrap)
            .env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
            .current_dir(spec.bootstrap.parent().unwrap_or(std::path::Path::new("/")))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| InvokeError::Spawn(format!("{}: {e}", spec.bootstrap.display())))?;

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (dead_tx, dead_rx) = watch::channel(None);
        let pid = child.id();
        let memory_mb = spec.memory_mb;
        let log_file = spec.log_file.clone();
        let memory_reported = Arc::new(AtomicBool::new(false));
        let reported = memory_reported.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                peak_mb = memory_exceeded(pid, memory_mb) => {
                    let _ = child.kill().await;
                    killed_for_memory(&log_file, &reported, peak_mb, memory_mb)
                },
                status = child.wait() => match status {
                    Ok(status) => format!("exited with {status}"),
                    Err(e) => format!("wait failed: {e}"),
                },
                Some(Fault::InitError(body)) = fault_rx.recv() => {
                    let _ = child.kill().await;
                    format!("init error: {body}")
                },
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "killed".to_string()
                },
            };
            let _ = dead_tx.send(Some(reason));
        });
        Ok(Instance {
            spec,
            pid,
            memory_reported,
            invocations,
            dead: dead_rx,
            _kill: kill_tx,
            _runtime: runtime,
        })
    }

    /// Whether the process is still there to take work.
    pub fn is_alive(&self) -> bool {
        self.dead.borrow().is_none()
    }

    /// Runs one invocation. An error other than [`InvokeError::FunctionError`] means the
    /// instance is unusable and must be dropped.
    pub async fn invoke(&self, request_id: &str, payload: Bytes) -> Result<Bytes, InvokeError> {
        let deadline = SystemTime::now() + self.spec.timeout;
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let (reply_tx, reply_rx) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.to_string(),
            payload,
            deadline_ms,
            trace_id: trace_id(),
            reply: reply_tx,
        };
        let mut dead = self.dead.clone();
        if self.invocations.send(invocation).await.is_err() {
            return Err(InvokeError::Crashed(
                "the runtime endpoint is closed".to_string(),
            ));
        }
        let result = tokio::select! {
            biased;
            outcome = reply_rx => match outcome {
                Ok(Outcome::Response(body)) => Ok(body),
                Ok(Outcome::Error(body)) => Err(InvokeError::FunctionError(String::from_utf8_lossy(&body).into_owned())),
                Ok(Outcome::TooLarge) => Err(InvokeError::ResponseTooLarge),
                Err(_) => Err(InvokeError::Crashed("the invocation was dropped".to_string())),
            },
            reason = dead.wait_for(Option::is_some) => {
                let reason = reason.map(|r| r.clone().unwrap_or_default()).unwrap_or_else(|_| "gone".to_string());
                Err(InvokeError::Crashed(reason))
            },
            _ = tokio::time::sleep(self.spec.timeout) => Err(InvokeError::Timeout),
        };
        // The watcher reads the peak every few milliseconds; an invocation that passed the
        // limit and answered in between is caught here, so its answer never reaches the client
        // (on Lambda the process would have been killed before it could answer).
        match peak_mb(self.pid) {
            Some(peak) if result.is_ok() && peak > self.spec.memory_mb => {
                Err(InvokeError::Crashed(killed_for_memory(
                    &self.spec.log_file,
                    &self.memory_reported,
                    peak,
                    self.spec.memory_mb,
                )))
            }
            _ => result,
        }
    }
}

/// Writes what Lambda logs when its sandbox kills a runtime for memory, and returns the reason.
fn killed_for_memory(
    log_file: &std::path::Path,
    reported: &AtomicBool,
    peak_mb: u64,
    memory_mb: u64,
) -> String {
    let reason = format!("killed: memory size of {memory_mb} MB exceeded (peak {peak_mb} MB)");
    if reported.swap(true, Ordering::SeqCst) {
        return reason;
    }
    let line = format!(
        "Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n(local API: peak \
         resident memory {peak_mb} MB passed the function's memory size of {memory_mb} MB)\n"
    );
    if let Ok(mut log) = OpenOptions::new().append(true).open(log_file) {
        let _ = std::io::Write::write_all(&mut log, line.as_bytes());
    }
    reason
}

/// How often the memory of a function process is read. `VmHWM` is the peak since the process
/// started, so a spike between two reads is still seen at the next one.
const MEMORY_POLL: Duration = Duration::from_millis(20);

/// Resolves with the peak resident memory (MB) once the process's peak passes `limit_mb`, as
/// Lambda's sandbox limit would kill it; never resolves where `/proc` cannot be read.
async fn memory_exceeded(pid: Option<u32>, limit_mb: u64) -> u64 {
    loop {
        match peak_mb(pid) {
            Some(peak) if peak > limit_mb => return peak,
            Some(_) => tokio::time::sleep(MEMORY_POLL).await,
            // Gone (its exit is reported by `wait`) or no /proc: nothing to watch.
            None => return std::future::pending().await,
        }
    }
}

/// The process's peak resident memory so far (`VmHWM`), in MB rounded up.
fn peak_mb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib.div_ceil(1024))
}

/// An X-Ray trace header in the format Lambda passes (`Root=1-<epoch hex>-<96 bit hex>`).
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &id[..24],
        &id[16..32]
    )
}
