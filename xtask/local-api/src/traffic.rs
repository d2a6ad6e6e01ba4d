//! Which process serves a request: one pool per (function, version) in play, picked by the
//! alias's weights, and a background refresher that follows the alias as it moves.
//!
//! The request path only reads the current [`Routes`] (an `Arc` swapped under a lock held for
//! a pointer copy) and draws a random number; it never calls the emulator. The refresher
//! replaces the table when the alias changes:
//!
//! - it polls `GetAlias` for every function (every ten seconds by default, `--alias-poll-ms`;
//!   0 turns polling off) and refreshes at once when asked (`SIGHUP` to the `local-api`
//!   process; [`crate::Server::request_refresh`] in-process);
//! - each version in play gets its own pool with that version's configuration and code
//!   ([`crate::alias`]); a pool whose version leaves play is retired (its processes killed);
//! - when an alias state cannot be applied (a version's package cannot be found, ...) the
//!   previous routing stays and the reason is reported; it is retried on every refresh;
//! - a function whose alias the server cannot read at start-up (no function, alias or emulator:
//!   tests write outputs without Terraform) runs `build/dist/<fn>.zip` with the alias's,
//!   `$LATEST`'s or the outputs' configuration, as before versions were followed, and switches
//!   to the alias as soon as it can read and apply it;
//! - a *watch build* overrides both: while `<watch dir>/<fn>/bootstrap` exists (default
//!   `build/<env>/watch`, written by `cargo xtask watch`), every request of that function runs
//!   it, with the configuration of the version the alias serves. The file is checked on every
//!   refresh (so `SIGHUP` after writing it applies it at once); a new file (other size or
//!   modification time) gets a new pool and the old one is retired (in-flight requests finish),
//!   and when the file is gone the alias's routing is back. No Terraform, zip or upload: the
//!   development loop's binary is served as it comes out of cargo.
//!
//! # `routing.json`
//!
//! After start-up and after every refresh that changed something, the refresher writes
//! `<work dir>/routing.json` (default `build/<env>/functions/routing.json`; its path is also
//! the `routing` field of the `--state` file) atomically (temporary file and rename), *after*
//! the new table is in use, as a [`deploy_files::Routing`] (the one type its readers use):
//!
//! ```json
//! {
//!   "pid": 4242,
//!   "generation": 3,
//!   "alias": "live",
//!   "functions": {
//!     "users": {"function_name": "prod-service-users", "version": "4", "weights": {"5": 0.1}},
//!     "health": {"function_name": "prod-service-health", "version": "4", "weights": {},
//!                "pending": {"version": "6", "weights": {}, "error": "version 6: ..."}},
//!     "sessions": {"function_name": "prod-service-sessions", "version": null, "weights": {},
//!                  "fallback": "Function not found: ..."}
//!   }
//! }
//! ```
//!
//! `version` and `weights` are the alias state being served (`weights` exactly as
//! `RoutingConfig.AdditionalVersionWeights` gave them; the primary version gets the rest);
//! `version` is `null` when the function runs the `build/dist` fallback (`fallback` says why).
//! `pending` is present while the emulator's alias says something else that could not be
//! applied. `override` is present while a watch build is served: `{"bootstrap": path, "bytes":
//! n, "modified_ns": t}` (the file's size and modification time in nanoseconds since the
//! epoch, as read when it was loaded: the writer compares them with its own file to know that
//! its build is the one served). `generation` grows by one with every write of one process (`pid`); the file is
//! removed when the server stops.
//!
//! The contract for whoever moves an alias (xtask): update the alias, send `SIGHUP` to the
//! `pid` of the state file, then read `routing.json` until, for every function moved, `version`
//! and `weights` equal what was set (done: requests already follow it) or `pending` names that
//! state (failed: `pending.error` says why).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use deploy_files::{self as files, PendingAlias, RoutedAlias, Routing};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

use crate::alias::{AliasState, Emulator, Version};
use crate::function_env::{self, ConfigSource, Deployed};
use crate::package;
use crate::pool::FunctionPool;

