//! `cargo xtask watch`: the local development loop. Each saved change under `functions/`
//! rebuilds the functions it affects and the running local API server serves the new binary
//! within seconds: no Terraform, no zip, no upload.
//!
//! How a build reaches the server: it is copied to `build/<env>/watch/<fn>/bootstrap` (the
//! server's watch folder, see `local_api::traffic`), the server is sent `SIGHUP` and its
//! `routing.json` shows the file's size and modification time once new requests run it; idle
//! processes of the previous binary are stopped, busy ones finish their request first. That
//! moment is what the printed "served N s after the save" measures. On Ctrl-C the watch
//! builds are removed and the server is back on the deployed packages, so a later `deploy`
//! (or a server restart) never serves a stale development build.
//!
//! Profile: cargo's `dev` profile, the one the tests already build the function binaries with
//! (`target/debug/<fn>`). Incremental, 256 codegen units, no LTO and line tables only, so a
//! one-line change recompiles one crate and relinks one binary in a few seconds, and the
//! dependencies are the ones the test builds left compiled: the release profile would start
//! with a cold build of every dependency at `opt-level = "s"`, seconds slower per change for
//! speed nobody measures locally. argon2 and blake2 are optimised in `dev` too (see the
//! workspace manifest), so registration and log-in answer as fast as in the deployed build.
//! What is deployed is unchanged: `deploy` still builds the size-optimised release packages.
//! `watch` compiles every function's dev build once before it starts watching, so the first
//! save is as quick as the later ones.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use local_api::traffic::{Stamp, watch_bootstrap};
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use xshell::Shell;

use deploy_files::{ApiState, Routing};

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::artifacts::build::target_dir;
use crate::services::{deploy, functions, local};

/// How long the server may take to load a build before `watch` reports it as not served.
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time after a file event before the change counts as saved (editors write a file in
/// several steps).
const DEBOUNCE: Duration = Duration::from_millis(50);

pub fn run(sh: &Shell, env: &Env) -> Result<()> {
    let session = Session::start(sh, env)?;
    let (tx, rx) = mpsc::channel();
    let _watcher = watch_sources(&env.root, tx.clone())?;
    stop_on_ctrl_c(tx);
    progress::note(format!(
        "watching {} for changes (Ctrl-C stops; dev profile builds served from {})",
        process::display_path(&env.root, &env.root.join("functions")),
        process::display_path(&env.root, &session.watch_dir),
    ));
    let result = loop {
        let Ok(Message::Saved { functions, at }) = rx.recv() else {
            break Ok(());
        };
        // Changes saved while the previous build ran are built together.
        let (mut functions, mut at) = (functions, at);
        let mut stop = false;
        while let Ok(message) = rx.try_recv() {
            match message {
                Message::Saved {
                    functions: more,
                    at: t,
                } => {
                    functions.extend(more);
                    at = at.min(t);
                }
                Message::Stop => stop = true,
            }
        }
        if stop {
            break Ok(());
        }
        let functions: Vec<&str> = functions.into_iter().collect();
        match session.rebuild(&functions, at) {
            Ok(Some(rebuilt)) => progress::note(rebuilt),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
    };
    session.finish()?;
    result
}

/// What the file watcher and Ctrl-C send to the loop.
pub enum Message {
    /// Files of these functions changed; `at` is when the first event of the batch happened.
    Saved {
        functions: BTreeSet<&'static str>,
        at: Instant,
    },
    Stop,
}

/// Watches `<root>/functions` and sends one [`Message::Saved`] per debounced batch that
/// affects a function. Dropping the returned debouncer stops watching.
pub fn watch_sources(
    root: &Path,
    tx: mpsc::Sender<Message>,
) -> Result<Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>> {
    let root_owned = root.to_path_buf();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let mut functions = BTreeSet::new();
        let mut first: Option<Instant> = None;
        for event in &events {
            if !matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) {
                continue;
            }
            for path in &event.paths {
                let affected = functions::affected_by(&root_owned, path);
                if !affected.is_empty() {
                    first = Some(first.map_or(event.time, |t| t.min(event.time)));
                }
                functions.extend(affected);
            }
        }
        if let Some(at) = first {
            let _ = tx.send(Message::Saved { functions, at });
        }
    })
    .context("starting the file watcher")?;
    let dir = root.join("functions");
    debouncer
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    Ok(debouncer)
}

/// Sends [`Message::Stop`] on Ctrl-C (SIGINT) instead of letting it kill the process, so the
/// watch builds are removed before `watch` exits.
fn stop_on_ctrl_c(tx: mpsc::Sender<Message>) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime
            && runtime.block_on(tokio::signal::ctrl_c()).is_ok()
        {
            let _ = tx.send(Message::Stop);
        }
    });
}

/// The local stack with watch builds served; [`Session::finish`] takes them away again.
pub struct Session<'a> {
    env: &'a Env,
    watch_dir: PathBuf,
    /// Cargo's target directory for the dev builds (the workspace's, except in `bench`).
    target: PathBuf,
}

