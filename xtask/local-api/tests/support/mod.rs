//! Shared set-up for the local server's tests: real binaries zipped like `cargo xtask` does,
//! an outputs file, and a scratch folder under `build/` (the only place generated files go).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

pub use deploy_files::workspace_root;

/// A fresh folder `build/test/<name>-<random>`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("build/test")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("creating the scratch folder");
    dir
}

/// Path of one of this crate's example binaries; built on demand when a filtered test run
/// (`cargo test --test faults`) did not build the examples.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let status = emulator::cargo()
            .args(["build", "-p", "local-api", "--example", name])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build for an example");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

/// Path of a service function's own binary (`health`, `users`, `sessions`), built on demand
/// in this profile, for tests that need the real handler behind the server.
pub fn function_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    // `--bin` without `-p`: features resolved over the workspace, as for `cargo xtask`, so
    // the dependencies are the ones already built.
    let status = emulator::cargo()
        .args(["build", "--bin", name])
        .current_dir(workspace_root())
        .status()
        .expect("running cargo build for a function");
    assert!(status.success(), "building function {name} failed");
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

/// Writes `<dist>/<function>.zip` holding `binary` as `bootstrap`, as the packaging step does
/// (stored, not deflated: debug binaries are large and an unoptimised deflate is slow).
pub fn zip_bootstrap(dist: &Path, function: &str, binary: &Path) {
    std::fs::create_dir_all(dist).unwrap();
    let bytes =
        std::fs::read(binary).unwrap_or_else(|e| panic!("reading {}: {e}", binary.display()));
    let file = std::fs::File::create(dist.join(format!("{function}.zip"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(&bytes).unwrap();
    zip.finish().unwrap();
}

/// `<dir>/dist` holding every catalog function's zip with `echo_lambda` in it, but the real
/// binary of `real`: a stack where only the function under test does real work.
pub fn dist_with_real(dir: &Path, real: &str) -> PathBuf {
    let dist = dir.join("dist");
    let echo = example("echo_lambda");
    for name in catalog::NAMES.iter() {
        zip_bootstrap(&dist, name, &echo);
    }
    zip_bootstrap(&dist, real, &function_binary(real));
    dist
}

/// An endpoint nothing listens on: the server then derives the function configuration from
/// the outputs file, which is what these tests exercise.
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
