//! checkov (`--framework terraform_json`) on the synthesized stacks: `prod` passes every check
//! but the ones pending a named piece of work (`infra::checks::PENDING`), with none skipped;
//! `dev` fails only those and the checks listed in `infra::checks::DEV_COST_EXCEPTIONS`.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// Drops the `moved` blocks from every stack file: checkov 3.3.30's `terraform_json` parser
/// takes every top-level block for a dict of blocks and fails on them ("this method receives
/// only dicts", one parsing error, nothing checked). They only tell Terraform that an address
/// was renamed (the first API client's key, `infra::constructs::api`); `terraform validate` and
/// the applies to moto read them.
fn without_moved_blocks(stacks: &std::path::Path) {
    for entry in std::fs::read_dir(stacks).unwrap() {
        let file = entry.unwrap().path().join("cdk.tf.json");
        let mut stack: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if stack.as_object_mut().unwrap().remove("moved").is_some() {
            std::fs::write(&file, serde_json::to_string_pretty(&stack).unwrap()).unwrap();
        }
    }
}

/// Runs checkov on one environment; returns (passed, failed check ids, skipped count).
fn scan(env: &str) -> (u64, Vec<(String, String)>, u64) {
    let bin = emulator::ensure_python_packages(&[emulator::CHECKOV_REQUIREMENT])
        .expect("install checkov into build/venv")
        .join("checkov");
    let dir = common::scratch(&format!("checkov-{env}"));
    let config = infra::load_config(env).unwrap();
    infra::synth_with(&config, &common::fixed_options(env), &dir.join("cdktf.out")).unwrap();
    without_moved_blocks(&dir.join("cdktf.out/stacks"));
    let out = Command::new(&bin)
        .args([
            "-d",
            "cdktf.out/stacks",
            "--framework",
            "terraform_json",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ])
        .current_dir(&dir)
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
        .output()
        .expect("run checkov");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "checkov output is not JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = if report.is_array() {
        report.as_array().unwrap().clone()
    } else {
        vec![report]
    };
    let (mut passed, mut failed, mut skipped, mut parse_errors) = (0, Vec::new(), 0, 0);
    for r in &reports {
        let summary = &r["summary"];
        passed += summary["passed"].as_u64().unwrap_or(0);
        skipped += summary["skipped"].as_u64().unwrap_or(0);
        parse_errors += summary["parsing_errors"].as_u64().unwrap_or(0);
        for f in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.push((
                f["check_id"].as_str().unwrap().to_owned(),
                f["resource"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    assert_eq!(parse_errors, 0, "checkov could not parse the {env} stacks");
    assert!(
        passed > 100,
        "checkov passed only {passed} checks on {env}: did it read the stacks?"
    );
    (passed, failed, skipped)
}

#[test]
fn prod_passes_every_check() {
    let (passed, failed, skipped) = scan("prod");
    println!(
        "prod: {passed} passed, {} failed, {skipped} skipped",
        failed.len()
    );
    assert_only_listed_failures("prod", &failed, infra::checks::PENDING);
    assert_eq!(skipped, 0);
}

#[test]
fn dev_fails_only_the_listed_cost_exceptions() {
    let (passed, failed, skipped) = scan("dev");
    println!(
        "dev: {passed} passed, {} failed, {skipped} skipped",
        failed.len()
    );
    let listed: Vec<(&str, &str)> = infra::checks::DEV_COST_EXCEPTIONS
        .iter()
        .chain(infra::checks::PENDING)
        .copied()
        .collect();
    assert_only_listed_failures("dev", &failed, &listed);
    assert_eq!(skipped, 0);
}

/// `env` fails exactly the checks `listed` (`infra::checks`): nothing else, and each of them
/// (one that passes again leaves the list).
fn assert_only_listed_failures(env: &str, failed: &[(String, String)], listed: &[(&str, &str)]) {
    let allowed: BTreeSet<&str> = listed.iter().map(|(id, _)| *id).collect();
    let unexpected: Vec<_> = failed
        .iter()
        .filter(|(id, _)| !allowed.contains(id.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{env} fails checks not listed in infra::checks: {unexpected:?}"
    );
    let failing: BTreeSet<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    let stale: Vec<_> = allowed.difference(&failing).collect();
    assert!(
        stale.is_empty(),
        "infra::checks lists checks {env} no longer fails (remove them): {stale:?}"
    );
}
