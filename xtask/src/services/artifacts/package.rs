//! Packaging: reproducible `bootstrap` zips keyed by content hash (`cargo xtask
//! package`, and the step of `deploy` after the compile).
//!
//! The zip holds one entry, `bootstrap`, with a fixed timestamp
//! (1980-01-01, the zip epoch), mode 0755 and deflate, so the same binary
//! always gives the same bytes, the same SHA-256 and therefore the same S3
//! key: an unchanged function is neither uploaded nor updated again.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::artifacts::build::{self, Binaries};
use crate::services::artifacts::check;

/// `build/dist/manifest.json`: what was packaged, read by deploy, the local
/// API server and the benchmark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub architecture: String,
    pub functions: BTreeMap<String, Package>,
}

impl Manifest {
    /// The same packages at the keys `env` deploys them from: a stage's are under
    /// `stages/<stage>/` of the shared artifacts bucket, so a stage (a pull request's code,
    /// under credentials that may write only there) never writes a key the environment's own
    /// deploys read.
    pub fn for_env(mut self, env: &Env) -> Manifest {
        if let Some(stage) = &env.stage {
            for package in self.functions.values_mut() {
                package.s3_key = format!(
                    "{}/{stage}/{}",
                    infra::constructs::state::STAGES_DIR,
                    package.s3_key
                );
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The zip, relative to the workspace root when inside it.
    pub zip: String,
    /// Lowercase hex SHA-256 of the zip.
    pub sha256: String,
    /// `functions/<fn>/<sha256>.zip` in the artifacts bucket.
    pub s3_key: String,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256` and Terraform's
    /// `source_code_hash`.
    pub source_code_hash: String,
    #[serde(default)]
    pub bytes: u64,
    /// SHA-256 of the binary inside, so an unchanged binary is not
    /// compressed again.
    #[serde(default)]
    pub binary_sha256: String,
}

/// Build (or take `prebuilt`), check and package: the first half of deploy.
pub fn build_check_package(env: &Env, prebuilt: Option<&Path>) -> Result<Manifest> {
    let binaries = match prebuilt {
        Some(dir) => {
            progress::step(format!("Using prebuilt binaries from {}", dir.display()));
            build::from_dir(dir)?
        }
        None => build::compile(env)?,
    };
    check::all(&binaries, env.arch)?;
    progress::step("Packaging");
    let manifest = package_all(&binaries, &env.dist(), &env.root, env.arch.lambda_name())?;
    Ok(manifest)
}

/// Zips every binary into `dist` and writes `dist/manifest.json`.
pub fn package_all(binaries: &Binaries, dist: &Path, root: &Path, arch: &str) -> Result<Manifest> {
    std::fs::create_dir_all(dist).with_context(|| format!("creating {}", dist.display()))?;
    let manifest_path = dist.join("manifest.json");
    let previous: Option<Manifest> = process::read_json(&manifest_path).ok();
    let mut functions = BTreeMap::new();
    for (name, binary) in &binaries.paths {
        let contents =
            std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
        let binary_sha256 = hex(&Sha256::digest(&contents));
        let zip_path = dist.join(format!("{name}.zip"));
        let reusable = previous
            .as_ref()
            .and_then(|m| m.functions.get(*name))
            .filter(|p| p.binary_sha256 == binary_sha256)
            .and_then(|p| {
                let bytes = std::fs::read(&zip_path).ok()?;
                (hex(&Sha256::digest(&bytes)) == p.sha256).then_some(bytes)
            });
        let bytes = match reusable {
            Some(bytes) => bytes,
            None => {
                let bytes = zip_bytes(&contents)?;
                process::write_atomic(&zip_path, &bytes)?;
                bytes
            }
        };
        let mut package = describe(name, &zip_path, &bytes, root);
        package.binary_sha256 = binary_sha256;
        functions.insert(name.to_string(), package);
    }
    let manifest = Manifest {
        architecture: arch.to_owned(),
        functions,
    };
    if previous.as_ref() != Some(&manifest) {
        process::write_json(&manifest_path, &manifest)?;
    }
    Ok(manifest)
}

fn describe(name: &str, zip_path: &Path, bytes: &[u8], root: &Path) -> Package {
    let digest = Sha256::digest(bytes);
    let sha256 = hex(&digest);
    Package {
        zip: process::display_path(root, zip_path),
        s3_key: format!("functions/{name}/{sha256}.zip"),
        source_code_hash: base64::engine::general_purpose::STANDARD.encode(digest),
        sha256,
        bytes: bytes.len() as u64,
        binary_sha256: String::new(),
    }
}

/// The zip bytes for one binary: a single `bootstrap` entry, deterministic.
fn zip_bytes(contents: &[u8]) -> Result<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755)
        .large_file(false);
    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(contents.len() / 2)));
    writer
        .start_file("bootstrap", options)
        .context("starting the zip entry")?;
    writer
        .write_all(contents)
        .context("compressing the binary")?;
    let cursor = writer.finish().context("finishing the zip")?;
    Ok(cursor.into_inner())
}

/// Reads the manifest a previous `package` wrote.
pub fn load_manifest(env: &Env) -> Result<Manifest> {
    process::read_json(&env.dist().join("manifest.json"))
        .context("no packages yet: run `cargo xtask package` (or deploy) first")
}

/// The zip's absolute path.
pub fn zip_path(env: &Env, package: &Package) -> PathBuf {
    env.root.join(&package.zip)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= MIB {
        format!("{:.2} MiB", bytes as f64 / MIB)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_binary_same_bytes() {
        let binary = std::fs::read("/bin/true").unwrap();
        let a = zip_bytes(&binary).unwrap();
        let b = zip_bytes(&binary).unwrap();
        assert_eq!(a, b);
        let mut archive = zip::ZipArchive::new(Cursor::new(a)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        let t = entry.last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
    }

    #[test]
    fn hashes_are_hex_and_base64_of_the_zip() {
        let p = describe(
            "users",
            Path::new("/r/build/dist/users.zip"),
            b"abc",
            Path::new("/r"),
        );
        assert_eq!(
            p.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            p.source_code_hash,
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(p.s3_key, format!("functions/users/{}.zip", p.sha256));
        assert_eq!(p.zip, "build/dist/users.zip");
    }
}
