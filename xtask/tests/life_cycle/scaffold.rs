//! `cargo xtask new` end to end, in a scratch copy of the workspace: scaffold a fourth
//! function, deploy it to `local`, call its route through the local API server, read its logs,
//! invoke it, remove it and deploy again; no edit by hand anywhere. Beside it, a queue worker
//! and a scheduled job are scaffolded in another copy and pass their own tests.
//!
//! The copy builds in its own target dir, seeded with a copy of this one's compiled libraries
//! and the two programs its commands run, xtask and the local API server (copies, not hard
//! links: rustc may rewrite a file in place). Cargo hashes a path package by its path relative
//! to the workspace root and judges its freshness by comparing modification times, so the copy
//! keeps each file's time: the unchanged crates then stay fresh, and what compiles is the new
//! crate alone (the catalog is read at run time, so no tool is rebuilt for a new function). A
//! copy stamped with the time of copying rebuilt every workspace crate, in both profiles,
//! three times (most of this scenario's 800 s in CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::common::*;

/// The tracked files of this workspace, copied under `to` with their modification times.
fn copy_workspace(to: &Path) {
    let root = workspace_root();
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = std::str::from_utf8(file).unwrap();
        let from = root.join(file);
        if !from.is_file() {
            continue; // deleted in the work tree
        }
        let target = to.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&from, &target).unwrap();
        let modified = std::fs::metadata(&from).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

/// The debug build's parts of a target dir.
const DEBUG: [&str; 3] = ["debug/deps", "debug/build", "debug/.fingerprint"];

/// A scratch copy of the workspace under a new [`scratch`] folder: `(folder, workspace,
/// target)`, the target seeded with `parts` of this build's target dir.
fn scratch_workspace(name: &str, parts: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let workspace = dir.join("workspace");
    copy_workspace(&workspace);
    // The emulator's Python venv is this workspace's (a venv cannot be copied; making one and
    // installing moto into it again costs half a minute).
    let venv = emulator::ensure_python_packages(&[emulator::MOTO_REQUIREMENT])
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::create_dir_all(workspace.join("build")).unwrap();
    std::os::unix::fs::symlink(venv, workspace.join("build").join("venv")).unwrap();
    let target = seeded_target(&dir, parts);
    (dir, workspace, target)
}

/// A target dir for the copy, seeded with `parts` of this build's (its dependencies, and the
/// release build for a scenario that deploys).
fn seeded_target(dir: &Path, parts: &[&str]) -> PathBuf {
    let ours = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = dir.join("target");
    std::fs::create_dir_all(target.join("debug")).unwrap();
    for part in parts {
        if *part == "debug/deps" {
            copy_libraries(&ours.join(part), &target.join(part));
        } else if ours.join(part).exists() {
            let status = Command::new("cp")
                .arg("-a")
                .arg(ours.join(part))
                .arg(target.join(part).parent().unwrap())
                .status()
                .unwrap();
            assert!(status.success(), "copying {part}");
        }
    }
    target
}

/// The programs the copy's commands run (`cargo xtask`, and the local API server a deploy
/// starts): copied with the libraries, as cargo would compile a missing one again.
const PROGRAMS: [&str; 2] = ["xtask", "local-api"];

/// The files of a debug `deps` dir the copy compiles against (libraries, proc macros, dep-info),
/// with their modification times, and the executables of [`PROGRAMS`]; not the other
/// executables, the test binaries of every crate, over half its bytes and none of them run in
/// the copy.
fn copy_libraries(from: &Path, to: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Cargo hard-links each program to `debug/<name>` from its `deps/<name>-<hash>`.
    let programs: Vec<u64> = PROGRAMS
        .iter()
        .filter_map(|p| std::fs::metadata(from.parent().unwrap().join(p)).ok())
        .map(|m| m.ino())
        .collect();
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        let path = entry.path();
        let executable = metadata.permissions().mode() & 0o100 != 0
            && path.extension().is_none_or(|extension| extension != "so");
        if !metadata.is_file() || executable && !programs.contains(&metadata.ino()) {
            continue;
        }
        let copy = to.join(entry.file_name());
        std::fs::copy(&path, &copy).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_modified(metadata.modified().unwrap())
            .unwrap();
    }
}

