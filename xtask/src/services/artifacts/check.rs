//! Will the binary start on Lambda's `provided.al2023`? Read its ELF headers
//! (with goblin, not by scraping `objdump` text) and refuse what the runtime
//! lacks: the wrong machine, a glibc symbol version newer than al2023's 2.34,
//! or a shared library outside the base image. A binary built on a newer
//! distribution fails here in a second instead of at the first cold start.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use goblin::elf::Elf;
use goblin::elf::header::{EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC};

use crate::base::env::Arch;
use crate::base::progress;
use crate::services::artifacts::build::Binaries;

/// The newest `GLIBC_x.y` symbol version al2023 provides.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

/// Shared libraries present in every al2023 Lambda image: glibc's own and
/// the GCC unwinder (which Rust's std links for backtraces).
const BASE_LIBRARIES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// What the check found in one binary.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub machine: &'static str,
    /// Newest `GLIBC_` version required, `None` for a static binary.
    pub max_glibc: Option<(u32, u32)>,
    pub needed: Vec<String>,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "machine": self.machine,
            "max_glibc": self.max_glibc.map(|(a, b)| format!("{a}.{b}")),
            "needed": self.needed,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        match self.max_glibc {
            Some((a, b)) => write!(
                f,
                "{name:<9} ok: {}, needs GLIBC {a}.{b}, libraries {}",
                self.machine,
                self.needed.join(" ")
            ),
            None => write!(f, "{name:<9} ok: {}, static", self.machine),
        }
    }
}

/// Checks every binary; the error lists all problems of all binaries.
pub fn all(binaries: &Binaries, arch: Arch) -> Result<Vec<Report>> {
    progress::step(format!(
        "Checking the binaries run on provided.al2023 ({})",
        arch.lambda_name()
    ));
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for path in binaries.paths.values() {
        match binary(path, arch) {
            Ok(report) => reports.push(report),
            Err(err) => problems.push(format!("{err:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}\nBuild with `cargo zigbuild` (install: `cargo install --locked cargo-zigbuild` and zig) so the \
             binaries link against glibc {}.{}, or build on Amazon Linux 2023.",
            problems.join("\n"),
            MAX_GLIBC.0,
            MAX_GLIBC.1
        );
    }
    Ok(reports)
}

/// Checks one ELF file for `arch`.
pub fn binary(path: &Path, arch: Arch) -> Result<Report> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    inspect(&bytes, arch)
        .with_context(|| format!("{} will not run on Lambda", path.display()))
        .map(|mut report| {
            report.path = path.to_path_buf();
            report
        })
}

/// The check proper, on bytes (the tests feed it crafted files).
pub fn inspect(bytes: &[u8], arch: Arch) -> Result<Report> {
    let elf = Elf::parse(bytes).context("not an ELF executable")?;
    let (want_machine, machine) = match arch {
        Arch::X86_64 => (EM_X86_64, "x86_64"),
        Arch::Arm64 => (EM_AARCH64, "arm64"),
    };
    let mut problems = Vec::new();
    if elf.header.e_machine != want_machine || !elf.is_64 {
        problems.push(format!(
            "built for {} but the function runs on {machine}",
            goblin::elf::header::machine_to_str(elf.header.e_machine)
        ));
    }
    if !matches!(elf.header.e_type, ET_EXEC | ET_DYN) {
        problems.push("not an executable".to_owned());
    }

    let mut max_glibc: Option<(u32, u32)> = None;
    let mut too_new = Vec::new();
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            for aux in need.iter() {
                let Some(name) = elf.dynstrtab.get_at(aux.vna_name) else {
                    continue;
                };
                let Some(version) = name.strip_prefix("GLIBC_").and_then(parse_version) else {
                    continue;
                };
                if max_glibc.is_none_or(|max| version > max) {
                    max_glibc = Some(version);
                }
                if version > MAX_GLIBC {
                    too_new.push(name.to_owned());
                }
            }
        }
    }
    if !too_new.is_empty() {
        too_new.sort();
        too_new.dedup();
        problems.push(format!(
            "needs {} but al2023 has GLIBC {}.{}",
            too_new.join(", "),
            MAX_GLIBC.0,
            MAX_GLIBC.1
        ));
    }
    let needed: Vec<String> = elf.libraries.iter().map(|l| l.to_string()).collect();
    let missing: Vec<&str> = needed
        .iter()
        .map(String::as_str)
        .filter(|lib| !BASE_LIBRARIES.contains(lib))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "links shared libraries al2023's base image lacks: {} (link them statically)",
            missing.join(", ")
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    if needed.is_empty() && elf.interpreter.is_none() {
        max_glibc = None;
    }
    Ok(Report {
        path: PathBuf::new(),
        machine,
        max_glibc,
        needed,
    })
}

/// `2.34` -> (2, 34); `2.2.5` -> (2, 2).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("2.34"), Some((2, 34)));
        assert_eq!(parse_version("2.2.5"), Some((2, 2)));
        assert!(parse_version("2.9").unwrap() < parse_version("2.34").unwrap());
        assert_eq!(parse_version("PRIVATE"), None);
    }

    #[test]
    fn this_test_binary_passes_on_its_own_architecture() {
        let exe = std::env::current_exe().unwrap();
        let host = Arch::host().unwrap();
        let report = binary(&exe, host).unwrap();
        assert!(report.needed.iter().any(|l| l == "libc.so.6"), "{report:?}");
        let other = if host == Arch::X86_64 {
            Arch::Arm64
        } else {
            Arch::X86_64
        };
        let err = format!("{:#}", binary(&exe, other).unwrap_err());
        assert!(err.contains("but the function runs on"), "{err}");
    }

    #[test]
    fn garbage_is_not_an_executable() {
        let err = format!(
            "{:#}",
            inspect(b"#!/bin/sh\necho hi\n", Arch::X86_64).unwrap_err()
        );
        assert!(err.contains("not an ELF"), "{err}");
    }
}
