//! The deploy pipeline: from source to a running, verified stack (`cargo xtask
//! deploy`, and the benchmark's measured deploys).
//!
//! build -> check -> package -> synth -> bootstrap stack (artifacts bucket)
//! -> the declared secrets without a value, named -> upload missing packages -> service stack (publishes versions) -> wait
//! for Lambda -> outputs -> release (`live` onto the new versions, see
//! `release`) -> (local) start the local API server -> (`--smoke`) smoke
//! gate, rolled back on failure. Each Terraform stack is applied only when
//! its fingerprint (synthesized JSON, variables, target) differs from the
//! last successful apply, so an unchanged deploy takes seconds; it still
//! releases when `live` is not on the newest versions (after a rollback, a
//! deploy of the same source releases it again).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::Shell;

use crate::base::aws::Target;
use crate::base::env::{self, BOOTSTRAP_STACK, Env, SERVICE_STACK};
use crate::base::release_strategy::Strategy;
use crate::base::{process, progress};
use crate::services::aliases::{self, Versions, hotswap, release, rollback};
use crate::services::artifacts::package::{self, Manifest};
use crate::services::artifacts::{sign, upload};
use crate::services::local::{self, MotoState};
use crate::services::stacks::outputs;
use crate::services::stacks::state::{LastDeploy, fingerprint, write_tfvars};
use crate::services::stacks::terraform::{self, Terraform};
use crate::services::stacks::{bootstrap, prerequisites, synth};
use crate::services::{secrets, smoke, stages, target};
use deploy_files::Outputs;

/// How a deploy runs: the `deploy` command's flags (see their help in `cli`), which the
/// benchmark also sets itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub force: bool,
    pub prebuilt: Option<PathBuf>,
    pub no_serve: bool,
    pub hotswap: bool,
    pub shift: Option<Strategy>,
    pub smoke: bool,
}

/// What a deploy did; printed as JSON with `--json` and used by the benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub env: String,
    /// The stage deployed (`--stage`), if any.
    pub stage: Option<String>,
    pub api_url: Option<String>,
    pub local_api_url: Option<String>,
    /// `applied` or `unchanged` per stack.
    pub stacks: BTreeMap<String, String>,
    pub uploaded: Vec<String>,
    pub already_uploaded: Vec<String>,
    /// Functions whose package differs from the last deploy.
    pub changed_functions: Vec<String>,
    /// How `live` moved to the new versions (absent when nothing moved).
    pub release: Option<release::Report>,
    /// The smoke report of `--smoke`.
    pub smoke: Option<String>,
    /// Declared secrets that had no value before the service stack applied (on an emulator
    /// environment, not the generated ones: the deploy generates those).
    pub secrets_without_value: Vec<String>,
    /// Generated secrets this deploy gave a value (emulator environments only).
    pub secrets_generated: Vec<String>,
    /// What Terraform's apply of the service stack did, per resource type (absent when it did
    /// not run): the stage workflow's comment shows it.
    pub service_changes: Option<terraform::Changes>,
    /// Seconds per step.
    pub timings: BTreeMap<String, f64>,
}

impl Report {
    /// Records the seconds since `since` as the time of step `name`.
    fn time(&mut self, name: &str, since: Instant) {
        self.timings
            .insert(name.to_owned(), since.elapsed().as_secs_f64());
    }
}

