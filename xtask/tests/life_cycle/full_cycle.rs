//! The whole life cycle on `local`, against moto and real terraform:
//! deploy, outputs (the API key masked, every file holding it 0600), a
//! second deploy that skips, a one-function code change that uploads and
//! updates only that function, after which a refreshing plan is empty (no drift, the stack
//! idempotent), destroy with nothing left in the state. `infra/tests/moto_apply.rs` applies the
//! variant with a VPC the same way.
//!
//! Uses the release binaries of the functions (see `common::release_binaries`).

use crate::common::*;

/// The CodeSha256 of the version `live` serves.
fn code_sha(endpoint: &str, function: &str) -> String {
    let version = live_version(endpoint, function);
    with_lambda(endpoint, async |lambda| {
        let f = lambda
            .get_function()
            .function_name(format!("prod-service-{function}"))
            .qualifier(version)
            .send()
            .await
            .unwrap();
        f.configuration().unwrap().code_sha256().unwrap().to_owned()
    })
}

/// A file's permission bits.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// Every file of the build folder that holds a value (the state files, the outputs) or the
/// output of a process that handles one (the logs) is 0600, and no file holds the value of
/// the generated pepper ring (read here through `secret get`, which is the one way to it).
fn private_files_and_no_secret_value(dir: &std::path::Path) {
    let got = xtask(
        dir,
        &["secret", "get", "password-peppers", "--show-sensitive"],
    );
    assert!(got.status.success(), "{}", stderr(&got));
    let value = String::from_utf8(got.stdout).unwrap().trim().to_owned();
    assert!(value.contains("\"current\":\"k1\""), "a generated key ring");
    let mut private = Vec::new();
    for entry in walkdir::WalkDir::new(dir.join("local")) {
        let entry = entry.unwrap();
        let path = entry.path();
        // Terraform's provider installs are links into the plugin cache: not files here.
        if !entry.file_type().is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy();
        // (`sensitive-outputs.json` holds the names of the sensitive outputs, not values.)
        let holds_values =
            name.contains(".tfstate") || name == "outputs.json" || name.ends_with(".log");
        if holds_values {
            assert_eq!(mode(path), 0o600, "{}", path.display());
            private.push(name.into_owned());
        }
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "the pepper ring's value is in {}",
            path.display()
        );
    }
    assert!(
        private.iter().any(|n| n.starts_with("terraform-")),
        "the terraform logs were checked: {private:?}"
    );
}