/// Where each function's requests go, immutable once built.
#[derive(Default)]
pub struct Routes {
    functions: BTreeMap<String, Vec<(f64, Arc<FunctionPool>)>>,
}

impl Routes {
    /// The pool for a draw `r` in `[0, 1)`: targets hold cumulative upper bounds.
    fn pick(&self, function: &str, draw: impl FnOnce() -> f64) -> Option<Arc<FunctionPool>> {
        let targets = self.functions.get(function)?;
        if targets.len() == 1 {
            return targets.first().map(|(_, pool)| pool.clone());
        }
        let r = draw();
        targets
            .iter()
            .find(|(bound, _)| r < *bound)
            .or(targets.last())
            .map(|(_, pool)| pool.clone())
    }
}

/// The current routes, shared by the gateway (readers) and the refresher (the one writer).
#[derive(Default)]
pub struct Table {
    current: RwLock<Arc<Routes>>,
}

impl Table {
    /// The pool that serves this request of `function`, chosen by the alias weights.
    pub fn pick(&self, function: &str) -> Option<Arc<FunctionPool>> {
        self.snapshot().pick(function, random_unit)
    }

    /// Every pool currently routed to.
    pub fn pools(&self) -> Vec<Arc<FunctionPool>> {
        self.snapshot()
            .functions
            .values()
            .flatten()
            .map(|(_, pool)| pool.clone())
            .collect()
    }

    fn snapshot(&self) -> Arc<Routes> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, routes: Routes) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(routes);
    }
}

/// A uniform draw in `[0, 1)` from the random part of a v4 UUID (its first 32 bits).
fn random_unit() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 96) as u32;
    f64::from(bits) / (f64::from(u32::MAX) + 1.0)
}

/// A pool and what it was built from, so an unchanged version keeps its warm processes.
#[derive(Clone)]
struct Pooled {
    pool: Arc<FunctionPool>,
    deployed: Deployed,
    bootstrap: PathBuf,
    /// Where the package came from when the pool was made (cache, s3://..., build/dist).
    origin: String,
}

enum Serving {
    /// Following the alias: one pool per version in `pools`.
    Alias(AliasState),
    /// Running `build/dist/<fn>.zip`, for this reason.
    Fallback(String),
}

struct Pending {
    state: AliasState,
    error: String,
}

struct FunctionState {
    short: String,
    name: String,
    serving: Serving,
    pools: BTreeMap<String, Pooled>,
    fallback: Option<Arc<FunctionPool>>,
    pending: Option<Pending>,
    /// The last `GetAlias` failure reported, so a down emulator is logged once.
    alias_error: Option<String>,
    /// The watch build served instead of the alias's versions, if any.
    watch_build: Option<WatchBuild>,
}

/// A `<watch dir>/<fn>/bootstrap` in use, and which file it was.
struct WatchBuild {
    pool: Arc<FunctionPool>,
    stamp: Stamp,
}

/// Identifies one written file: a rename-into-place gives a new size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub bytes: u64,
    pub modified_ns: u128,
}

impl Stamp {
    /// The file's stamp, or `None` when it is not there.
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let modified_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some(Stamp {
            bytes: meta.len(),
            modified_ns,
        })
    }
}

/// `<watch dir>/<function>/bootstrap`: the watch build the server prefers while it exists.
pub fn watch_bootstrap(watch_dir: &Path, function: &str) -> PathBuf {
    watch_dir.join(function).join("bootstrap")
}

/// Follows the aliases and owns the pools; runs as one background task.
pub struct Refresher {
    emulator: Emulator,
    table: Arc<Table>,
    functions: Vec<FunctionState>,
    max_instances: usize,
    routing_file: PathBuf,
    watch_dir: PathBuf,
    generation: u64,
}

