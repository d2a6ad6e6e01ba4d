//! Rules over the workspace's manifests, read with `toml` (after rust-analyzer's
//! `check_cargo_toml`): what a crate may depend on is a fact of the architecture, so it is
//! checked like one.
//!
//! - Every package inherits `edition`, `rust-version`, `license` and `publish` from the
//!   workspace, and every dependency is a `workspace = true` one: one version of each crate,
//!   chosen in the root manifest.
//! - A crate under `functions/` never depends on the tools (`infra`, `xtask`, `smoke`,
//!   `local-api`, `emulator`, `deploy-files`): a function binary holds the function, not the machinery that
//!   deploys or serves it. The one exception is a test-only feature's optional dependency.
//! - A function crate turns on `service-common`'s optional parts (`passwords`, the argon2
//!   hasher; `queues`, the SQS client) exactly when its source uses them, so a binary contains
//!   only what it uses; one that sends to queues declares them (`sends`), which is what gives
//!   its role the right to and the variables with their URLs.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

/// The crates that deploy, serve or prove the service.
const TOOLS: [&str; 6] = [
    "infra",
    "xtask",
    "smoke",
    "local-api",
    "emulator",
    "deploy-files",
];

/// `service-common`'s features that only tests turn on, with why a tool may sit behind them.
const TEST_ONLY_FEATURES: &[(&str, &str)] = &[(
    "test-tables",
    "the function crates' test support (tables on the emulator, event builders), turned on \
     only by dev-dependencies, so never in a Lambda build",
)];

/// `service-common`'s optional parts a function turns on, with the modules that are the part
/// (using any of them is using the part).
const OPTIONAL_PARTS: &[(&str, &[&str])] = &[
    ("passwords", &["service_common::password"]),
    // Sending to a queue: a function that does declares `sends` in its manifest.
    ("queues", &["service_common::queues"]),
    // The pepper ring is read through the secrets reader: `passwords` turns `secrets` on too,
    // and a function that names the ring says so in its manifest.
    (
        "secrets",
        &["service_common::secrets", "service_common::peppers"],
    ),
];

/// Dependencies that are not `workspace = true`, by member and name, with why.
const OWN_DEPENDENCIES: &[(&str, &str, &str)] = &[
    (
        "functions/common",
        "service-common",
        "a dev-dependency on itself turns its own features on for its tests",
    ),
    (
        "functions/users",
        "sessions",
        "its end-to-end tests log in through the real sessions handler; a function crate is \
         no library of the workspace, so the root manifest does not offer it",
    ),
    (
        "functions/users",
        "health",
        "its latency benchmark covers every route; as for `sessions`",
    ),
    (
        "functions/users",
        "sweeper",
        "its tests run the real queue worker on the sweeps a deletion and a password change \
         enqueue; as for `sessions`",
    ),
    (
        "functions/sessions",
        "sweeper",
        "its log-out-everywhere test runs the real queue worker on the sweep it enqueued; as \
         for `sessions` above",
    ),
    (
        "functions/rotation",
        "users",
        "its rotation test registers users through the real users handler while the pepper \
         ring rotates; as for `sessions`",
    ),
    (
        "functions/rotation",
        "sessions",
        "its rotation test logs in through the real sessions handler between every two steps; \
         as for `sessions` above",
    ),
];

const DEPENDENCY_TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

