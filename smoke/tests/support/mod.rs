//! A real local stack without Terraform: moto, the contract's tables, the service's own
//! function binaries zipped as `bootstrap`, and the local API server in front of them.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::config::{Credentials, Region};

pub const API_KEY: &str = "smoke-test-api-key-0123456789";

pub use deploy_files::workspace_root;

/// A fresh folder under `build/test/`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("build/test")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("creating the scratch folder");
    dir
}

/// The debug binaries of the function packages, built if missing.
pub fn function_binaries() -> Vec<(&'static str, PathBuf)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let names = *catalog::NAMES;
    if names.iter().any(|n| !target.join("debug").join(n).exists()) {
        // `--bin` without `-p`: features resolved over the workspace, as for `cargo xtask`, so
        // the dependencies are the ones already built (see `smoke/tests/trace.rs`).
        let binaries = names.iter().flat_map(|n| ["--bin", n]);
        let status = emulator::cargo()
            .arg("build")
            .args(binaries)
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build for the functions");
        assert!(status.success(), "building the function binaries failed");
    }
    names
        .iter()
        .map(|n| (*n, target.join("debug").join(n)))
        .collect()
}

/// `<dist>/<function>.zip` with `bytes` as `bootstrap` (stored: debug binaries are large).
pub fn zip_bootstrap(dist: &Path, function: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dist).unwrap();
    let file = std::fs::File::create(dist.join(format!("{function}.zip"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
}

pub fn dynamo(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "smoke-test"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates both tables exactly as the contract's schema says (the service's own test helper).
pub async fn create_tables(client: &aws_sdk_dynamodb::Client, prefix: &str) {
    service_common::testing::create_tables(
        client,
        &format!("{prefix}users"),
        &format!("{prefix}sessions"),
    )
    .await;
}

/// The outputs file of a stack without Terraform: the contract's tables and the functions under
/// `prefix`, the test API key, and the declared queues, made in the emulator at `endpoint` as
/// infra makes them (the session sweep runs on one).
pub async fn write_outputs(path: &Path, prefix: &str, endpoint: &str) {
    let mut outputs = deploy_files::Outputs::fixture(prefix, "v1", API_KEY);
    let sqs = local_api::queues::client(endpoint, &outputs.region);
    local_api::queues::create_declared(&sqs, &mut outputs, prefix, 30).await;
    outputs.write(path).unwrap();
}

/// The local API server in front of the packages in `dist`, against the emulator at
/// `endpoint`: `/health` open, no CORS origins, its state file at `state`.
pub async fn serve(
    outputs: &Path,
    dist: PathBuf,
    endpoint: &str,
    state: PathBuf,
) -> local_api::Server {
    let mut options = local_api::Options::new(outputs.to_path_buf(), dist, endpoint.to_string());
    options.state = Some(state);
    options.health_requires_api_key = Some(false);
    options.cors_allow_origins = Some(Vec::new());
    local_api::Server::start(options)
        .await
        .expect("starting the local API")
}

/// The password pepper ring the users and sessions functions read, as the first `deploy`
/// generates it on `local`: a fresh ring in the secret `<prefix>secret-password-peppers`, the
/// name the local API server hands the functions when no Terraform ran (`local_api`'s
/// `function_env`).
pub async fn create_peppers(endpoint: &str, prefix: &str) {
    use service_common::peppers::{self, PepperRing};
    let ring = PepperRing::generate().expect("generating a pepper ring");
    service_common::testing::secrets_client(endpoint)
        .create_secret()
        .name(format!(
            "{prefix}{}",
            catalog::secrets::aws_suffix(peppers::SECRET)
        ))
        .secret_string(ring.to_value().expose())
        .send()
        .await
        .expect("creating the pepper secret in the emulator");
}

/// A running local stack. Holds the emulator and the server; both stop on drop.
pub struct Stack {
    pub emulator: emulator::Emulator,
    pub server: local_api::Server,
    pub outputs: PathBuf,
    pub prefix: String,
    pub dir: PathBuf,
}

impl Stack {
    /// Starts everything; `broken_users` replaces the users function with a binary that exits
    /// on start (a real executable, not a mock), for the negative test.
    pub async fn start(broken_users: bool) -> Stack {
        let emulator = emulator::Emulator::for_tests().expect("starting the AWS emulator");
        let prefix = format!("smk{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        create_tables(&dynamo(emulator.endpoint()), &prefix).await;
        create_peppers(emulator.endpoint(), &prefix).await;

        let dir = scratch("smoke");
        let dist = dir.join("dist");
        let binaries = tokio::task::spawn_blocking(function_binaries)
            .await
            .unwrap();
        for (name, path) in binaries {
            let bytes = if broken_users && name == "users" {
                b"#!/bin/sh\necho 'users: broken on purpose' >&2\nexit 1\n".to_vec()
            } else {
                std::fs::read(&path).unwrap()
            };
            zip_bootstrap(&dist, name, &bytes);
        }
        let outputs = dir.join("outputs.json");
        write_outputs(&outputs, &prefix, emulator.endpoint()).await;
        let server = serve(
            &outputs,
            dist,
            emulator.endpoint(),
            dir.join("local-api.json"),
        )
        .await;
        Stack {
            emulator,
            server,
            outputs,
            prefix,
            dir,
        }
    }

    pub fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        dynamo(self.emulator.endpoint())
    }

    pub fn target(&self) -> smoke::Target {
        smoke::Target::from_outputs(&self.outputs, None).expect("reading the outputs")
    }
}

impl Drop for Stack {
    /// The scratch folder holds several hundred MB of debug binaries; do not keep it.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