impl Refresher {
    /// Reads every alias (or sets up the fallback), puts the routes in `table` and writes the
    /// first `routing.json`. Fails only when a fallback package cannot be extracted.
    pub async fn start(
        emulator: Emulator,
        table: Arc<Table>,
        work: &Path,
        dist: &Path,
        watch_dir: &Path,
        endpoint: &str,
        max_instances: usize,
    ) -> Result<Refresher> {
        let deployment = emulator.deployment().clone();
        let alias_name = deployment.alias.clone();
        let mut functions = Vec::new();
        for &short in catalog::NAMES.iter() {
            let name = deployment.functions[short].clone();
            let mut state = FunctionState {
                short: short.to_string(),
                name: name.clone(),
                serving: Serving::Fallback(String::new()),
                pools: BTreeMap::new(),
                fallback: None,
                pending: None,
                alias_error: None,
                watch_build: None,
            };
            let followed = match emulator.read_alias(short).await {
                Ok(alias) => {
                    match resolve(&emulator, &state.pools, short, &alias, max_instances).await {
                        Ok(pools) => Ok((alias, pools)),
                        Err(error) => {
                            state.pending = Some(Pending {
                                state: alias,
                                error: error.clone(),
                            });
                            Err(error)
                        }
                    }
                }
                Err(error) => {
                    state.alias_error = Some(error.clone());
                    Err(error)
                }
            };
            match followed {
                Ok((alias, pools)) => {
                    let codes: Vec<String> = alias
                        .split()
                        .iter()
                        .map(|(v, _)| format!("version {v} code from {}", code_note(&pools[v])))
                        .collect();
                    eprintln!(
                        "local-api: {short} -> {name}: alias `{alias_name}` -> {alias}; {}; environment from each version's configuration in the emulator",
                        codes.join(", ")
                    );
                    state.pools = pools;
                    state.serving = Serving::Alias(alias);
                }
                Err(reason) => {
                    let bootstrap = package::extract_bootstrap(dist, work, short)?;
                    let (deployed, source) =
                        function_env::read_fallback(emulator.lambda(), &deployment, &name).await;
                    let env_note = match &source {
                        ConfigSource::Emulator => {
                            "the emulator's function configuration".to_string()
                        }
                        ConfigSource::Outputs(why) if why == &reason => {
                            "the outputs file".to_string()
                        }
                        ConfigSource::Outputs(why) => {
                            format!("the outputs file (emulator: {})", first_line(why))
                        }
                    };
                    let spec = function_env::spec(
                        &deployment,
                        endpoint,
                        work,
                        short,
                        bootstrap,
                        &deployed,
                        source,
                    );
                    eprintln!(
                        "local-api: {short} -> {name}: not following alias `{alias_name}` ({}); code from {}, environment from {env_note}",
                        first_line(&reason),
                        package::dist_zip(dist, short).display(),
                    );
                    state.fallback = Some(Arc::new(FunctionPool::new(spec, max_instances)));
                    state.serving = Serving::Fallback(first_line(&reason).to_string());
                }
            }
            functions.push(state);
        }
        let mut refresher = Refresher {
            emulator,
            table,
            functions,
            max_instances,
            routing_file: work.join(files::ROUTING_FILE),
            watch_dir: watch_dir.to_path_buf(),
            generation: 0,
        };
        for index in 0..refresher.functions.len() {
            refresher.follow_watch_build(index).await;
        }
        refresher.publish()?;
        Ok(refresher)
    }

    pub fn routing_file(&self) -> &Path {
        &self.routing_file
    }