/// The deploy proper (the benchmark calls it directly): the steps below, in order.
pub fn deploy(sh: &Shell, env: &Env, args: &Options) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        env: env.name.clone(),
        stage: env.stage.clone(),
        ..Report::default()
    };
    if env.emulated {
        progress::step(format!(
            "Deploying `{}` to the local AWS emulator",
            env.label()
        ));
    }
    prerequisites::check(env)?;
    // A real account's credentials are checked before anything is compiled.
    let checked_target = match env.emulated {
        true => None,
        false => Some(target::target(env)?),
    };

    // The compile is the longest step of a first deploy and needs nothing from the stacks, so
    // it runs on a thread of its own while the emulator starts and the bootstrap stack
    // applies. If that side fails first, the compile is stopped rather than waited for.
    let (built, prepared) = std::thread::scope(|scope| {
        let build = scope.spawn(|| build(env, args));
        let prepared = prepare(env, args, checked_target);
        if prepared.is_err() {
            progress::cancel();
        }
        let built = build.join().expect("the compile thread does not panic");
        (built, prepared)
    });
    let Prepared {
        target,
        moto,
        mut last,
        identity,
        bucket,
        synth_took,
        bootstrap,
        bootstrap_took,
    } = prepared?;
    let built = built?;
    report.secrets_without_value = secrets_without_value(env, &target);
    // The local API server and smoke (debug builds, minutes on a fresh clone) compile while
    // the packages upload and the service stack applies; starting the server waits for them.
    let tools = (env.emulated && !args.no_serve).then(local::Prebuild::start);
    report
        .timings
        .insert("build_and_package".to_owned(), built.took.as_secs_f64());
    report
        .timings
        .insert("synth".to_owned(), synth_took.as_secs_f64());
    report
        .timings
        .insert("bootstrap_stack".to_owned(), bootstrap_took.as_secs_f64());
    report
        .stacks
        .insert(BOOTSTRAP_STACK.to_owned(), bootstrap.to_owned());

    let manifest = upload(
        env,
        &target,
        &bucket,
        &built.manifest.for_env(env),
        &mut report,
    )?;
    let service = service_stack(
        env,
        args,
        &Applied {
            target: &target,
            bucket: &bucket,
            identity: &identity,
            manifest: &manifest,
        },
        &mut last,
        &mut report,
    )?;
    if env.emulated {
        report.secrets_generated = generate_missing_secrets(env, &target)?;
    }
    let outs = outputs::load(env)?;
    report.api_url = Some(outs.api_url.clone());
    let pending = release(env, args, &target, &service.published, &outs, &mut report)?;
    if let Some(moto) = &moto
        && !args.no_serve
    {
        serve(sh, env, moto, tools, &service, &mut report)?;
    }
    if env.stage.is_some() {
        let url = report.local_api_url.as_ref().unwrap_or(&outs.api_url);
        stages::record_deploy(env, &target, url)?;
    }
    if args.smoke {
        smoke_gate(
            sh,
            env,
            &target,
            moto.as_ref(),
            pending.as_ref(),
            &mut report,
        )?;
    }
    report
        .timings
        .insert("total".to_owned(), started.elapsed().as_secs_f64());
    Ok(report)
}

/// Step 1c: the declared secrets that have no value, named with the command that sets each,
/// before the service stack applies. A warning, not a refusal: on a first deploy no secret can
/// have a value yet (this apply creates them), and a function reads its secrets per request,
/// so only the requests that need a missing one fail (500), not the release. A failed check
/// (no `DescribeSecret`) is a note: it decides nothing. On an emulator environment the
/// generated secrets are not named: this deploy generates them after the apply
/// ([`generate_missing_secrets`]); on an account, their command is `secret set --generate`.
fn secrets_without_value(env: &Env, target: &Target) -> Vec<String> {
    let found = process::block_on(async {
        let client = secrets::client(target).await;
        secrets::without_value(&client, env).await
    });
    match found {
        Ok(mut unset) => {
            if env.emulated {
                unset.retain(|secret| secret.generate.is_none());
            }
            if !unset.is_empty() {
                progress::step(
                    "Declared secrets without a value: the functions that read them answer 500 \
                     where they need them until a person sets them (after this deploy, which \
                     creates any that do not exist yet)",
                );
            }
            for secret in &unset {
                progress::note(format!(
                    "{} (read by {}): cargo xtask secret set {} --env {}{}",
                    secret.name,
                    secret.read_by.join(", "),
                    secret.name,
                    env.name,
                    if secret.generate.is_some() {
                        " --generate"
                    } else {
                        ""
                    }
                ));
            }
            unset.into_iter().map(|s| s.name.to_owned()).collect()
        }
        Err(error) => {
            progress::note(format!(
                "could not check which declared secrets have a value: {error:#}"
            ));
            Vec::new()
        }
    }
}

/// Step 3b, on an emulator environment: a generated value for each generated secret (the
/// password peppers) that has none, right after the service stack created it, so the first
/// `deploy && smoke` of a fresh clone works with no `secret set`. A progress line per secret,
/// never the value.
fn generate_missing_secrets(env: &Env, target: &Target) -> Result<Vec<String>> {
    let generated = process::block_on(async {
        let client = secrets::client(target).await;
        secrets::generate_missing(&client, env).await
    })
    .context("generating the values of the generated secrets in the emulator")?;
    for secret in &generated {
        progress::step(format!(
            "Generated a value for `{}` ({}; read by {}) in the emulator",
            secret.name,
            secret.generate.map_or("", catalog::secrets::Generate::kind),
            secret.read_by.join(", ")
        ));
    }
    Ok(generated.into_iter().map(|s| s.name.to_owned()).collect())
}