#[test]
fn a_new_function_is_served_invoked_logged_and_removed() {
    let started = Instant::now();
    let mut parts = DEBUG.to_vec();
    parts.push("release");
    let (dir, workspace, target) = scratch_workspace("scaffold", &parts);
    let build = dir.join("build");
    let down = Down(build.clone());
    let cargo_xtask = |args: &[&str]| -> Output {
        let step = Instant::now();
        let output = emulator::cargo()
            .arg("xtask")
            .args(args)
            .current_dir(&workspace)
            .env("CARGO_TARGET_DIR", &target)
            .env("XTASK_BUILD_DIR", &build)
            .env_remove("XTASK_ENV")
            // The copy's binaries start as this workspace's (fresh, by the kept times), with
            // its path compiled in: this says which workspace they work in.
            .env("XTASK_WORKSPACE_ROOT", &workspace)
            .output()
            .unwrap();
        eprintln!(
            "--- cargo xtask {} -> {} in {:.0?}\n{}",
            args.join(" "),
            output.status,
            step.elapsed(),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };

    // Every kind of declaration `new` writes, in one crate, so this one build compiles them
    // all: a plain route, path parameters (one and two), a body route, and read, write and
    // index grants. Warnings count as failures: a scaffold must start clean.
    let new = cargo_xtask(&[
        "new",
        "items",
        "--route",
        "GET /items",
        "--route",
        "GET /items/{id}",
        "--route",
        "DELETE /items/{id}/parts/{part_id}",
        "--route",
        "POST /items",
        "--table",
        "users:read",
        "--table",
        "users:write:by-kind",
        "--table",
        "sessions:read:by-user",
        "--json",
    ]);
    // A diagnostic points into the crate (` --> functions/items/...`); the build succeeded,
    // so any such line is a warning.
    assert!(
        !stderr(&new).contains("functions/items/src"),
        "the scaffold compiles without warnings:\n{}",
        stderr(&new)
    );
    assert!(
        !workspace_root().join("functions/items").exists(),
        "the scaffold wrote into the copy, never into this workspace"
    );
    let created = stdout_json(&new);
    assert!(
        created["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "functions/items/openapi.json"),
        "{created}"
    );
    let document = std::fs::read_to_string(workspace.join("functions/openapi.json")).unwrap();
    assert!(
        document.contains("itemsGetItems"),
        "the API document has the operation"
    );
    let refused = cargo_xtask(&["new", "items", "--route", "GET /things"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("exists already"));
    // The catalog is read at run time: a new function compiles no tool again.
    let nothing_compiled = |output: &Output| {
        assert!(
            !stderr(output).contains("Compiling "),
            "a tool was compiled again:\n{}",
            stderr(output)
        );
    };
    nothing_compiled(&refused);

    // The local API server's URL: each deploy restarts it, maybe on another port.
    let deploy = || {
        let deployed = stdout_json(&cargo_xtask(&["deploy", "--json"]));
        deployed["local_api_url"].as_str().unwrap().to_owned()
    };
    let url = deploy();
    let release_build =
        std::fs::read_to_string(build.join("local/logs/cargo-build.log")).unwrap_or_default();
    assert!(
        !release_build.contains("functions/items/src"),
        "the scaffold's release build has no warnings:\n{release_build}"
    );
    let key =
        String::from_utf8(cargo_xtask(&["outputs", "api_key_value", "--show-sensitive"]).stdout)
            .unwrap();
    let call = |url: &str, path: &str| api_call(url, key.trim(), "GET", path, None);
    let (status, body) = call(&url, "/items");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["function"], "items", "{body}");
    assert_eq!(body["route"], "GET /items", "{body}");

    let logs = cargo_xtask(&["logs", "items", "--since", "1h"]);
    let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
    assert!(
        logs.contains("request completed"),
        "the request is in its log: {logs}"
    );

    let invoked = stdout_json(&cargo_xtask(&[
        "invoke",
        "items",
        "--example",
        "rest",
        "--json",
    ]));
    assert_eq!(invoked["response"]["statusCode"], 200, "{invoked}");
    let answer: serde_json::Value =
        serde_json::from_str(invoked["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["route"], "GET /items", "{invoked}");

    let removed = cargo_xtask(&["remove", "items"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(!workspace.join("functions/items").exists());
    let root = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    assert!(!root.contains("functions/items"), "{root}");
    // A declaration the catalog refuses stops every command, naming its manifest.
    let health = workspace.join("functions/health/Cargo.toml");
    let declared = std::fs::read_to_string(&health).unwrap();
    std::fs::write(&health, declared.replace("memory_mb = ", "memory = ")).unwrap();
    let refused = cargo_xtask(&["local", "status"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("error: functions/health/Cargo.toml: ")
            && stderr(&refused).contains("unknown field `memory`"),
        "{}",
        stderr(&refused)
    );
    std::fs::write(&health, declared).unwrap();
    let status = cargo_xtask(&["local", "status", "--json"]);
    nothing_compiled(&status);
    let endpoint = stdout_json(&status)["emulator"]["state"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = deploy();
    let (status, body) = call(&url, "/items");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "route_not_found", "{body}");
    let gone = with_lambda(&endpoint, async |lambda| {
        lambda
            .get_function()
            .function_name("prod-service-items")
            .send()
            .await
            .err()
            .map(|e| aws_sdk_lambda::error::DisplayErrorContext(&e).to_string())
    });
    assert!(
        gone.is_some_and(|e| e.contains("ResourceNotFound")),
        "the function is gone from the emulator"
    );
    eprintln!("scaffold life cycle: {:.0?}", started.elapsed());
    // The copy holds gigabytes of build output: stop its stack, then delete it (a failed run
    // keeps it for a look).
    drop(down);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `new --queue` and `new --schedule` in a copy: each crate compiles without warnings (`new`
/// builds it and its test) and its own test passes: the queue worker reports only the bad
/// record of a batch, the scheduled job runs on the event its declared schedule sends. Nothing
/// is deployed (the scenario above proves the way to the stack), so this builds only the
/// catalog, `service-common` and the two crates, in debug.
#[test]
fn a_new_queue_worker_and_scheduled_job_pass_their_tests() {
    let started = Instant::now();
    let (dir, workspace, target) = scratch_workspace("scaffold-triggers", &DEBUG);
    let in_copy = |command: &mut Command| {
        command
            .current_dir(&workspace)
            .env("CARGO_TARGET_DIR", &target)
            .env("XTASK_WORKSPACE_ROOT", &workspace);
    };
    // This build's xtask: `new` reads the copy's manifests, not its own compiled catalog, so
    // the copy's xtask need not be built.
    for (name, trigger, test) in [
        ("jobs", ["--queue", "jobs"], "tests/batch.rs"),
        (
            "nightly",
            ["--schedule", "rate(5 minutes)"],
            "tests/schedule.rs",
        ),
    ] {
        let mut args = vec!["new", name];
        args.extend(trigger);
        args.push("--json");
        let new = xtask_with(&dir.join("build"), &args, in_copy);
        // A diagnostic points into the crate; the build succeeded, so any such line is a
        // warning.
        assert!(
            !stderr(&new).contains(&format!("functions/{name}/")),
            "{name} compiles without warnings:\n{}",
            stderr(&new)
        );
        let created = stdout_json(&new);
        let file = format!("functions/{name}/{test}");
        assert!(
            created["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| *f == file),
            "{created}"
        );
    }
    // Both crates' tests, built as `new` built them: the workspace-hack dev-dependency keeps
    // every third-party crate at the workspace's features whichever members are selected.
    let mut cargo = emulator::cargo();
    cargo.args(["test", "-p", "jobs", "-p", "nightly"]);
    in_copy(&mut cargo);
    let tested = cargo.output().unwrap();
    let passed = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "{passed}\n{}", stderr(&tested));
    for test in [
        "a_bad_record_fails_alone ... ok",
        "runs_on_the_event_its_schedule_sends ... ok",
    ] {
        assert!(passed.contains(test), "{test}: {passed}");
    }
    eprintln!("queue and schedule scaffolds: {:.0?}", started.elapsed());
    std::fs::remove_dir_all(&dir).unwrap();
}
