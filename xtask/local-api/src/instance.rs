//! One execution environment: a function process and the runtime endpoint it polls.
//!
//! Like a Lambda sandbox, an instance handles one invocation at a time, is reused while it
//! behaves, and is thrown away (process killed) when it crashes, reports an init error or runs
//! past its timeout. Dropping an [`Instance`] kills its process, so cancelling an invocation
//! (API Gateway's integration timeout) cleans up by itself.

use std::fs::OpenOptions;
use std::process::Stdio;
use std::sync::Arc;
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
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
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
        tokio::spawn(async move {
            let reason = tokio::select! {
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
        tokio::select! {
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
        }
    }
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