/// The compiled, checked packages, and how long that took.
struct Built {
    manifest: Manifest,
    took: Duration,
}

/// Step 1a: build, check and package the functions (or take `--prebuilt` binaries).
fn build(env: &Env, args: &Options) -> Result<Built> {
    let t = Instant::now();
    let manifest = package::build_check_package(env, args.prebuilt.as_deref())?;
    Ok(Built {
        manifest,
        took: t.elapsed(),
    })
}

/// What the steps beside the compile found and did.
struct Prepared {
    target: Target,
    moto: Option<MotoState>,
    /// The record of the last deploy (cleared of its stacks by `--force`).
    last: LastDeploy,
    /// What the stacks are applied against ([`target_identity`]).
    identity: String,
    /// The artifacts bucket of the bootstrap stack.
    bucket: String,
    synth_took: Duration,
    /// `applied` or `unchanged`.
    bootstrap: &'static str,
    bootstrap_took: Duration,
}

/// Step 1b, beside the compile: the target (the emulator starts), the refusal to go backwards,
/// synthesis and the bootstrap stack.
fn prepare(
    env: &Env,
    args: &Options,
    checked_target: Option<(Target, Option<MotoState>)>,
) -> Result<Prepared> {
    let (target, moto) = match checked_target {
        Some(checked) => checked,
        None => target::target(env)?,
    };
    // Never backwards by accident: before anything is applied.
    rollback::refuse_backwards(env, &target)?;
    let t = Instant::now();
    synth::synthesize(env)?;
    let synth_took = t.elapsed();
    // On the emulator the bootstrap stack is the environment's and its stages': one deploy
    // applies it at a time, and reads the record of the last apply once its turn has come.
    let turn = match (env.emulated, &env.stage) {
        (true, None) => Some(bootstrap_turn(env)?),
        _ => None,
    };
    let mut last = LastDeploy::load(env);
    if args.force {
        // Keep the package record: "changed functions" stays meaningful.
        last.stacks.clear();
        last.artifacts_bucket = None;
        last.service_structure = None;
    }
    let identity = target_identity(env, &target, moto.as_ref());
    let t = Instant::now();
    let (bucket, bootstrap) = match env.stage {
        None => bootstrap_stack(env, &target, &identity, &mut last)?,
        Some(_) => {
            let shared = shared_bootstrap_stack(env, &target, &identity)?;
            // The stage's own record names the bucket too, for its destroy.
            last.artifacts_bucket = Some(shared.0.clone());
            shared
        }
    };
    drop(turn);
    Ok(Prepared {
        target,
        moto,
        last,
        identity,
        bucket,
        synth_took,
        bootstrap,
        bootstrap_took: t.elapsed(),
    })
}

/// Step 2: the packages not yet in the bucket; in environments that enforce code signing, the
/// signed copies, which are what the service stack then deploys.
fn upload(
    env: &Env,
    target: &Target,
    bucket: &str,
    manifest: &Manifest,
    report: &mut Report,
) -> Result<Manifest> {
    let t = Instant::now();
    let uploaded = upload::missing_only(env, target, bucket, manifest)?;
    report.uploaded = uploaded.uploaded;
    report.already_uploaded = uploaded.already_present;
    report.time("upload", t);
    let t = Instant::now();
    let manifest = sign::if_required(env, target, bucket, manifest)?;
    report.time("sign", t);
    Ok(manifest)
}

/// Where and what the service stack is applied with.
struct Applied<'a> {
    target: &'a Target,
    bucket: &'a str,
    identity: &'a str,
    manifest: &'a Manifest,
}

/// What the service stack's step left.
struct ServiceStack {
    /// The versions this deploy wants `live` on, per function.
    published: Versions,
    /// Nothing changed since the last deploy: Terraform did not run.
    unchanged: bool,
    /// Only the function packages changed since the last apply of this structure.
    code_only: bool,
}

