//! Releases against moto, the real terraform and the real `bootstrap`
//! binaries served by the local API server: a canary that completes, a
//! manual rollback, a release whose smoke run fails and is rolled back
//! automatically, and a canary stopped by an alarm. Only the first deploy
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
    let record = dir.join("local/previous-versions.json");

    // v1. A first deploy creates the aliases on the first versions: nothing
    // to release and no earlier version to record.
    let first = stdout_json(&deploy(&[]));
    assert_eq!(first["stacks"]["service"], "applied");
    assert!(first["release"].is_null(), "{first}");
    assert!(!record.exists());
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
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(recorded, serde_json::json!({ "users": v1[1] }));
    smoke_passes();

    // A deploy that moves nothing keeps the record.
    let noop = stdout_json(&deploy(&["--hotswap"]));
    assert!(noop["release"].is_null(), "{noop}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(
        again, recorded,
        "a no-op deploy must not overwrite the record"
    );

    // Manual rollback: users on v1 again, the others untouched; a second
    // rollback is refused (it would roll forward).
    let rolled = stdout_json(&xtask(&dir, &["rollback", "--json"]));
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
    let outputs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("local/outputs.json")).unwrap())
            .unwrap();
    let alarm = outputs["release_alarms"][0].as_str().unwrap().to_owned();
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
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let weighted = with_lambda(&endpoint, async |lambda| {
            lambda
                .get_alias()
                .function_name("prod-service-users")
                .name("live")
                .send()
                .await
                .unwrap()
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .is_some_and(|w| !w.is_empty())
        });
        if weighted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    set_alarm(&endpoint, &alarm);
    let stopped = child.join().unwrap();
    assert!(!stopped.status.success(), "an alarm must stop the release");
    let err = stderr(&stopped);
    assert!(err.contains(&alarm), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(live_version(&endpoint, "users"), v1[1]);
    assert_eq!(live_version(&endpoint, "health"), v1[0]);
}

#[test]
fn rollback_without_a_previous_deploy_says_so() {
    let dir = scratch("rollback-nothing");
    let out = xtask(&dir, &["rollback", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no JSON result on failure");
    let err = stderr(&out);
    assert!(err.contains("nothing to roll back to"), "{err}");
    assert!(err.contains("previous-versions.json"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
