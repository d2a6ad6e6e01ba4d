//! The local event loop's delivery time: a message sent to each declared queue of the
//! emulated environment, until the local API server's poller reports that the consumer
//! handled it (its `local-api: <queue> -> <function>: ...` line). The message is the queue's
//! declared `example` body, which the consumer accepts.

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use deploy_files::Outputs;

use crate::base::env::Env;
use crate::base::process;
use crate::services::local;

/// One queue's figures.
pub struct Delivery {
    pub queue: &'static str,
    pub function: &'static str,
    pub median: Duration,
    pub max: Duration,
}

/// How long one message may take before the measurement gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `rounds` messages to each declared queue, one at a time, on the running local stack.
pub fn measure(env: &Env, rounds: usize) -> Result<Vec<Delivery>> {
    let moto = local::running_moto(env)
        .context("the emulator is not running (`cargo xtask deploy` starts it)")?;
    local::running_api(env).context("the local API server is not running")?;
    let outputs = Outputs::read(&env.outputs_file())
        .with_context(|| format!("reading {}", env.outputs_file().display()))?;
    let sqs = local_api::queues::client(&moto.endpoint, &outputs.region);
    let log = local::api_log_file(env);
    let mut deliveries = Vec::new();
    for (function, queue) in catalog::queues() {
        let url = &outputs
            .queues
            .get(queue.name)
            .with_context(|| format!("the outputs name no queue `{}`", queue.name))?
            .url;
        let done = format!("local-api: {} -> {}: ", queue.name, function.name);
        let mut times = Vec::new();
        for _ in 0..rounds {
            let offset = std::fs::metadata(&log).map_or(0, |m| m.len());
            let sent = Instant::now();
            process::block_on(
                sqs.send_message()
                    .queue_url(url)
                    .message_body(queue.example)
                    .send(),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "sending to {url}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
            loop {
                if appended(&log, offset)?.contains(&done) {
                    times.push(sent.elapsed());
                    break;
                }
                if sent.elapsed() > TIMEOUT {
                    bail!(
                        "a message on `{}` was not handled within {} s (see {})",
                        queue.name,
                        TIMEOUT.as_secs(),
                        log.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        times.sort();
        deliveries.push(Delivery {
            queue: queue.name,
            function: function.name,
            median: times[times.len() / 2],
            max: *times.last().expect("at least one round"),
        });
    }
    Ok(deliveries)
}

/// What was written to `path` after `offset`.
fn appended(path: &std::path::Path, offset: u64) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}
