//! Takes the `bootstrap` binary out of a deployment zip.
//!
//! The local server runs the very bytes that were uploaded to S3, not a fresh `cargo build`,
//! so a packaging mistake (wrong binary, missing executable bit) shows up locally too.
//!
//! Two layouts under the work folder:
//! - `<work>/<fn>/bootstrap`: from `build/dist/<fn>.zip`, when the server cannot follow the
//!   alias (no function, alias or bucket in the emulator); replaced on every start.
//! - `<work>/<fn>/<sha256 hex of the zip>/bootstrap`: the package of one published version,
//!   content-addressed like the artifact keys, so each version's package is fetched and
//!   extracted once and stays there for the next start (a rollback target is usually cached).

use std::fs;
use std::io::{Cursor, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Extracts `bootstrap` from `<dist>/<function>.zip` to `<work>/<function>/bootstrap` and
/// returns its path. The file is replaced atomically (write then rename) so a running old
/// binary is never overwritten in place ("text file busy").
pub fn extract_bootstrap(dist: &Path, work: &Path, function: &str) -> Result<PathBuf> {
    let zip_path = dist_zip(dist, function);
    let file = fs::File::open(&zip_path).with_context(|| {
        format!(
            "opening {}: build the packages first (`cargo xtask deploy` does)",
            zip_path.display()
        )
    })?;
    let bytes = bootstrap_from_zip(file, &zip_path.display().to_string())?;
    write_executable(&work.join(function), &bytes)
}

/// `<dist>/<function>.zip`.
pub fn dist_zip(dist: &Path, function: &str) -> PathBuf {
    dist.join(format!("{function}.zip"))
}

/// Where the package with this SHA-256 (hex) is extracted to.
pub fn cached_bootstrap(work: &Path, function: &str, sha256_hex: &str) -> PathBuf {
    work.join(function).join(sha256_hex).join("bootstrap")
}

/// Checks that `zip` is the package whose SHA-256 is `sha256_hex` (Lambda's `CodeSha256`,
/// hex-encoded), then extracts its `bootstrap` into the cache and returns the path.
pub fn install_verified(
    work: &Path,
    function: &str,
    sha256_hex: &str,
    zip: &[u8],
    label: &str,
) -> Result<PathBuf> {
    let actual = sha256_hex_of(zip);
    if actual != sha256_hex {
        bail!("{label} has SHA-256 {actual}, not the version's {sha256_hex}");
    }
    let bytes = bootstrap_from_zip(Cursor::new(zip), label)?;
    let target = cached_bootstrap(work, function, sha256_hex);
    write_executable(target.parent().expect("has a parent"), &bytes)
}

/// Lambda's `CodeSha256` (base64 of the zip's SHA-256) as lowercase hex, the form the
/// artifact keys and the cache use.
pub fn code_sha256_hex(code_sha256: &str) -> Result<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(code_sha256.trim())
        .with_context(|| format!("CodeSha256 `{code_sha256}` is not base64"))?;
    if raw.len() != 32 {
        bail!("CodeSha256 `{code_sha256}` is not a SHA-256");
    }
    Ok(hex(&raw))
}

pub fn sha256_hex_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bootstrap_from_zip(reader: impl Read + Seek, label: &str) -> Result<Vec<u8>> {
    let mut archive =
        zip::ZipArchive::new(reader).with_context(|| format!("reading zip {label}"))?;
    let mut entry = match archive.by_name("bootstrap") {
        Ok(entry) => entry,
        Err(_) => {
            bail!("{label} has no `bootstrap` entry at its root; Lambda's custom runtime needs one")
        }
    };
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .with_context(|| format!("extracting bootstrap from {label}"))?;
    Ok(bytes)
}

/// Writes `<dir>/bootstrap` (mode 755) through a uniquely named temporary file and a rename,
/// so neither a running binary nor a concurrent writer ever sees a partial file.
fn write_executable(dir: &Path, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join("bootstrap");
    let partial = dir.join(format!(
        ".bootstrap.partial.{}",
        uuid::Uuid::new_v4().simple()
    ));
    let written = fs::write(&partial, bytes)
        .with_context(|| format!("writing {}", partial.display()))
        .and_then(|()| {
            fs::set_permissions(&partial, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", partial.display()))
        })
        .and_then(|()| {
            fs::rename(&partial, &target)
                .with_context(|| format!("moving bootstrap into {}", target.display()))
        });
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_is_the_base64_of_the_hex_digest() {
        let digest = Sha256::digest(b"zip bytes");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(code_sha256_hex(&b64).unwrap(), sha256_hex_of(b"zip bytes"));
        assert!(code_sha256_hex("").is_err());
        assert!(code_sha256_hex("not base64!").is_err());
    }
}