#[test]
fn deploy_noop_change_one_function_destroy() {
    let dir = scratch("full-cycle");
    let bins = release_binaries(&dir);
    let prebuilt = bins.to_str().unwrap();

    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let _down = Down(dir.clone());
    let endpoint = up["endpoint"].as_str().unwrap().to_owned();

    // 1. First deploy: both stacks applied, every package uploaded.
    let first = stdout_json(&xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", prebuilt],
    ));
    assert_eq!(first["stacks"]["bootstrap"], "applied");
    assert_eq!(first["stacks"]["service"], "applied");
    shared_providers_stopped(&dir);
    let mut every_function: Vec<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    every_function.sort();
    assert_eq!(strings(&first["uploaded"]), every_function);
    // The one declared secret is generated: not named as missing on `local`, and given a
    // value right after the apply that created it.
    assert_eq!(
        strings(&first["secrets_without_value"]),
        Vec::<String>::new()
    );
    assert_eq!(strings(&first["secrets_generated"]), ["password-peppers"]);

    // 2. Outputs, from the file smoke and the local API server read.
    let outputs = stdout_json(&xtask(&dir, &["outputs", "--json"]));
    let on_disk = deploy_files::Outputs::read(&dir.join("local/outputs.json")).unwrap();
    assert!(
        outputs
            .as_object()
            .unwrap()
            .keys()
            .eq(on_disk.to_map().keys()),
        "the listing is the file's outputs: {outputs}"
    );
    for function in catalog::NAMES.iter() {
        assert!(on_disk.functions.contains_key(*function), "{function}");
    }
    assert_eq!(
        outputs["api_key_value"],
        "<sensitive: add --show-sensitive>"
    );
    assert_eq!(outputs["api_url"], on_disk.api_url);
    // The API key: Terraform marks it sensitive, and every file holding it is private.
    let key = on_disk.api_key_value.as_str();
    assert!(!key.is_empty());
    let sensitive = std::fs::read_to_string(dir.join("local/sensitive-outputs.json")).unwrap();
    assert!(sensitive.contains("\"api_key_value\""), "{sensitive}");
    for file in [
        "local/outputs.json",
        "local/service.tfstate",
        "local/bootstrap.tfstate",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    private_files_and_no_secret_value(&dir);

    // The pepper ring rotates on `local`: `secret rotate` runs Secrets Manager's four steps
    // through the real rotation binary and the emulator's versions. After each rotation the new
    // version is AWSCURRENT, the one before AWSPREVIOUS, none is pending; after two, the ring
    // holds three keys, the newest current (the users' hashes move to it at their next log-in).
    let mut previous: Option<String> = None;
    for round in 1..=2 {
        let rotated = stdout_json(&xtask(
            &dir,
            &["secret", "rotate", "password-peppers", "--json"],
        ));
        let version = rotated["version_id"].as_str().unwrap().to_owned();
        let stages = |id: &str| -> Vec<String> {
            rotated["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["id"] == id)
                .map(|v| strings(&v["stages"]))
                .unwrap_or_default()
        };
        assert_eq!(stages(&version), ["AWSCURRENT"], "round {round}: {rotated}");
        if let Some(before) = &previous {
            assert_eq!(stages(before), ["AWSPREVIOUS"], "round {round}: {rotated}");
        }
        assert!(
            !rotated.to_string().contains("AWSPENDING"),
            "round {round}: no version left pending: {rotated}"
        );
        previous = Some(version);
    }
    let ring = xtask(
        &dir,
        &["secret", "get", "password-peppers", "--show-sensitive"],
    );
    let ring = String::from_utf8(ring.stdout).unwrap();
    assert!(
        ring.contains("\"current\":\"k3\"") && ring.contains("\"k1\"") && ring.contains("\"k2\""),
        "after two rotations the ring keeps k1 and k2 and k3 is current"
    );
    let masked = xtask(&dir, &["outputs", "api_key_value"]);
    assert!(
        !masked.status.success(),
        "a sensitive output by name needs the flag"
    );
    assert!(
        masked.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&masked.stdout)
    );
    assert!(
        stderr(&masked).contains("--show-sensitive"),
        "{}",
        stderr(&masked)
    );
    let shown = xtask(&dir, &["outputs", "api_key_value", "--show-sensitive"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), key);
    let listing = xtask(&dir, &["outputs"]);
    assert!(!String::from_utf8_lossy(&listing.stdout).contains(key));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap())
            .unwrap();
    for f in FUNCTIONS.iter() {
        assert_eq!(
            code_sha(&endpoint, f),
            manifest["functions"][f]["source_code_hash"]
                .as_str()
                .unwrap()
        );
    }

    // 3. Nothing changed: terraform is skipped and nothing is uploaded.
    let started = std::time::Instant::now();
    let second = stdout_json(&xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", prebuilt],
    ));
    eprintln!("no-op deploy took {:?}", started.elapsed());
    assert_eq!(second["stacks"]["bootstrap"], "unchanged");
    assert_eq!(second["stacks"]["service"], "unchanged");
    assert!(strings(&second["uploaded"]).is_empty());

    // 4. One function's code changes: only its package is uploaded and only
    //    its code is updated.
    let before: Vec<String> = FUNCTIONS.iter().map(|f| code_sha(&endpoint, f)).collect();
    rebuild(
        &bins.join("users"),
        "xtask full-cycle test: a new build of users",
    );
    let third = stdout_json(&xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", prebuilt],
    ));
    assert_eq!(third["stacks"]["service"], "applied");
    assert_eq!(strings(&third["uploaded"]), ["users"]);
    assert_eq!(strings(&third["changed_functions"]), ["users"]);
    let after: Vec<String> = FUNCTIONS.iter().map(|f| code_sha(&endpoint, f)).collect();
    assert_eq!(after[0], before[0], "health's code must not change");
    assert_ne!(after[1], before[1], "users' code must change");
    assert_eq!(after[2], before[2], "sessions' code must not change");
    // The code-only apply skipped Terraform's refresh; a plan that refreshes every resource
    // finds nothing to change (no drift), which also proves the stack idempotent on moto.
    let plan = xtask(&dir, &["plan", "--prebuilt", prebuilt]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        stderr(&plan).contains("No changes."),
        "the plan after a code-only deploy is empty:\n{}",
        stderr(&plan)
    );

    // 4b. The same with --hotswap: no Terraform, same end state; the next
    //     plain deploy reconciles Terraform's state.
    rebuild(&bins.join("users"), "another build of users");
    let hot = stdout_json(&xtask(
        &dir,
        &[
            "deploy",
            "--json",
            "--no-serve",
            "--hotswap",
            "--prebuilt",
            prebuilt,
        ],
    ));
    assert_eq!(hot["stacks"]["service"], "hotswapped");
    assert_eq!(strings(&hot["uploaded"]), ["users"]);
    let hot_manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dist/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        code_sha(&endpoint, "users"),
        hot_manifest["functions"]["users"]["source_code_hash"]
            .as_str()
            .unwrap()
    );
    assert_eq!(code_sha(&endpoint, "health"), before[0]);
    let reconcile = stdout_json(&xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", prebuilt],
    ));
    assert_eq!(
        reconcile["stacks"]["service"], "applied",
        "a plain deploy after a hotswap runs terraform"
    );
    assert!(strings(&reconcile["uploaded"]).is_empty());

    // 5. Destroy: the stack is gone and so are the outputs.
    let destroyed = stdout_json(&xtask(&dir, &["destroy", "--json"]));
    assert_eq!(destroyed["destroyed"][0], "service");
    assert!(!dir.join("local/outputs.json").exists());
    assert!(!dir.join("local/sensitive-outputs.json").exists());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("local/service.tfstate")).unwrap())
            .unwrap();
    assert_eq!(
        state["resources"].as_array().map(Vec::len),
        Some(0),
        "destroy leaves nothing in the state: {state}"
    );
    let outputs = xtask(&dir, &["outputs"]);
    assert!(!outputs.status.success());
    assert!(
        stderr(&outputs).contains("cargo xtask deploy"),
        "{}",
        stderr(&outputs)
    );
}
