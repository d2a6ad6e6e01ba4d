//! Each function's `live` alias, the one thing API Gateway invokes: reading it, pointing it
//! (with the local API server following along) and recording releases on it. Releasing,
//! rolling back, waiting and hotswapping all go through here, so how an alias is read or
//! moved is written once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use deploy_files::Routing;

use crate::base::aws::Target;
use crate::base::env::{self, Env};
use crate::base::process;
use crate::services::local;

pub mod hotswap;
pub mod release;
pub mod rollback;
pub mod wait;

/// The alias every function's API Gateway integration invokes.
pub const ALIAS: &str = "live";

/// Version of the `live` alias per function (`health`, `users`, ...).
pub type Versions = BTreeMap<String, String>;

/// The alias state of one function: its primary version and, during a
/// shift, the weight of the new one.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    pub weights: BTreeMap<String, f64>,
}

/// One `live` alias as Lambda returns it.
#[derive(Debug, Clone)]
pub struct Alias {
    pub state: AliasState,
    pub description: String,
}

/// The `live` alias of every function that has one: version, weights and description.
pub fn read_aliases(env: &Env, target: &Target) -> Result<BTreeMap<String, Alias>> {
    process::block_on(async {
        let lambda = target.lambda().await;
        let mut aliases = BTreeMap::new();
        for &function in env::functions() {
            let name = env.function_name(function);
            match lambda
                .get_alias()
                .function_name(&name)
                .name(ALIAS)
                .send()
                .await
            {
                Ok(alias) => {
                    if let Some(version) = alias.function_version() {
                        let weights = alias
                            .routing_config()
                            .and_then(|r| r.additional_version_weights())
                            .map(|w| w.iter().map(|(v, w)| (v.clone(), *w)).collect())
                            .unwrap_or_default();
                        aliases.insert(
                            function.to_owned(),
                            Alias {
                                state: AliasState {
                                    version: version.to_owned(),
                                    weights,
                                },
                                description: alias.description().unwrap_or_default().to_owned(),
                            },
                        );
                    }
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(err) => bail!(
                    "reading alias {ALIAS} of {name}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&err)
                ),
            }
        }
        Ok(aliases)
    })
}

/// The `live` alias of every function that has one: version and weights.
pub fn aliases(env: &Env, target: &Target) -> Result<BTreeMap<String, AliasState>> {
    Ok(read_aliases(env, target)?
        .into_iter()
        .map(|(function, alias)| (function, alias.state))
        .collect())
}

/// The `live` alias's primary version of every function that has one.
pub fn live_versions(env: &Env, target: &Target) -> Result<Versions> {
    Ok(aliases(env, target)?
        .into_iter()
        .map(|(function, alias)| (function, alias.version))
        .collect())
}

/// Points each function's `live` alias as given and, locally, waits until
/// the local API server routes the same way.
pub fn set_aliases(env: &Env, target: &Target, state: &BTreeMap<String, AliasState>) -> Result<()> {
    process::block_on(async {
        let lambda = target.lambda().await;
        for (function, alias) in state {
            let name = env.function_name(function);
            if env.emulated {
                injected_failure(function, &name)?;
            }
            update(&lambda, &name, alias).send().await.map_err(|e| {
                anyhow::anyhow!(
                    "moving {name}'s `{ALIAS}` alias to version {}: {}",
                    alias.version,
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                )
            })?;
        }
        anyhow::Ok(())
    })?;
    if env.emulated {
        follow_local(env, state)?;
    }
    Ok(())
}

/// Writes `description` on a function's alias, restating where it points (`at`, what the
/// caller just read or set) rather than relying on UpdateAlias leaving omitted fields alone.
pub fn describe(
    env: &Env,
    target: &Target,
    function: &str,
    at: &AliasState,
    description: &str,
) -> Result<()> {
    let name = env.function_name(function);
    process::block_on(async {
        update(&target.lambda().await, &name, at)
            .description(description)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "recording the release on {name}'s `{ALIAS}` alias: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                )
            })
    })?;
    Ok(())
}

/// An UpdateAlias request pointing `name`'s `live` alias at `at`: its version with its
/// weights (none means all the traffic on the version).
fn update(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    at: &AliasState,
) -> aws_sdk_lambda::operation::update_alias::builders::UpdateAliasFluentBuilder {
    let weights = at.weights.iter().map(|(v, w)| (v.clone(), *w)).collect();
    lambda
        .update_alias()
        .function_name(name)
        .name(ALIAS)
        .function_version(&at.version)
        .routing_config(
            AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(weights))
                .build(),
        )
}

/// `XTASK_INJECT_ALIAS_ERROR=FUNCTION:N`, honoured against the emulator only:
/// the N-th and every later move of FUNCTION's alias in this process fails as
/// an AWS error would. The life-cycle tests use it to fail a release half-way
/// (moto has no fault injection of its own) and prove it is rolled back.
fn injected_failure(function: &str, name: &str) -> Result<()> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static MOVES: AtomicU32 = AtomicU32::new(0);
    let Ok(spec) = std::env::var("XTASK_INJECT_ALIAS_ERROR") else {
        return Ok(());
    };
    let Some((which, nth)) = spec.split_once(':') else {
        bail!("XTASK_INJECT_ALIAS_ERROR is FUNCTION:N, not `{spec}`");
    };
    let nth: u32 = nth
        .parse()
        .with_context(|| format!("XTASK_INJECT_ALIAS_ERROR is FUNCTION:N, not `{spec}`"))?;
    if which == function && MOVES.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        bail!(
            "moving {name}'s `{ALIAS}` alias: ServiceException: injected by \
             XTASK_INJECT_ALIAS_ERROR={spec}"
        );
    }
    Ok(())
}

/// After xtask moved aliases in the emulator: makes the running local API
/// server re-read them now (SIGHUP) and waits until its `routing.json`
/// shows the same versions and weights, so the next request is routed as
/// the alias says. Without a running server there is nothing to do. The
/// first use of a version downloads its package, hence the generous limit.
fn follow_local(env: &Env, expected: &BTreeMap<String, AliasState>) -> Result<()> {
    let Some(api) = local::running_api(env) else {
        return Ok(());
    };
    local::refresh_api(&api);
    let path = local::routing_file(env, &api);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let routing = process::read_json::<Routing>(&path)
            .ok()
            .filter(|r| r.pid == api.pid);
        let mut done = routing.is_some();
        for (function, alias) in expected {
            let seen = routing.as_ref().and_then(|r| r.functions.get(function));
            if seen.is_some_and(|s| {
                s.version.as_ref() == Some(&alias.version)
                    && same_weights(&s.weights, &alias.weights)
            }) {
                continue;
            }
            done = false;
            if let Some(pending) = seen.and_then(|s| s.pending.as_ref())
                && pending.version.as_ref() == Some(&alias.version)
                && same_weights(&pending.weights, &alias.weights)
                && let Some(error) = &pending.error
            {
                bail!(
                    "the local API server cannot serve {function} as the alias now says: {error}"
                );
            }
        }
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the local API server (pid {}) did not pick up the alias change within 120 s \
                 (see {}); restart it with `cargo xtask deploy`",
                api.pid,
                process::display_path(&env.root, &path),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn same_weights(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(v, w)| b.get(v).is_some_and(|x| (x - w).abs() < 1e-6))
}