/// Step 3: the service stack, fed the package keys and hashes: skipped when nothing changed,
/// hotswapped with `--hotswap` when only code changed, applied by Terraform otherwise.
fn service_stack(
    env: &Env,
    args: &Options,
    applied: &Applied<'_>,
    last: &mut LastDeploy,
    report: &mut Report,
) -> Result<ServiceStack> {
    let Applied {
        target,
        bucket,
        identity,
        manifest,
    } = *applied;
    let var_file = write_tfvars(env, bucket, manifest)?;
    let t = Instant::now();
    let service_fp = fingerprint(&env.stack_dir(SERVICE_STACK), Some(&var_file), identity)?;
    report.changed_functions = manifest
        .functions
        .iter()
        .filter(|(name, pkg)| last.packages.get(*name) != Some(&pkg.sha256))
        .map(|(name, _)| name.clone())
        .collect();
    let structure_fp = fingerprint(
        &env.stack_dir(SERVICE_STACK),
        None,
        &format!("{identity} bucket={bucket}"),
    )?;
    let unchanged =
        last.stacks.get(SERVICE_STACK) == Some(&service_fp) && env.outputs_file().exists();
    let code_only =
        last.service_structure.as_ref() == Some(&structure_fp) && env.outputs_file().exists();
    let published: Versions = if unchanged {
        progress::step(
            "Service stack, packages and variables unchanged since the last deploy; skipping terraform (--force applies anyway)",
        );
        report
            .stacks
            .insert(SERVICE_STACK.to_owned(), "unchanged".to_owned());
        report.changed_functions.clear();
        published_versions(&outputs::load(env)?)
    } else if args.hotswap && code_only {
        progress::step(format!(
            "Only function code changed; hotswapping {} through the Lambda API (Terraform reconciles at the next plain deploy)",
            report.changed_functions.join(", ")
        ));
        let published =
            hotswap::functions(env, target, bucket, manifest, &report.changed_functions)?;
        report.time("hotswap", t);
        // Not the applied fingerprint: a plain deploy must still run Terraform.
        last.stacks
            .insert(SERVICE_STACK.to_owned(), format!("hotswapped {service_fp}"));
        last.packages = package_hashes(manifest);
        last.save(env)?;
        report
            .stacks
            .insert(SERVICE_STACK.to_owned(), "hotswapped".to_owned());
        published
    } else {
        if args.hotswap {
            progress::note("more than function code changed; applying with Terraform");
        }
        let tf = Terraform::new(env, SERVICE_STACK, target.terraform_env())?;
        progress::step("Applying the service stack");
        with_emulator_hint(env, tf.init())?;
        // Only package variables changed since Terraform last refreshed and
        // applied this very structure: the refresh would read back every
        // resource (most of the minute) to update three functions. Any other
        // change, `--force` and `plan` still refresh and so see drift.
        let applied = if code_only && !args.force {
            progress::note("only function code changed: applying without a refresh");
            tf.apply_without_refresh(Some(&var_file))
        } else {
            tf.apply(Some(&var_file))
        };
        report.service_changes = Some(with_emulator_hint(env, applied)?);
        report.time("service_stack", t);
        let t = Instant::now();
        aliases::wait::functions_live(env, target)?;
        report.time("wait_lambda", t);
        let outs = outputs::save(env, &tf.outputs()?)?;
        last.stacks.insert(SERVICE_STACK.to_owned(), service_fp);
        last.service_structure = Some(structure_fp);
        last.packages = package_hashes(manifest);
        last.save(env)?;
        report
            .stacks
            .insert(SERVICE_STACK.to_owned(), "applied".to_owned());
        published_versions(&outs)
    };
    Ok(ServiceStack {
        published,
        unchanged,
        code_only,
    })
}

/// Step 4, release: `live` onto the published versions, gated by the alarms. Returns the release
/// still open (`--smoke` is its last gate), if anything moved.
///
/// The release is recorded on the aliases before anything moves and stays `releasing` until
/// its last gate (the alarms, or the smoke run of `--smoke`) passed, so whatever stops this
/// process in between leaves a release that `rollback --unfinished` undoes, from any machine.
fn release(
    env: &Env,
    args: &Options,
    target: &Target,
    published: &Versions,
    outs: &Outputs,
    report: &mut Report,
) -> Result<Option<rollback::Pending>> {
    let t = Instant::now();
    let live = aliases::live_versions(env, target)?;
    let shifts = release::shifts(&live, published);
    if shifts.is_empty() {
        return Ok(None);
    }
    let strategy = args.shift.clone().unwrap_or_else(|| env.strategy.clone());
    let pending = rollback::begin(env, target, &shifts)?;
    match release::run(env, target, &shifts, &strategy, &outs.release_alarms) {
        Ok(release) => report.release = Some(release),
        Err(err) => return Err(recover(env, target, &pending, err)),
    }
    // Without a smoke run, the alarm gate was the last one.
    if !args.smoke {
        rollback::finish(env, target, &pending)?;
    }
    report.time("release", t);
    Ok(Some(pending))
}

