//! Releases against moto, the real terraform and the real `bootstrap`
//! binaries served by the local API server: a canary that completes, a
//! manual rollback from a fresh checkout (the record lives on the aliases),
//! a release whose smoke run fails and is rolled back automatically, a canary
//! stopped by an alarm, and releases that never finish (an AWS error while
//! aliases move, a deploy killed mid-canary) undone by the deploy workflow's
//! recovery step, `cargo xtask rollback --unfinished`. Only the first deploy
//! runs Terraform; the later versions are hotswapped (a new version each).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

/// Every non-empty weights map an alias carried, sorted by version.
type SeenWeights = Arc<Mutex<Vec<Vec<(String, f64)>>>>;

/// The alias's weights, read every 100 ms on another thread until the
/// returned stop flag is set.
fn watch_weights(endpoint: &str, function: &str) -> (Arc<AtomicBool>, SeenWeights) {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (endpoint, function) = (endpoint.to_owned(), function.to_owned());
    let (stop2, seen2) = (stop.clone(), seen.clone());
    std::thread::spawn(move || {
        with_lambda(&endpoint, async |lambda| {
            while !stop2.load(Ordering::SeqCst) {
                if let Ok(alias) = lambda
                    .get_alias()
                    .function_name(format!("prod-service-{function}"))
                    .name("live")
                    .send()
                    .await
                    && let Some(weights) = alias
                        .routing_config()
                        .and_then(|r| r.additional_version_weights())
                    && !weights.is_empty()
                {
                    let mut w: Vec<(String, f64)> =
                        weights.iter().map(|(k, v)| (k.clone(), *v)).collect();
                    w.sort_by(|a, b| a.0.cmp(&b.0));
                    seen2.lock().unwrap().push(w);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    (stop, seen)
}

/// The release record on `prod-service-<function>`'s `live` alias (in its
/// description), if it carries one.
fn alias_record(endpoint: &str, function: &str) -> Option<serde_json::Value> {
    let description = with_lambda(endpoint, async |lambda| {
        lambda
            .get_alias()
            .function_name(format!("prod-service-{function}"))
            .name("live")
            .send()
            .await
            .unwrap()
            .description()
            .unwrap_or_default()
            .to_owned()
    });
    let (_, json) = description.split_once("xtask-release:")?;
    Some(serde_json::from_str(json).unwrap())
}

/// Whether `prod-service-<function>`'s `live` alias carries routing weights.
fn weighted(endpoint: &str, function: &str) -> bool {
    with_lambda(endpoint, async |lambda| {
        lambda
            .get_alias()
            .function_name(format!("prod-service-{function}"))
            .name("live")
            .send()
            .await
            .unwrap()
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .is_some_and(|w| !w.is_empty())
    })
}

/// Waits (two minutes at most) until `function`'s alias carries weights: a canary is baking.
fn wait_for_canary(endpoint: &str, function: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !weighted(endpoint, function) {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A build folder as a fresh checkout on another machine has it: nothing but
/// the way to reach the deployment (for `local`, the emulator's address; for
/// an account, credentials).
fn fresh_checkout(dir: &std::path::Path) -> std::path::PathBuf {
    let fresh = scratch("release-fresh-checkout");
    std::fs::create_dir_all(fresh.join("local")).unwrap();
    std::fs::copy(dir.join("local/moto.json"), fresh.join("local/moto.json")).unwrap();
    fresh
}

fn set_alarm(endpoint: &str, name: &str) {
    with_aws(endpoint, async |config| {
        aws_sdk_cloudwatch::Client::new(&config)
            .set_alarm_state()
            .alarm_name(name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("xtask release test: errors on the canary")
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn releases_are_gated_and_roll_back_to_the_version_that_served() {
    let dir = scratch("release");
    let bins = release_binaries(&dir);
    let prebuilt = bins.to_str().unwrap();

    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let _down = Down(dir.clone());
    let endpoint = up["endpoint"].as_str().unwrap().to_owned();
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "--json", "--prebuilt", prebuilt];
        args.extend_from_slice(extra);
        xtask(&dir, &args)
    };
    let smoke_passes = || {
        let smoke = xtask(&dir, &["smoke", "--json"]);
        assert!(smoke.status.success(), "smoke failed: {}", stderr(&smoke));
    };
    // v1. A first deploy creates the aliases on the first versions: nothing
    // to release and no earlier version to record.
    let first = stdout_json(&deploy(&[]));
    assert_eq!(first["stacks"]["service"], "applied");
    assert!(first["release"].is_null(), "{first}");
    for f in FUNCTIONS.iter() {
        assert_eq!(alias_record(&endpoint, f), None, "{f}");
    }
    smoke_passes();
    let v1: Vec<String> = FUNCTIONS
        .iter()
        .map(|f| live_version(&endpoint, f))
        .collect();

    // v2 of users, as a canary: half the traffic for 3 s, then all of it.
    rebuild(&bins.join("users"), "xtask release test: users v2");
    let (stop, seen) = watch_weights(&endpoint, "users");
    let canary = stdout_json(&deploy(&["--hotswap", "--shift", "canary:50:3s"]));
    stop.store(true, Ordering::SeqCst);
    let v2_users = live_version(&endpoint, "users");
    assert_ne!(v2_users, v1[1]);
    assert_eq!(canary["release"]["steps"], serde_json::json!([50, 100]));
    assert_eq!(
        canary["release"]["functions"]["users"]["from"],
        v1[1].as_str()
    );
    assert_eq!(
        canary["release"]["functions"]["users"]["to"],
        v2_users.as_str()
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|w| *w == vec![(v2_users.clone(), 0.5)]),
        "the alias never carried 50% for version {v2_users}: {:?}",
        seen.lock().unwrap()
    );
    // The record lives on the alias, not in this machine's build folder.
    let recorded = alias_record(&endpoint, "users").unwrap();
    assert_eq!(recorded["state"], "released");
    assert_eq!(recorded["previous"], v1[1].as_str());
    assert_eq!(recorded["next"], v2_users.as_str());
    assert_eq!(alias_record(&endpoint, "health"), None);
    assert!(!dir.join("local/previous-versions.json").exists());
    smoke_passes();

    // A deploy that moves nothing keeps the record.
    let noop = stdout_json(&deploy(&["--hotswap"]));
    assert!(noop["release"].is_null(), "{noop}");
    assert_eq!(
        alias_record(&endpoint, "users"),
        Some(recorded),
        "a no-op deploy must not overwrite the record"
    );
    // Nothing unfinished: the workflow's recovery step moves nothing.
    let recovery = stdout_json(&xtask(&dir, &["rollback", "--unfinished", "--json"]));
    assert_eq!(recovery["moved"], serde_json::json!([]), "{recovery}");
    assert_eq!(live_version(&endpoint, "users"), v2_users);

    // Manual rollback from a fresh checkout (no build folder but the way to
    // the deployment): users on v1 again, the others untouched; a second
    // rollback, from the deploying machine, is refused (it would roll forward).
    let fresh = fresh_checkout(&dir);
    let rolled = stdout_json(&xtask(&fresh, &["rollback", "--env", "local", "--json"]));
    let _ = std::fs::remove_dir_all(&fresh);
    assert_eq!(rolled["moved"][0]["function"], "users");
    assert_eq!(rolled["moved"][0]["from"], v2_users.as_str());
    assert_eq!(rolled["moved"][0]["to"], v1[1].as_str());
    assert_eq!(rolled["moved"].as_array().unwrap().len(), 1);
    assert_eq!(live_version(&endpoint, "users"), v1[1]);
    assert_eq!(live_version(&endpoint, "health"), v1[0]);
    let second = xtask(&dir, &["rollback"]);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(err.contains("already rolled back"), "{err}");
    assert!(err.contains("cargo xtask deploy"), "{err}");
    smoke_passes();

    // v3: a health build that dies at start. The release goes out (all at
    // once), the smoke gate fails, and every function is back where it was.
    let good_health = dir.join("health.good");
    std::fs::copy(bins.join("health"), &good_health).unwrap();
    std::fs::copy("/bin/false", bins.join("health")).unwrap();
    let bad = deploy(&["--hotswap", "--smoke"]);
    assert!(
        !bad.status.success(),
        "a release failing its smoke run must fail"
    );
    assert!(bad.stdout.is_empty(), "no JSON result on failure");
    let err = stderr(&bad);
    assert!(
        err.contains("failed the smoke run and were rolled back"),
        "{err}"
    );
    assert!(err.contains("smoke-report.json"), "{err}");
    assert!(err.contains("step `health`"), "{err}");
    for (f, v1) in FUNCTIONS.iter().zip(&v1) {
        assert_eq!(
            &live_version(&endpoint, f),
            v1,
            "{f} after the failed release"
        );
    }
    smoke_passes();

    // v4: a canary stopped by an alarm. Both changed functions go back.
    std::fs::copy(&good_health, bins.join("health")).unwrap();
    rebuild(&bins.join("users"), "xtask release test: users v4");
    let outputs = deploy_files::Outputs::read(&dir.join("local/outputs.json")).unwrap();
    let alarm = outputs.release_alarms[0].clone();
    let child = {
        let dir = dir.clone();
        let prebuilt = prebuilt.to_owned();
        std::thread::spawn(move || {
            xtask(
                &dir,
                &[
                    "deploy",
                    "--json",
                    "--prebuilt",
                    &prebuilt,
                    "--hotswap",
                    "--shift",
                    "canary:50:2m",
                ],
            )
        })
    };
    // Fire the alarm once the canary carries traffic.
    wait_for_canary(&endpoint, "users");
    set_alarm(&endpoint, &alarm);
    let stopped = child.join().unwrap();
    assert!(!stopped.status.success(), "an alarm must stop the release");
    let err = stderr(&stopped);
    assert!(err.contains(&alarm), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(live_version(&endpoint, "users"), v1[1]);
    assert_eq!(live_version(&endpoint, "health"), v1[0]);
    // The stopped release left nothing unfinished behind.
    let recovery = stdout_json(&xtask(&dir, &["rollback", "--unfinished", "--json"]));
    assert_eq!(recovery["moved"], serde_json::json!([]), "{recovery}");
}

/// What the deploy workflow does after a deploy step that did not succeed
/// (failed, cancelled, timed out): `cargo xtask rollback --env NAME --unfinished`.
fn workflow_recovery(dir: &std::path::Path) -> serde_json::Value {
    stdout_json(&xtask(
        dir,
        &["rollback", "--env", "local", "--unfinished", "--json"],
    ))
}

#[test]
fn unfinished_releases_are_rolled_back_by_the_workflows_recovery_step() {
    let dir = scratch("release-unfinished");
    let bins = release_binaries(&dir);
    let prebuilt = bins.to_str().unwrap().to_owned();

    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let _down = Down(dir.clone());
    let endpoint = up["endpoint"].as_str().unwrap().to_owned();
    let deploy_args = |shift: &'static str| -> Vec<String> {
        [
            "deploy",
            "--env",
            "local",
            "--json",
            "--prebuilt",
            &prebuilt,
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([
            "--hotswap".to_owned(),
            "--shift".to_owned(),
            shift.to_owned(),
        ])
        .collect()
    };
    let first = stdout_json(&xtask(&dir, &["deploy", "--json", "--prebuilt", &prebuilt]));
    assert_eq!(first["stacks"]["service"], "applied");
    let v1: Vec<String> = FUNCTIONS
        .iter()
        .map(|f| live_version(&endpoint, f))
        .collect();

    // 1. An AWS error while the aliases move: health and users as a canary;
    // every move of users' alias after its first (the 50% step) fails, so
    // health reaches 100%, users is left at 50%, and deploy's own attempt
    // to move back fails on users too.
    rebuild(&bins.join("health"), "xtask release test: health v2");
    rebuild(&bins.join("users"), "xtask release test: users v2");
    let args = deploy_args("canary:50:1s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let failed = xtask_with(&dir, &args, |command| {
        command.env("XTASK_INJECT_ALIAS_ERROR", "users:2");
    });
    assert!(
        !failed.status.success(),
        "an AWS error must fail the deploy"
    );
    let err = stderr(&failed);
    assert!(err.contains("XTASK_INJECT_ALIAS_ERROR"), "{err}");
    assert!(err.contains("rollback --env local --unfinished"), "{err}");
    assert!(weighted(&endpoint, "users"), "users is left mid-canary");
    assert_eq!(
        alias_record(&endpoint, "users").unwrap()["state"],
        "releasing"
    );
    let recovered = workflow_recovery(&dir);
    assert_eq!(recovered["unfinished"], true, "{recovered}");
    for (f, v1) in FUNCTIONS.iter().zip(&v1) {
        assert_eq!(&live_version(&endpoint, f), v1, "{f} after the recovery");
    }
    assert_eq!(
        alias_record(&endpoint, "users").unwrap()["state"],
        "rolled-back"
    );
    // Run again (a re-run of the workflow): nothing left to do.
    assert_eq!(workflow_recovery(&dir)["moved"], serde_json::json!([]));

    // 2. A deploy killed mid-canary (the job cancelled or timed out): the
    // weights stay on the alias until the recovery step, run from a fresh
    // checkout as a later workflow run would.
    rebuild(&bins.join("users"), "xtask release test: users v3");
    let args = deploy_args("canary:50:10m");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .env("XTASK_BUILD_DIR", &dir)
        .env_remove("XTASK_ENV")
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_canary(&endpoint, "users");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        weighted(&endpoint, "users"),
        "the kill left the canary's weights"
    );
    let fresh = fresh_checkout(&dir);
    let recovered = workflow_recovery(&fresh);
    let _ = std::fs::remove_dir_all(&fresh);
    assert_eq!(recovered["unfinished"], true, "{recovered}");
    assert!(
        recovered["moved"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["function"] == "users"),
        "{recovered}"
    );
    for (f, v1) in FUNCTIONS.iter().zip(&v1) {
        assert_eq!(&live_version(&endpoint, f), v1, "{f} after the recovery");
    }

    // 3. A deploy interrupted mid-canary as a cancelled or timed-out job is (SIGINT, and
    // SIGTERM on its own): it moves every alias back itself and exits within the 7.5 s the
    // runner waits before its next signal, leaving no state lock.
    for (n, signal) in [(4, "INT"), (5, "TERM")] {
        rebuild(
            &bins.join("users"),
            &format!("xtask release test: users v{n}"),
        );
        let (status, err, took) =
            interrupt_mid_canary(&dir, &endpoint, &deploy_args("canary:50:10m"), signal);
        assert!(!status.success(), "SIG{signal}: the deploy must fail");
        assert!(err.contains(&format!("stopped by SIG{signal}")), "{err}");
        assert!(err.contains("rolled back"), "{err}");
        assert!(
            took < Duration::from_millis(7500),
            "SIG{signal}: exited after {took:?}, past the runner's window"
        );
        for (f, v1) in FUNCTIONS.iter().zip(&v1) {
            assert_eq!(&live_version(&endpoint, f), v1, "{f} after SIG{signal}");
            assert!(
                !weighted(&endpoint, f),
                "{f} still carries weights after SIG{signal}"
            );
        }
        assert_ne!(
            alias_record(&endpoint, "users").unwrap()["state"],
            "releasing",
            "SIG{signal}: the release was undone, not left unfinished"
        );
        assert_eq!(
            workflow_recovery(&dir)["unfinished"],
            false,
            "SIG{signal}: nothing left for the recovery step"
        );
        assert_eq!(state_locks(&dir), Vec::<String>::new(), "SIG{signal}");
    }

    // 4. Never backwards: a deploy of a commit older than the newest release's is refused.
    // A shallow clone of this checkout with one commit on top gives a real history with a
    // newer commit; the deploys read it through GIT_DIR (xtask asks git nothing else).
    let clone = dir.join("history");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&clone)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let source = format!("file://{}", workspace_root().display());
    let cloned = std::process::Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", &source])
        .arg(&clone)
        .status()
        .unwrap();
    assert!(cloned.success());
    let older = git(&["rev-parse", "HEAD"]);
    git(&["commit", "--quiet", "--allow-empty", "-m", "newer"]);
    let newer = git(&["rev-parse", "HEAD"]);
    let git_dir = clone.join(".git");
    let deploy_at = |n: u32| {
        rebuild(
            &bins.join("users"),
            &format!("xtask release test: users v{n}"),
        );
        let args = deploy_args("all-at-once");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        xtask_with(&dir, &args, |command| {
            command.env("GIT_DIR", &git_dir);
        })
    };
    let released = deploy_at(6);
    assert!(released.status.success(), "{}", stderr(&released));
    assert_eq!(
        alias_record(&endpoint, "users").unwrap()["commit"],
        newer.as_str(),
        "the release records its commit"
    );
    let serving = live_version(&endpoint, "users");
    git(&["checkout", "--quiet", "--detach", &older]);
    let refused = deploy_at(7);
    assert!(!refused.status.success(), "an older commit must not deploy");
    let err = stderr(&refused);
    for needle in [
        format!("refusing to deploy {older}"),
        format!("ancestor of {newer}"),
        "cargo xtask rollback --env local".to_owned(),
    ] {
        assert!(err.contains(&needle), "`{needle}` in:\n{err}");
    }
    assert_eq!(live_version(&endpoint, "users"), serving, "nothing moved");
    // The same commit again deploys (a re-run of the newest run).
    git(&["checkout", "--quiet", &newer]);
    let again = deploy_at(8);
    assert!(again.status.success(), "{}", stderr(&again));
    // The emulator first: `local down` finds it through the build folder.
    drop(_down);
    let _ = std::fs::remove_dir_all(dir);
}

/// Starts `xtask ARGS`, waits until users' canary bakes, sends `kill -SIGNAL`, and returns
/// how xtask exited, its stderr and how long it took to exit after the signal.
fn interrupt_mid_canary(
    dir: &std::path::Path,
    endpoint: &str,
    args: &[String],
    signal: &str,
) -> (std::process::ExitStatus, String, Duration) {
    let log = dir.join(format!("interrupted-{signal}.log"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("XTASK_BUILD_DIR", dir)
        .env_remove("XTASK_ENV")
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_canary(endpoint, "users");
    let sent = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    let err = std::fs::read_to_string(&log).unwrap();
    eprintln!(
        "--- xtask {} (SIG{signal} after the canary began) -> {status}\n{err}",
        args.join(" ")
    );
    (status, err, took)
}

/// Terraform state lock files under `dir` (the local backend writes `.<state>.lock.info`
/// beside the state while it holds the lock).
fn state_locks(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".lock.info") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn rollback_without_a_previous_deploy_says_so() {
    let dir = scratch("rollback-nothing");
    let out = xtask(&dir, &["rollback", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no JSON result on failure");
    let err = stderr(&out);
    assert!(err.contains("nothing to roll back to"), "{err}");
    assert!(err.contains("emulator is not running"), "{err}");
    // The workflow's recovery step has nothing to do there, and says so.
    let recovery = xtask(&dir, &["rollback", "--unfinished", "--json"]);
    assert!(recovery.status.success(), "{}", stderr(&recovery));
    let _ = std::fs::remove_dir_all(dir);
}