    /// Refreshes on every tick of `poll` (none: only when triggered) and whenever `trigger`
    /// is notified, until the task is aborted.
    pub async fn run(mut self, poll: Option<Duration>, trigger: Arc<Notify>) {
        let mut ticker = poll.map(|period| {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        loop {
            tokio::select! {
                _ = async {
                    match ticker.as_mut() {
                        Some(ticker) => { ticker.tick().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = trigger.notified() => {}
            }
            self.refresh().await;
        }
    }

    /// Reads every alias once and applies what changed.
    pub async fn refresh(&mut self) {
        let mut changed = false;
        for index in 0..self.functions.len() {
            changed |= self.refresh_function(index).await;
            changed |= self.follow_watch_build(index).await;
        }
        if changed && let Err(e) = self.publish() {
            eprintln!("local-api: {e:#}");
        }
    }

    /// Whether anything `routing.json` shows changed.
    async fn refresh_function(&mut self, index: usize) -> bool {
        let short = self.functions[index].short.clone();
        let alias = match self.emulator.read_alias(&short).await {
            Ok(alias) => alias,
            Err(error) => {
                let f = &mut self.functions[index];
                if f.alias_error.as_ref() != Some(&error) {
                    if matches!(f.serving, Serving::Alias(_)) {
                        eprintln!(
                            "local-api: {short}: cannot read the alias ({}); routing stays as it is",
                            first_line(&error)
                        );
                    }
                    f.alias_error = Some(error);
                }
                return false;
            }
        };
        let f = &mut self.functions[index];
        f.alias_error = None;
        if let Serving::Alias(current) = &f.serving
            && current.same_routing(&alias)
        {
            // What the emulator says is what is served; an earlier failed state is moot.
            return f.pending.take().is_some();
        }

        match resolve(&self.emulator, &f.pools, &short, &alias, self.max_instances).await {
            Ok(pools) => {
                for (version, old) in &f.pools {
                    let kept = pools
                        .get(version)
                        .is_some_and(|new| Arc::ptr_eq(&new.pool, &old.pool));
                    if !kept {
                        old.pool.retire().await;
                    }
                }
                if let Some(fallback) = f.fallback.take() {
                    fallback.retire().await;
                }
                let was = match &f.serving {
                    Serving::Alias(previous) => previous.to_string(),
                    Serving::Fallback(_) => "build/dist fallback".to_string(),
                };
                for (version, pooled) in &pools {
                    if !f.pools.contains_key(version) {
                        eprintln!(
                            "local-api: {short}: version {version} code from {}",
                            code_note(pooled)
                        );
                    }
                }
                eprintln!("local-api: {short}: now {alias} (was {was})");
                f.pools = pools;
                f.serving = Serving::Alias(alias);
                f.pending = None;
                true
            }
            Err(error) => {
                let news = f
                    .pending
                    .as_ref()
                    .is_none_or(|p| !p.state.same_routing(&alias) || p.error != error);
                if news {
                    eprintln!(
                        "local-api: {short}: cannot apply {alias} ({error}); routing stays as it is"
                    );
                }
                f.pending = Some(Pending {
                    state: alias,
                    error,
                });
                news
            }
        }
    }

    /// Starts serving a new or changed watch build of one function, or stops serving one that
    /// is gone; whether anything changed.
    async fn follow_watch_build(&mut self, index: usize) -> bool {
        let f = &mut self.functions[index];
        let path = watch_bootstrap(&self.watch_dir, &f.short);
        let stamp = Stamp::of(&path);
        if f.watch_build.as_ref().map(|w| w.stamp) == stamp {
            return false;
        }
        if let Some(old) = f.watch_build.take() {
            old.pool.retire().await;
        }
        let Some(stamp) = stamp else {
            eprintln!(
                "local-api: {}: watch build gone; serving the alias's code again",
                f.short
            );
            return true;
        };
        let base = match (&f.serving, &f.fallback) {
            (Serving::Alias(alias), _) => f.pools.get(&alias.version).map(|p| p.pool.clone()),
            (Serving::Fallback(_), fallback) => fallback.clone(),
        };
        let Some(base) = base else {
            eprintln!(
                "local-api: {}: no configuration to run the watch build {} with",
                f.short,
                path.display()
            );
            return false;
        };
        let mut spec = base.spec().clone();
        spec.bootstrap = path;
        eprintln!(
            "local-api: {}: serving the watch build {} ({} bytes) with version {}'s configuration",
            f.short,
            spec.bootstrap.display(),
            stamp.bytes,
            spec.version
        );
        f.watch_build = Some(WatchBuild {
            pool: Arc::new(FunctionPool::new(spec, self.max_instances)),
            stamp,
        });
        true
    }

    /// Puts the routes in use, then records them in `routing.json`.
    fn publish(&mut self) -> Result<()> {
        let mut routes = Routes::default();
        for f in &self.functions {
            let targets = match (&f.watch_build, &f.serving, &f.fallback) {
                (Some(watch), _, _) => vec![(1.0, watch.pool.clone())],
                (None, Serving::Alias(alias), _) => {
                    let mut bound = 0.0;
                    alias
                        .split()
                        .into_iter()
                        .map(|(version, weight)| {
                            bound += weight;
                            (bound, f.pools[&version].pool.clone())
                        })
                        .collect()
                }
                (None, Serving::Fallback(_), Some(pool)) => vec![(1.0, pool.clone())],
                (None, Serving::Fallback(_), None) => Vec::new(),
            };
            routes.functions.insert(f.short.clone(), targets);
        }
        self.table.replace(routes);

        self.generation += 1;
        let functions = self
            .functions
            .iter()
            .map(|f| {
                let (version, weights, fallback) = match &f.serving {
                    Serving::Alias(alias) => {
                        (Some(alias.version.clone()), alias.weights.clone(), None)
                    }
                    Serving::Fallback(reason) => (None, BTreeMap::new(), Some(reason.clone())),
                };
                let pending = f.pending.as_ref().map(|pending| PendingAlias {
                    version: Some(pending.state.version.clone()),
                    weights: pending.state.weights.clone(),
                    error: Some(pending.error.clone()),
                });
                let record = RoutedAlias {
                    function_name: f.name.clone(),
                    version,
                    weights,
                    fallback,
                    pending,
                    watch_build: f.watch_build.as_ref().map(|watch| files::WatchBuild {
                        bootstrap: watch.pool.spec().bootstrap.clone(),
                        bytes: watch.stamp.bytes,
                        modified_ns: watch.stamp.modified_ns,
                    }),
                };
                (f.short.clone(), record)
            })
            .collect();
        Routing {
            pid: std::process::id(),
            generation: self.generation,
            alias: Some(self.emulator.deployment().alias.clone()),
            functions,
        }
        .write(&self.routing_file)
        .with_context(|| format!("writing {}", self.routing_file.display()))
    }
}

/// The spec and pool of every version the alias routes to, reusing the pools of versions
/// whose configuration and binary did not change.
async fn resolve(
    emulator: &Emulator,
    current: &BTreeMap<String, Pooled>,
    short: &str,
    alias: &AliasState,
    max_instances: usize,
) -> Result<BTreeMap<String, Pooled>, String> {
    let mut pools = BTreeMap::new();
    for (version, _) in alias.split() {
        let Version {
            spec,
            deployed,
            code_origin,
        } = emulator
            .read_version(short, &version, alias.arn.as_deref())
            .await
            .map_err(|e| format!("version {version}: {}", first_line(&e)))?;
        let pooled = match current.get(&version) {
            Some(old) if old.deployed == deployed && old.bootstrap == spec.bootstrap => old.clone(),
            _ => Pooled {
                bootstrap: spec.bootstrap.clone(),
                pool: Arc::new(FunctionPool::new(spec, max_instances)),
                deployed,
                origin: code_origin,
            },
        };
        pools.insert(version, pooled);
    }
    Ok(pools)
}

fn code_note(pooled: &Pooled) -> String {
    format!("{} ({})", pooled.origin, pooled.bootstrap.display())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_cumulative_weight() {
        let pool = |version: &str| {
            Arc::new(FunctionPool::new(
                crate::function_env::FunctionSpec {
                    short: "users".into(),
                    name: "p-users".into(),
                    version: version.into(),
                    arn: "arn".into(),
                    bootstrap: PathBuf::from("/nonexistent"),
                    env: BTreeMap::new(),
                    timeout: Duration::from_secs(1),
                    memory_mb: 128,
                    log_file: PathBuf::from("/dev/null"),
                    source: ConfigSource::Emulator,
                },
                1,
            ))
        };
        let mut routes = Routes::default();
        routes
            .functions
            .insert("users".into(), vec![(0.9, pool("4")), (1.0, pool("5"))]);
        let version = |r: f64| routes.pick("users", || r).unwrap().spec().version.clone();
        assert_eq!(version(0.0), "4");
        assert_eq!(version(0.899), "4");
        assert_eq!(version(0.9), "5");
        assert_eq!(version(0.999_999), "5");
        // Rounding never drops a request.
        assert_eq!(version(1.0), "5");
        assert!(routes.pick("health", || 0.5).is_none());
        for _ in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
