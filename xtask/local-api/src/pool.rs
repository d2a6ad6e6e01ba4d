//! The instances of one function: reused when warm, started on demand, replaced when broken.
//!
//! Lambda scales a function by running more execution environments, each handling one request
//! at a time; the pool does the same up to a limit (the local stand-in for reserved
//! concurrency), so concurrent requests (smoke's `--load`) do not queue behind one process.
//!
//! There is one pool per version in play: when the alias stops routing to a version, its pool
//! is retired: idle processes are killed at once, busy ones when their invocation ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore};

use crate::function_env::FunctionSpec;
use crate::instance::{Instance, InvokeError};

/// The result of one invocation plus whether it needed a new process (a cold start).
#[derive(Debug)]
pub struct Invoked {
    pub result: Result<Bytes, InvokeError>,
    pub cold_start: bool,
}

/// All instances of one version of a function.
pub struct FunctionPool {
    spec: Arc<FunctionSpec>,
    idle: Mutex<Vec<Instance>>,
    capacity: Semaphore,
    retired: AtomicBool,
}

impl FunctionPool {
    pub fn new(spec: FunctionSpec, max_instances: usize) -> FunctionPool {
        FunctionPool {
            spec: Arc::new(spec),
            idle: Mutex::new(Vec::new()),
            capacity: Semaphore::new(max_instances.max(1)),
            retired: AtomicBool::new(false),
        }
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// Runs one invocation on a warm instance, or a new one if none is idle. A crashed or
    /// timed-out instance is discarded (its process killed) so the next request gets a fresh
    /// one: that is the restart after a crash.
    pub async fn invoke(&self, request_id: &str, payload: Bytes) -> Invoked {
        let _permit = self
            .capacity
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let warm = {
            let mut idle = self.idle.lock().await;
            idle.retain(Instance::is_alive);
            idle.pop()
        };
        let cold_start = warm.is_none();
        let instance = match warm {
            Some(instance) => instance,
            None => match Instance::spawn(self.spec.clone()).await {
                Ok(instance) => instance,
                Err(e) => {
                    return Invoked {
                        result: Err(e),
                        cold_start,
                    };
                }
            },
        };
        let result = instance.invoke(request_id, payload).await;
        let reusable =
            matches!(result, Ok(_) | Err(InvokeError::FunctionError(_))) && instance.is_alive();
        if reusable {
            // Checked under the lock `retire` clears under, so no process outlives retirement.
            let mut idle = self.idle.lock().await;
            if !self.retired.load(Ordering::Acquire) {
                idle.push(instance);
            }
        }
        Invoked { result, cold_start }
    }

    /// Stops every idle process (used on shutdown).
    pub async fn clear(&self) {
        self.idle.lock().await.clear();
    }

    /// The version is out of play: kill the idle processes now and every busy one as soon as
    /// its invocation ends (a request already routed here still gets its answer).
    pub async fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.clear().await;
    }

    /// How many processes wait for work (for tests and messages).
    pub async fn idle_count(&self) -> usize {
        self.idle.lock().await.len()
    }
}