/// One rebuild that the server now serves.
pub struct Rebuilt {
    pub functions: Vec<String>,
    /// From the first file event to cargo's end.
    pub compiled: Duration,
    /// From the first file event to the server reporting the new binary loaded.
    pub served: Duration,
}

impl std::fmt::Display for Rebuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rebuilt {} (compiled {:.1} s after the save); served {:.1} s after the save",
            self.functions.join(", "),
            self.compiled.as_secs_f64(),
            self.served.as_secs_f64()
        )
    }
}

impl<'a> Session<'a> {
    /// Makes sure the local API server runs (starting it on the current deployment, or
    /// deploying when there is none) and clears watch builds a killed `watch` left behind.
    pub fn start(sh: &Shell, env: &'a Env) -> Result<Session<'a>> {
        Self::start_in(sh, env, target_dir(env))
    }

    /// [`Session::start`] with the dev builds in cargo's target directory `target`.
    fn start_in(sh: &Shell, env: &'a Env, target: PathBuf) -> Result<Session<'a>> {
        local::require_emulated(env)?;
        ensure_served(sh, env)?;
        let session = Session {
            env,
            watch_dir: env.dir().join("watch"),
            target,
        };
        if session.watch_dir.exists() {
            progress::note("removing the watch builds of an earlier `watch`");
            session.clear()?;
        }
        session.prepare()?;
        Ok(session)
    }

    /// Compiles every function with the dev profile before anything is watched. After a fresh
    /// `deploy` only the release profile is built, so without this the first save would also
    /// compile the dev profile's dependencies (22 s measured on 2 cores) instead of one crate.
    /// The command is the one a save runs, so the save finds all of it fresh.
    fn prepare(&self) -> Result<()> {
        let functions = functions::names();
        progress::step(format!(
            "Compiling the dev builds of {} once, so a save rebuilds only what it changed",
            functions.join(", ")
        ));
        let started = Instant::now();
        if !dev_build(&self.env.root, &self.target, functions)?.success() {
            bail!(
                "the dev build of the functions failed (cargo's errors are above); fix it and \
                 start `watch` again"
            );
        }
        progress::note(format!(
            "dev builds ready in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Builds `functions` with the dev profile and waits until the server serves them.
    /// `Ok(None)`: the build failed (cargo's errors are on stderr), the previous binaries keep
    /// serving.
    pub fn rebuild(&self, functions: &[&str], saved: Instant) -> Result<Option<Rebuilt>> {
        progress::step(format!("Rebuilding {}", functions.join(", ")));
        if !dev_build(&self.env.root, &self.target, functions)?.success() {
            eprintln!(
                "watch: the build of {} failed; the previous build keeps serving",
                functions.join(", ")
            );
            return Ok(None);
        }
        let compiled = saved.elapsed();
        let debug = self.target.join("debug");
        let mut stamps = Vec::new();
        for function in functions {
            let target = watch_bootstrap(&self.watch_dir, function);
            install(&debug.join(function), &target)?;
            stamps.push((
                function.to_string(),
                Stamp::of(&target).context("the copied build vanished")?,
            ));
        }
        self.wait_until(|record| {
            stamps
                .iter()
                .all(|(f, stamp)| served_stamp(record, f) == Some(*stamp))
        })?;
        Ok(Some(Rebuilt {
            functions: functions.iter().map(|f| f.to_string()).collect(),
            compiled,
            served: saved.elapsed(),
        }))
    }

    /// Removes the watch builds and waits until the server is back on the deployed code.
    pub fn finish(self) -> Result<()> {
        self.clear()?;
        progress::note(
            "watch builds removed: the local API server serves the deployed packages again",
        );
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.watch_dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .with_context(|| format!("removing {}", self.watch_dir.display()))?;
        self.wait_until(|record| {
            functions::names()
                .iter()
                .all(|f| served_stamp(record, f).is_none())
        })
    }

    /// Asks the running server to refresh now and waits until its `routing.json` satisfies
    /// `done`.
    fn wait_until(&self, done: impl Fn(&Routing) -> bool) -> Result<()> {
        let api = local::running_api(self.env).context(
            "the local API server stopped; start it again with `cargo xtask deploy` or `watch`",
        )?;
        let routing = local::routing_file(self.env, &api);
        local::refresh_api(&api);
        let deadline = Instant::now() + SERVE_TIMEOUT;
        loop {
            let record = Routing::read(&routing).ok();
            if record.as_ref().is_some_and(|r| r.pid == api.pid && done(r)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the local API server (pid {}) did not load the watch build within {} s; \
                     see {}",
                    api.pid,
                    SERVE_TIMEOUT.as_secs(),
                    process::display_path(
                        &self.env.root,
                        &self.env.dir().join("logs").join("local-api.log")
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `cargo build` of `functions`' binaries with the dev profile. By `--bin`, not `-p`: cargo
/// then resolves features over the whole workspace, as the tests and `cargo xtask` do, so the
/// three share one build of every dependency.
fn dev_build(root: &Path, target: &Path, functions: &[&str]) -> Result<std::process::ExitStatus> {
    cargo_build(root, target, functions)
        .status()
        .context("running cargo build")
}

/// `cargo build --quiet --bin <each of bins>` with the dev profile in `target`.
fn cargo_build(root: &Path, target: &Path, bins: &[&str]) -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--quiet"])
        .args(bins.iter().flat_map(|b| ["--bin", *b]))
        .env("CARGO_TARGET_DIR", target)
        .current_dir(root);
    cargo
}

/// The watch build `routing.json` says `function` runs, if any.
fn served_stamp(routing: &Routing, function: &str) -> Option<Stamp> {
    let served = routing.functions.get(function)?.watch_build.as_ref()?;
    Some(Stamp {
        bytes: served.bytes,
        modified_ns: served.modified_ns,
    })
}

/// Copies the binary beside `target` and renames it into place: the server never sees a
/// half-written file, and a running process keeps its own (the old) file.
fn install(binary: &Path, target: &Path) -> Result<()> {
    let dir = target.parent().expect("watch builds live in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join(".bootstrap.partial");
    std::fs::copy(binary, &partial)
        .with_context(|| format!("copying {} to {}", binary.display(), partial.display()))?;
    std::fs::rename(&partial, target)
        .with_context(|| format!("moving the build into {}", target.display()))
}

/// The local API server running; started on the current deployment, or deployed first when
/// there is none (no outputs, or an emulator that has gone since).
fn ensure_served(sh: &Shell, env: &Env) -> Result<ApiState> {
    if let Some(api) = local::running_api(env) {
        return Ok(api);
    }
    match local::running_moto(env) {
        Some(moto) if env.outputs_file().exists() => local::start_api(sh, env, &moto),
        _ => {
            progress::step("Nothing deployed yet: deploying the local stack first");
            deploy::deploy(sh, env, &deploy::Options::default())?;
            local::running_api(env).context("the deploy did not leave a local API server running")
        }
    }
}

/// `cargo xtask bench`'s figures of the loop, as a developer meets it right after the first
/// `deploy` of a fresh clone: how long `watch` takes to start (its dev builds), then two
/// one-line changes of a handler (a comment appended, and taken out again afterwards), each
/// until the local API server serves the rebuilt binary: the same path a save in an editor
/// takes (file event, dev build, `SIGHUP`, `routing.json`).
///
/// The workspace's own target directory holds the tests' dev builds of the functions, which
/// a fresh clone does not have, and with them `watch` would start with nothing to compile.
/// So the session builds in a target directory of its own (`build/<env>/bench/watch-target`),
/// emptied first and given only what `cargo xtask deploy` compiles in the dev profile: xtask
/// itself (not timed: that is the deploy's cost).
pub struct BenchFigures {
    pub start: Duration,
    pub first_save: Rebuilt,
    pub later_save: Rebuilt,
}

pub fn bench(sh: &Shell, env: &Env, function: &str) -> Result<BenchFigures> {
    let target = env.dir().join("bench").join("watch-target");
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("emptying {}", target.display()))?;
    }
    progress::step(format!(
        "Compiling xtask's dev build in {}, as `cargo xtask deploy` on a fresh clone does (not \
         timed; a few minutes)",
        process::display_path(&env.root, &target)
    ));
    if !cargo_build(&env.root, &target, &["xtask"])
        .status()
        .context("running cargo build")?
        .success()
    {
        bail!("the dev build of xtask failed (cargo's errors are above)");
    }
    let started = Instant::now();
    let session = Session::start_in(sh, env, target)?;
    let start = started.elapsed();
    let (tx, rx) = mpsc::channel();
    let watcher = watch_sources(&env.root, tx)?;
    let handler = env.root.join("functions").join(function).join("src/lib.rs");
    let save = |n: usize| -> Result<Rebuilt> {
        let edit = ScratchEdit::append(&handler, &format!("\n// cargo xtask bench: change {n}\n"))?;
        let saved = Instant::now();
        let rebuilt = loop {
            match rx.recv_timeout(SERVE_TIMEOUT) {
                Ok(Message::Saved { functions, .. }) if functions.contains(function) => {
                    break session.rebuild(&[function], saved);
                }
                Ok(_) => {}
                Err(_) => break Err(anyhow::anyhow!("no file event for {}", handler.display())),
            }
        };
        drop(edit);
        rebuilt?.with_context(|| format!("the dev build of the changed {function} failed"))
    };
    let first_save = save(1);
    let later_save = first_save.as_ref().ok().map(|_| save(2));
    drop(watcher);
    session.finish()?;
    Ok(BenchFigures {
        start,
        first_save: first_save?,
        later_save: later_save.expect("the first save succeeded")?,
    })
}

/// A change to a source file that is undone when dropped, whatever happens in between.
struct ScratchEdit {
    path: PathBuf,
    original: Vec<u8>,
}

impl ScratchEdit {
    fn append(path: &Path, text: &str) -> Result<ScratchEdit> {
        let original =
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut changed = original.clone();
        changed.extend_from_slice(text.as_bytes());
        std::fs::write(path, changed).with_context(|| format!("writing {}", path.display()))?;
        Ok(ScratchEdit {
            path: path.to_path_buf(),
            original,
        })
    }
}

impl Drop for ScratchEdit {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.original) {
            eprintln!("could not restore {}: {e}", self.path.display());
        }
    }
}
