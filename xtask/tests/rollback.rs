//! `rollback` against moto: deploy v1, hotswap a v2 of one function, roll
//! back to v1, and a second rollback is refused. Stand-in binaries keep it
//! fast; only the first deploy runs Terraform.

mod common;

use common::*;

#[test]
fn rollback_returns_live_to_the_version_before_the_last_deploy_once() {
    let dir = scratch("rollback");
    let bins = small_binaries(&dir);
    let prebuilt = bins.to_str().unwrap();

    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let _down = Down(dir.clone());
    let endpoint = up["endpoint"].as_str().unwrap().to_owned();
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "--json", "--no-serve", "--prebuilt", prebuilt];
        args.extend_from_slice(extra);
        stdout_json(&xtask(&dir, &args))
    };
    let record = dir.join("local/previous-versions.json");

    // v1. A first deploy has no earlier version to record.
    assert_eq!(deploy(&[])["stacks"]["service"], "applied");
    assert!(!record.exists());
    let v1_users = live_version(&endpoint, "users");
    let v1_health = live_version(&endpoint, "health");

    // v2 of users, through the Lambda API.
    {
        use std::io::Write;
        let mut users = std::fs::OpenOptions::new()
            .append(true)
            .open(bins.join("users"))
            .unwrap();
        users.write_all(b"\0xtask rollback test: v2\0").unwrap();
    }
    assert_eq!(deploy(&["--hotswap"])["stacks"]["service"], "hotswapped");
    let v2_users = live_version(&endpoint, "users");
    assert_ne!(v2_users, v1_users);
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(recorded, serde_json::json!({ "users": v1_users }));

    // A deploy that moves nothing keeps the record.
    deploy(&["--hotswap"]);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(
        again, recorded,
        "a no-op deploy must not overwrite the record"
    );

    // Roll back: users' alias on v1 again, health untouched.
    let rolled = stdout_json(&xtask(&dir, &["rollback", "--json"]));
    assert_eq!(rolled["moved"][0]["function"], "users");
    assert_eq!(rolled["moved"][0]["from"], v2_users.as_str());
    assert_eq!(rolled["moved"][0]["to"], v1_users.as_str());
    assert_eq!(rolled["moved"].as_array().unwrap().len(), 1);
    assert_eq!(live_version(&endpoint, "users"), v1_users);
    assert_eq!(live_version(&endpoint, "health"), v1_health);

    // A second rollback is refused: it would roll forward.
    let second = xtask(&dir, &["rollback"]);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(err.contains("already rolled back"), "{err}");
    assert!(err.contains("cargo xtask deploy"), "{err}");
    assert_eq!(live_version(&endpoint, "users"), v1_users);
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
