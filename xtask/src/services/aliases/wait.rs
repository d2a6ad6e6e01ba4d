//! Waiting until Lambda has really taken a deployment: every function
//! `Active` with its last update `Successful`, and the `live` alias present.
//! Terraform returns once the API calls are accepted, not when the code is
//! ready; a smoke test started earlier would hit the old version.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_lambda::types::{LastUpdateStatus, State};

use crate::base::aws::Target;
use crate::base::env::{self, Env};
use crate::base::progress;
use crate::services::aliases::ALIAS;

const TIMEOUT: Duration = Duration::from_secs(300);

pub fn functions_live(env: &Env, target: &Target) -> Result<Duration> {
    progress::step("Waiting until the functions and their `live` aliases are active");
    let started = Instant::now();
    crate::base::process::block_on(async {
        let lambda = target.lambda().await;
        for &function in env::functions() {
            let name = env.function_name(function);
            loop {
                let problem = match lambda.get_function().function_name(&name).send().await {
                    Ok(out) => {
                        let config = out.configuration();
                        let state = config.and_then(|c| c.state().cloned());
                        let update = config.and_then(|c| c.last_update_status().cloned());
                        match (&state, &update) {
                            (Some(State::Failed), _) | (_, Some(LastUpdateStatus::Failed)) => {
                                bail!(
                                    "function {name} failed to deploy: {}",
                                    config
                                        .and_then(|c| c
                                            .last_update_status_reason()
                                            .or(c.state_reason()))
                                        .unwrap_or("no reason given")
                                )
                            }
                            (Some(State::Active), Some(LastUpdateStatus::Successful) | None) => {
                                match lambda
                                    .get_alias()
                                    .function_name(&name)
                                    .name(ALIAS)
                                    .send()
                                    .await
                                {
                                    Ok(_) => None,
                                    Err(err) => Some(format!(
                                        "alias {ALIAS}: {}",
                                        aws_sdk_lambda::error::DisplayErrorContext(&err)
                                    )),
                                }
                            }
                            _ => Some(format!("state {state:?}, last update {update:?}")),
                        }
                    }
                    Err(err) => Some(aws_sdk_lambda::error::DisplayErrorContext(&err).to_string()),
                };
                match problem {
                    None => {
                        progress::note(format!("{name}: active, alias {ALIAS} ready"));
                        break;
                    }
                    Some(problem) if started.elapsed() > TIMEOUT => {
                        bail!("function {name} was not ready after {TIMEOUT:?}: {problem}")
                    }
                    Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
        Ok(started.elapsed())
    })
}
