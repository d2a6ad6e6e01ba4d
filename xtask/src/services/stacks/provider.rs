//! One AWS provider process for every Terraform command of a stack, on the emulator.
//!
//! Terraform starts the provider afresh for each graph walk (schema, validate, plan, apply),
//! and each new process builds its schema of every AWS resource type again before it answers.
//! One process per stack saves 1.4 s and 1.8 CPU-seconds of an apply on a 2-core machine,
//! whatever the stack's size (docs/benchmarks.md, "Code-only deploys through Terraform"). Run once in its
//! `-debug` mode, the provider serves every walk of every command from one process, which
//! Terraform reaches through `TF_REATTACH_PROVIDERS` (Terraform's own mechanism for a provider
//! it does not start).
//!
//! Only for an emulated environment and a stack with one `aws` provider block: one process is
//! one provider configuration (prod's bootstrap stack configures a second region), and the
//! provider cannot be configured twice with `AWS_CA_BUNDLE` set, which the emulator (plain
//! HTTP on loopback) does not need. Terraform then skips the lock file's checksums for it,
//! which on the emulator are the machine's own (see [`super::terraform::Terraform::init`]).
//!
//! The process is this one's: in a process group of its own (a terminal's Ctrl-C reaches
//! Terraform, which asks the provider to stop its work, not the provider itself), stopped when
//! the [`ProviderServer`] is dropped, and killed by the kernel if xtask dies first
//! (`PR_SET_PDEATHSIG`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How the provider's log names its process: a line `xtask: provider pid 4242`.
const PID_LINE: &str = "xtask: provider pid ";

/// How long the provider may take to say where it listens (0.3 s on a quiet 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running provider and the `TF_REATTACH_PROVIDERS` value that reaches it.
pub struct ProviderServer {
    child: Child,
    reattach: String,
}

impl ProviderServer {
    /// Starts the provider that `terraform init` installed under `data_dir` (`None` when there
    /// is none: Terraform then starts its own, or says what is missing), with the environment
    /// `configure` gives it (what Terraform's own process gets); its log goes to `log`.
    pub fn start(
        data_dir: &Path,
        configure: impl FnOnce(&mut Command),
        log: &Path,
    ) -> Result<Option<Self>> {
        let Some(binary) = installed_binary(data_dir) else {
            return Ok(None);
        };
        // Private as Terraform's own logs: the provider's may quote what it sends and reads.
        let mut log_file = deploy_files::open_private_log(log, false)
            .with_context(|| format!("creating {}", log.display()))?;
        let child_log = log_file.try_clone()?;
        let mut command = Command::new(&binary);
        configure(&mut command);
        // Run by Terraform, the provider's log goes nowhere unless TF_LOG asks; in its debug
        // mode the SDK's loggers write every call at trace level (7 MB for one apply of the
        // service stack; 2 kB at these levels).
        if std::env::var_os("TF_LOG").is_none() {
            command
                .env("TF_LOG_SDK", "ERROR")
                .env("TF_LOG_PROVIDER", "ERROR")
                .env("TF_LOG_PROVIDER_AWS", "ERROR");
        }
        command
            .arg("-debug")
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(child_log)
            .process_group(0);
        // The kernel kills it when the thread that started it ends, which is when xtask ends:
        // Terraform runs on the thread that owns its `Terraform`, and this process is stopped
        // before that is dropped.
        // SAFETY: the closure runs in the child between fork and exec; prctl(2) is
        // async-signal-safe and touches no memory.
        #[cfg(target_os = "linux")]
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // A line names the process, for whoever checks that it was stopped.
        let _ = writeln!(log_file, "{PID_LINE}{}", child.id());
        let stdout = child.stdout.take().context("the provider's stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads until the line naming the socket, then drains the rest (the provider prints
        // nothing more, but a full pipe must never stop it).
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(value) = reattach_value(&line) {
                    let _ = tx.send(value);
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                    return;
                }
                line.clear();
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(reattach) => Ok(Some(ProviderServer { child, reattach })),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the AWS provider ({}) exited or did not say where it listens within {} s; \
                     its log: {}",
                    binary.display(),
                    READY_TIMEOUT.as_secs(),
                    log.display()
                )
            }
        }
    }

    /// The value of `TF_REATTACH_PROVIDERS` for the Terraform commands that use this process.
    pub fn reattach(&self) -> &str {
        &self.reattach
    }
}

impl Drop for ProviderServer {
    /// SIGINT, on which the provider closes its socket and exits; SIGKILL if it has not within
    /// five seconds.
    fn drop(&mut self) {
        crate::base::signals::interrupt(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider binary `terraform init` put under `<data dir>/providers`.
fn installed_binary(data_dir: &Path) -> Option<PathBuf> {
    let version = data_dir
        .join("providers/registry.terraform.io/hashicorp/aws")
        .join(infra::stack::AWS_PROVIDER_VERSION);
    let entries = |dir: &Path| {
        dir.read_dir()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
    };
    let platform = entries(&version).find(|path| path.is_dir())?;
    entries(&platform).find(|path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("terraform-provider-aws"))
    })
}

/// The JSON of a `TF_REATTACH_PROVIDERS='{...}'` line, as the provider's debug mode prints it.
fn reattach_value(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("TF_REATTACH_PROVIDERS='")?;
    let (value, _) = rest.split_once('\'')?;
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reattach_value_is_read_from_the_debug_line() {
        let line = "\tTF_REATTACH_PROVIDERS='{\"registry.terraform.io/hashicorp/aws\":{\"Protocol\":\"grpc\",\"Pid\":1}}'\n";
        assert_eq!(
            reattach_value(line).as_deref(),
            Some("{\"registry.terraform.io/hashicorp/aws\":{\"Protocol\":\"grpc\",\"Pid\":1}}")
        );
        assert_eq!(
            reattach_value("Provider started. To attach Terraform CLI"),
            None
        );
    }
}