/// Step 5: locally, the API is served on loopback by the packaged binaries. A running server
/// follows the aliases by itself; it only has to start again when the stack's structure (its
/// outputs) changed.
fn serve(
    sh: &Shell,
    env: &Env,
    moto: &MotoState,
    tools: Option<local::Prebuild>,
    service: &ServiceStack,
    report: &mut Report,
) -> Result<()> {
    let t = Instant::now();
    if let Some(tools) = tools {
        tools.wait();
    }
    let api = match local::running_api(env) {
        Some(api) if service.unchanged || service.code_only => api,
        _ => local::start_api(sh, env, moto)?,
    };
    report.local_api_url = Some(api.url);
    report.time("local_api", t);
    Ok(())
}

/// Step 6: the smoke run as the release's last gate: a failure rolls back what this deploy
/// released; a pass finishes the release.
fn smoke_gate(
    sh: &Shell,
    env: &Env,
    target: &Target,
    moto: Option<&MotoState>,
    pending: Option<&rollback::Pending>,
    report: &mut Report,
) -> Result<()> {
    let t = Instant::now();
    let result = smoke::gate(sh, env, target, moto);
    report.time("smoke", t);
    match result {
        Ok(path) => report.smoke = Some(process::display_path(&env.root, &path)),
        Err(err) if pending.is_some() => {
            progress::step("The smoke run failed; rolling the release back");
            let back = rollback::roll_back(env, target, rollback::Scope::Unfinished)
                .context("rolling back after the failed smoke run")?;
            let moves: Vec<String> = back
                .moved
                .iter()
                .map(|m| format!("{} {} -> {}", m.function, m.from, m.to))
                .collect();
            return Err(err.context(format!(
                "the new versions failed the smoke run and were rolled back ({}); the \
                 previous versions serve all the traffic",
                moves.join(", ")
            )));
        }
        Err(err) => {
            return Err(
                err.context("this deploy released nothing, so there is nothing to roll back")
            );
        }
    }
    if let Some(pending) = pending {
        rollback::finish(env, target, pending)?;
    }
    Ok(())
}

/// After a release failed: when it already moved back by itself (an alarm),
/// the records it replaced hold again; otherwise (an AWS call failed while
/// aliases moved) it is rolled back here, and if that fails too, the release
/// stays recorded as unfinished on the aliases for `rollback --unfinished`.
fn recover(
    env: &Env,
    target: &Target,
    pending: &rollback::Pending,
    err: anyhow::Error,
) -> anyhow::Error {
    let settled = match aliases::aliases(env, target) {
        Ok(now) if pending.is_back(&now) => rollback::abandon(env, target, pending).map(|()| None),
        _ => {
            progress::step("The release failed half-way; rolling it back");
            rollback::roll_back(env, target, rollback::Scope::Unfinished).map(Some)
        }
    };
    match settled {
        Ok(None) => err,
        Ok(Some(back)) => {
            let moves: Vec<String> = back
                .moved
                .iter()
                .map(|m| format!("{} {} -> {}", m.function, m.from, m.to))
                .collect();
            err.context(format!(
                "the release failed and was rolled back ({}); the previous versions serve all \
                 the traffic",
                moves.join(", ")
            ))
        }
        Err(back) => err.context(format!(
            "the release failed and moving the aliases back failed too ({back:#}); the release \
             is recorded on the `live` aliases as unfinished: run `cargo xtask rollback --env {} \
             --unfinished` from any machine with access to the account",
            env.name
        )),
    }
}