#[test]
fn manifests_follow_the_workspace_rules() {
    let root = deploy_files::workspace_root();
    let problems = violations(&root, &members(&root));
    assert!(
        problems.is_empty(),
        "the manifests break the workspace's rules:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn each_manifest_rule_catches_what_it_names() {
    let manifest = |text: &str| -> Table { text.parse().unwrap() };
    let members = BTreeMap::from([
        (
            "functions/items".to_owned(),
            manifest(
                "[package]\nname = \"items\"\nedition = \"2024\"\nrust-version.workspace = true\n\
                 license.workspace = true\npublish.workspace = true\n\
                 [package.metadata.function]\nmemory_mb = 128\n\
                 [dependencies]\ninfra.workspace = true\nserde = \"1\"\n\
                 service-common = { workspace = true, features = [\"passwords\", \"test-tables\", \"queues\"] }\n",
            ),
        ),
        (
            "functions/common".to_owned(),
            manifest(
                "[package]\nname = \"service-common\"\nedition.workspace = true\n\
                 rust-version.workspace = true\nlicense.workspace = true\npublish.workspace = true\n\
                 [dependencies]\nemulator = { workspace = true, optional = true }\n\
                 smoke = { workspace = true, optional = true }\n\
                 [features]\ntest-tables = [\"dep:emulator\"]\nextra = [\"dep:smoke\"]\n",
            ),
        ),
    ]);
    let dir = std::env::temp_dir().join(format!("xtask-tidy-cargo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("functions/items/src")).unwrap();
    std::fs::write(dir.join("functions/items/src/lib.rs"), "//! items\n").unwrap();
    let problems = violations(&dir, &members);
    std::fs::remove_dir_all(&dir).unwrap();
    let expect = [
        "functions/items: `edition` is not inherited from the workspace",
        "functions/items: `serde` in [dependencies] is not `workspace = true`",
        "functions/items: depends on `infra`",
        "functions/items: turns on `service-common`'s test-only feature `test-tables`",
        "functions/items: turns on `passwords` but its source never uses `service_common::password`",
        "functions/items: turns on `queues` but its source never uses `service_common::queues`",
        "functions/items: turns on `queues` but declares no `sends`",
        "functions/common: depends on `smoke`",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected `{expected}` among {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

/// Every member's manifest, by its directory relative to the root.
fn members(root: &Path) -> BTreeMap<String, Table> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("the root Cargo.toml");
    let manifest: Table = text.parse().expect("the root Cargo.toml is TOML");
    manifest["workspace"]["members"]
        .as_array()
        .expect("the root Cargo.toml lists members")
        .iter()
        .map(|member| {
            let member = member.as_str().expect("a member is a path").to_owned();
            let path = root.join(&member).join("Cargo.toml");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let table = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (member, table)
        })
        .collect()
}

/// What breaks the rules, one line each.
fn violations(root: &Path, members: &BTreeMap<String, Table>) -> Vec<String> {
    let mut problems = Vec::new();
    for (member, manifest) in members {
        let package = manifest["package"]
            .as_table()
            .expect("a member is a package");
        for field in ["edition", "rust-version", "license", "publish"] {
            if !inherited(package.get(field)) {
                problems.push(format!(
                    "{member}: `{field}` is not inherited from the workspace ({field}.workspace = true)"
                ));
            }
        }
        let function_side = member.starts_with("functions/");
        for table in DEPENDENCY_TABLES {
            for (name, spec) in manifest
                .get(table)
                .and_then(Value::as_table)
                .into_iter()
                .flatten()
            {
                let own = OWN_DEPENDENCIES
                    .iter()
                    .any(|(m, n, _)| m == member && n == name);
                if !inherited(Some(spec)) && !own {
                    problems.push(format!(
                        "{member}: `{name}` in [{table}] is not `workspace = true` (versions are chosen in the root Cargo.toml)"
                    ));
                }
                if function_side
                    && TOOLS.contains(&name.as_str())
                    && !behind_test_feature(manifest, table, name, spec)
                {
                    problems.push(format!(
                        "{member}: depends on `{name}` ([{table}]): the functions never depend on the tools"
                    ));
                }
                if function_side && table != "dev-dependencies" && name == "service-common" {
                    for feature in features(spec) {
                        if TEST_ONLY_FEATURES.iter().any(|(f, _)| *f == feature) {
                            problems.push(format!(
                                "{member}: turns on `service-common`'s test-only feature `{feature}` in [{table}]"
                            ));
                        }
                    }
                }
            }
        }
        if manifest["package"]
            .get("metadata")
            .and_then(|m| m.get("function"))
            .is_some()
        {
            let enabled: Vec<String> = manifest
                .get("dependencies")
                .and_then(|d| d.get("service-common"))
                .map(features)
                .unwrap_or_default();
            let source = source_text(&root.join(member).join("src"));
            for (feature, modules) in OPTIONAL_PARTS {
                let on = enabled.iter().any(|f| f == feature);
                let used = modules.iter().any(|module| source.contains(module));
                let module = modules.join("` or `");
                if on && !used {
                    problems.push(format!(
                        "{member}: turns on `{feature}` but its source never uses `{module}`"
                    ));
                }
                if used && !on {
                    problems.push(format!(
                        "{member}: uses `{module}` without turning on `{feature}`"
                    ));
                }
            }
            let sends = manifest["package"]["metadata"]["function"]
                .get("sends")
                .and_then(Value::as_array)
                .is_some_and(|queues| !queues.is_empty());
            if enabled.iter().any(|f| f == "queues") && !sends {
                problems.push(format!(
                    "{member}: turns on `queues` but declares no `sends` (its role may send nowhere)"
                ));
            }
        }
    }
    problems
}

/// `x.workspace = true` or `x = { workspace = true, ... }`.
fn inherited(value: Option<&Value>) -> bool {
    value
        .and_then(|v| v.get("workspace"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn features(spec: &Value) -> Vec<String> {
    spec.get("features")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

/// An optional [dependencies] entry that only test-only features turn on.
fn behind_test_feature(manifest: &Table, table: &str, name: &str, spec: &Value) -> bool {
    let optional = spec
        .get("optional")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if table != "dependencies" || !optional {
        return false;
    }
    let dep = format!("dep:{name}");
    manifest
        .get("features")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
        .filter(|(_, turns_on)| {
            turns_on
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i.as_str() == Some(&dep)))
        })
        .all(|(feature, _)| TEST_ONLY_FEATURES.iter().any(|(f, _)| f == feature))
}

/// All `.rs` text under `dir`.
fn source_text(dir: &Path) -> String {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}
