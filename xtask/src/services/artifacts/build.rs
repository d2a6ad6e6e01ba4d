//! Compiling the function binaries in release mode for the environment's
//! architecture (`cargo xtask build`, and the first step of `package` and `deploy`).
//!
//! Only the function packages (`catalog::NAMES`: `-p health -p users ...`)
//! are built, so Cargo does not unify their features with xtask's own
//! dependencies and the binaries stay what a plain `cargo build` would give.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::base::env::{self, Arch, Env};
use crate::base::{process, progress};

/// The newest glibc Lambda's `provided.al2023` runtime has.
pub const LAMBDA_GLIBC: &str = "2.34";

/// Built (or supplied) binaries, by function name.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub paths: BTreeMap<&'static str, PathBuf>,
}

/// How the binaries get built on this machine.
enum Toolchain {
    /// `cargo zigbuild`: any architecture, glibc pinned to Lambda's.
    Zig,
    /// Plain cargo for the host target.
    Host,
}

fn toolchain(arch: Arch) -> Result<Toolchain> {
    if process::find_program("cargo-zigbuild").is_some() {
        return Ok(Toolchain::Zig);
    }
    let host_ok =
        cfg!(target_os = "linux") && cfg!(target_env = "gnu") && Arch::host() == Some(arch);
    if host_ok {
        return Ok(Toolchain::Host);
    }
    bail!(
        "this environment deploys {arch} Lambda functions, which this machine ({host_os} {host_arch}) \
         cannot build with plain cargo.\n\
         Install cargo-zigbuild and zig, then run again:\n    \
         cargo install --locked cargo-zigbuild\n    \
         pip install ziglang        # or your package manager's zig\n    \
         rustup target add {triple}",
        arch = env_arch_name(arch),
        host_os = std::env::consts::OS,
        host_arch = std::env::consts::ARCH,
        triple = arch.triple(),
    )
}

fn env_arch_name(arch: Arch) -> &'static str {
    arch.lambda_name()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir(env: &Env) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => env.root.join(dir),
        _ => env.root.join("target"),
    }
}

/// Compiles the functions and returns where the binaries are. Takes no `Shell`: `deploy` runs
/// it on a thread of its own while the bootstrap stack applies.
pub fn compile(env: &Env) -> Result<Binaries> {
    compile_into(env, &target_dir(env)).map(|(binaries, _)| binaries)
}

/// [`compile`] with cargo's target directory at `target` (the benchmark's clean build), and how
/// long cargo took.
pub fn compile_into(env: &Env, target: &Path) -> Result<(Binaries, Duration)> {
    let packages: Vec<String> = env::functions()
        .iter()
        .flat_map(|f| ["-p".to_owned(), f.to_string()])
        .collect();
    let (args, release_dir) = match toolchain(env.arch)? {
        Toolchain::Zig => {
            let triple = format!("{}.{LAMBDA_GLIBC}", env.arch.triple());
            progress::step(format!(
                "Compiling {} for {} with cargo zigbuild (glibc {LAMBDA_GLIBC})",
                env::functions().join(", "),
                env.arch.lambda_name()
            ));
            let args = ["zigbuild", "--release", "--target", &triple].map(str::to_owned);
            let dir = target.join(env.arch.triple()).join("release");
            (args.to_vec(), dir)
        }
        Toolchain::Host => {
            progress::step(format!(
                "Compiling {} for {} (host target; install cargo-zigbuild to pin glibc {LAMBDA_GLIBC})",
                env::functions().join(", "),
                env.arch.lambda_name()
            ));
            (
                vec!["build".to_owned(), "--release".to_owned()],
                target.join("release"),
            )
        }
    };
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // `--locked`: `cargo xtask` itself already brought Cargo.lock up to date, so this only
    // refuses a lock file that changed under the build (CI builds exactly what was committed).
    command
        .args(&args)
        .arg("--locked")
        .args(&packages)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(&env.root);
    let mut crates = 0;
    let elapsed = progress::stream(
        "compiling the functions",
        command,
        &env.dir().join("logs").join("cargo-build.log"),
        |line| {
            let name = line.strip_prefix("Compiling ")?;
            crates += 1;
            Some(format!("[{crates} crates] {name}"))
        },
    )?;
    progress::note(format!(
        "compiled {} in {:.0} s ({crates} crates rebuilt)",
        env::functions().join(", "),
        elapsed.as_secs_f64()
    ));
    Ok((from_dir(&release_dir)?, elapsed))
}

/// Binaries named after the functions in `dir` (a release folder or
/// `--prebuilt`).
pub fn from_dir(dir: &Path) -> Result<Binaries> {
    let mut paths = BTreeMap::new();
    for &function in env::functions() {
        let path = dir.join(function);
        std::fs::metadata(&path)
            .with_context(|| format!("binary `{function}` not found at {}", path.display()))?;
        paths.insert(function, path);
    }
    Ok(Binaries { paths })
}
