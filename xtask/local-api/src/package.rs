//! Takes the `bootstrap` binary out of each deployment zip.
//!
//! The local server runs the very bytes that were uploaded to S3, not a fresh `cargo build`,
//! so a packaging mistake (wrong binary, missing executable bit) shows up locally too.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Extracts `bootstrap` from `<dist>/<function>.zip` to `<work>/<function>/bootstrap` and
/// returns its path. The file is replaced atomically (write then rename) so a running old
/// binary is never overwritten in place ("text file busy").
pub fn extract_bootstrap(dist: &Path, work: &Path, function: &str) -> Result<PathBuf> {
    let zip_path = dist.join(format!("{function}.zip"));
    let file = fs::File::open(&zip_path).with_context(|| {
        format!(
            "opening {}: build the packages first (`cargo xtask deploy` does)",
            zip_path.display()
        )
    })?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("reading zip {}", zip_path.display()))?;
    let mut entry = match archive.by_name("bootstrap") {
        Ok(entry) => entry,
        Err(_) => bail!(
            "{} has no `bootstrap` entry at its root; Lambda's custom runtime needs one",
            zip_path.display()
        ),
    };
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .with_context(|| format!("extracting bootstrap from {}", zip_path.display()))?;

    let dir = work.join(function);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join("bootstrap");
    let partial = dir.join(".bootstrap.partial");
    fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", partial.display()))?;
    fs::rename(&partial, &target)
        .with_context(|| format!("moving bootstrap into {}", target.display()))?;
    Ok(target)
}