/// The bootstrap stack (the artifacts bucket the packages go to), applied unless its
/// fingerprint matches the last apply. Returns the bucket and `applied` or `unchanged`.
fn bootstrap_stack(
    env: &Env,
    target: &Target,
    identity: &str,
    last: &mut LastDeploy,
) -> Result<(String, &'static str)> {
    let fingerprint = fingerprint(&env.stack_dir(BOOTSTRAP_STACK), None, identity)?;
    if let (Some(bucket), Some(applied)) =
        (&last.artifacts_bucket, last.stacks.get(BOOTSTRAP_STACK))
        && *applied == fingerprint
    {
        progress::step("Bootstrap stack unchanged since the last deploy; skipping terraform");
        return Ok((bucket.clone(), "unchanged"));
    }
    if !env.emulated {
        bootstrap::require_state_bucket(env, target)?;
    }
    let tf = Terraform::new(env, BOOTSTRAP_STACK, target.terraform_env())?;
    progress::step("Applying the bootstrap stack (artifacts bucket)");
    with_emulator_hint(env, tf.init())?;
    with_emulator_hint(env, tf.apply(None))?;
    let outs = tf.outputs()?;
    let bucket = outs
        .get("artifacts_bucket")
        .and_then(|v| v.as_str())
        .context("the bootstrap stack has no `artifacts_bucket` output")?
        .to_owned();
    last.stacks.insert(BOOTSTRAP_STACK.to_owned(), fingerprint);
    last.artifacts_bucket = Some(bucket.clone());
    // Recorded now: a later failure must not re-apply what succeeded.
    last.save(env)?;
    Ok((bucket, "applied"))
}

/// A stage's bootstrap stack is its environment's. On the emulator it is applied as the
/// environment's own deploy would (so a stage can be the first thing deployed there); on an
/// account only read: an administrator or the environment's deploy applies it, and the
/// credentials a stage deploys with may not change it.
fn shared_bootstrap_stack(
    env: &Env,
    target: &Target,
    identity: &str,
) -> Result<(String, &'static str)> {
    if !env.emulated {
        let bucket = crate::services::stacks::state::artifacts_bucket(env, target)?;
        return Ok((bucket, "shared"));
    }
    let base = env.base();
    // Two deploys at once to a fresh emulator (stages, or a stage and the environment) would
    // both apply the shared stack, and Terraform's state lock would fail the second: they take
    // turns, and the second, reading the record after its wait, finds the stack applied.
    let _turn = bootstrap_turn(&base)?;
    synth::synthesize(&base)?;
    let mut last = LastDeploy::load(&base);
    bootstrap_stack(&base, target, identity, &mut last)
}

/// An exclusive lock on `build/<env>/bootstrap.lock`, held until the file is dropped; says so
/// when another process holds it and this one waits.
fn bootstrap_turn(base: &Env) -> Result<std::fs::File> {
    let path = base.base_dir().join("bootstrap.lock");
    std::fs::create_dir_all(base.base_dir())?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            progress::step(format!(
                "Waiting for another deploy applying `{}`'s bootstrap stack",
                base.name
            ));
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    Ok(file)
}

fn package_hashes(manifest: &Manifest) -> BTreeMap<String, String> {
    manifest
        .functions
        .iter()
        .map(|(n, p)| (n.clone(), p.sha256.clone()))
        .collect()
}

/// The newest version Terraform published of every function.
fn published_versions(outputs: &Outputs) -> Versions {
    env::functions()
        .iter()
        .filter_map(|f| {
            let deployed = outputs.functions.get(*f)?;
            Some(((*f).to_owned(), deployed.version.clone()))
        })
        .collect()
}

/// What the Terraform state was applied against: the same JSON applied to a
/// different emulator process (or region) is not a no-op.
fn target_identity(env: &Env, target: &Target, moto: Option<&MotoState>) -> String {
    match moto {
        Some(m) => format!(
            "emulator pid={} port={} region={}",
            m.pid, m.port, target.region
        ),
        None => format!("aws region={} env={}", target.region, env.name),
    }
}

/// On an emulated environment, a failure is often the emulator having died;
/// say so, and that a re-run converges.
fn with_emulator_hint<T>(env: &Env, result: Result<T>) -> Result<T> {
    match result {
        Err(err) if env.emulated && local::running_moto(env).is_none() => Err(err.context(
            "the emulator stopped during the deploy; run `cargo xtask deploy` again: it starts a \
             fresh emulator and re-creates the stack",
        )),
        other => other,
    }
}
