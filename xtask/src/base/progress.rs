//! What the user sees: step headings, a progress display for long external
//! steps, and the final result as text or (`--json`) as JSON on stdout.
//!
//! Progress always goes to stderr so `--json` output on stdout stays clean.

use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `-v`/`--verbose`: stream every line of the long external steps (cargo, terraform) instead
/// of a spinner and a summary. Set once by `main`.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Set by [`cancel`]: every running [`stream`] kills its program and fails.
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Stops the external programs running under [`stream`] on other threads (the compile that
/// a deploy runs beside the bootstrap stack, when the bootstrap side has already failed).
pub fn cancel() {
    CANCELLED.store(true, Ordering::Relaxed);
}

/// Every spinner hangs off this one display, so two steps that run at once (the compile and
/// the bootstrap stack's apply) each keep a line of their own, and a heading printed meanwhile
/// lands above them instead of through them.
static DISPLAY: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// Prints a line on stderr above any running spinner.
fn line(text: String) {
    DISPLAY.suspend(|| eprintln!("{text}"));
}

/// Announces a step of a task on stderr.
pub fn step(message: impl Display) {
    line(format!("==> {message}"));
}

/// A short note under the current step.
pub fn note(message: impl Display) {
    line(format!("    {message}"));
}

/// Prints the task's result: `json` with `--json`, else `human`.
pub fn finish(env_json: bool, json: &serde_json::Value, human: impl Display) {
    let mut out = std::io::stdout().lock();
    if env_json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(json).unwrap_or_default()
        );
    } else {
        let _ = writeln!(out, "{human}");
    }
}

/// A spinner on stderr when it is a terminal; nothing otherwise (CI logs get a line every
/// [`HEARTBEAT`] instead, see [`stream`]).
pub fn spinner(prefix: &str) -> ProgressBar {
    let bar = DISPLAY.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {wide_msg}")
            .expect("static template is valid"),
    );
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// How often a long step says it is still running when stderr is not a terminal.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Runs `command` with its output (stdout and stderr, in order) written to `log` and fed to
/// `observe`, which returns the progress message for that line, if any. What the user sees:
/// with `--verbose`, every line; on a terminal, a spinner named `step` showing the latest
/// message; otherwise (CI), a line every 30 s. On failure the program's last lines are shown
/// and the error names the step and the log file.
pub fn stream(
    step: &str,
    mut command: Command,
    log: &Path,
    mut observe: impl FnMut(&str) -> Option<String>,
) -> Result<Duration> {
    let mut log_file = deploy_files::open_private_log(log, false)
        .with_context(|| format!("creating {}", log.display()))?;
    super::signals::check(step)?;
    if super::signals::installed() {
        // Signals reach the program only through xtask, once (see `signals`).
        command.process_group(0);
    }
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{step}: could not start {:?}", command.get_program()))?;
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let forward = |reader: Box<dyn Read + Send>, is_err: bool, tx: mpsc::Sender<(bool, String)>| {
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send((is_err, line)).is_err() {
                    break;
                }
            }
        })
    };
    let t1 = forward(Box::new(out), false, tx.clone());
    let t2 = forward(Box::new(err), true, tx);
    let verbose = verbose();
    let bar = spinner(step);
    let mut stderr_lines = Vec::new();
    let mut latest = String::new();
    let mut next_beat = started + HEARTBEAT;
    let mut interrupted = None;
    loop {
        // Asked to stop: one SIGINT, which Terraform answers by stopping gracefully and
        // releasing its state lock; then wait for it to exit.
        if interrupted.is_none()
            && let Some(signal) = super::signals::received()
        {
            line(format!(
                "    {step}: {signal} received; asking it to stop (SIGINT) and waiting"
            ));
            super::signals::interrupt(child.id());
            interrupted = Some(signal);
        }
        let (is_err, text) = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(message) => message,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if CANCELLED.load(Ordering::Relaxed) {
                    let _ = child.kill();
                }
                if bar.is_hidden() && !verbose && Instant::now() >= next_beat {
                    next_beat += HEARTBEAT;
                    line(format!(
                        "    ... {step}: {:.0} s{}",
                        started.elapsed().as_secs_f64(),
                        if latest.is_empty() {
                            String::new()
                        } else {
                            format!(", {latest}")
                        }
                    ));
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let _ = writeln!(log_file, "{text}");
        if is_err {
            stderr_lines.push(text.clone());
        }
        if verbose {
            bar.suspend(|| eprintln!("{text}"));
        }
        if let Some(message) = observe(text.trim()) {
            bar.set_message(message.clone());
            latest = message;
        }
    }
    let _ = t1.join();
    let _ = t2.join();
    let status = child
        .wait()
        .with_context(|| format!("{step}: waiting for the process"))?;
    bar.finish_and_clear();
    DISPLAY.remove(&bar);
    let elapsed = started.elapsed();
    if let Some(signal) = interrupted {
        bail!(
            "{step} stopped by {signal}: it was asked to stop and exited ({status}); the full \
             output is in {}",
            log.display()
        );
    }
    if CANCELLED.load(Ordering::Relaxed) {
        bail!("{step} stopped: an earlier step failed");
    }
    if !status.success() {
        if !verbose {
            // The end of the program's own error output is what explains the failure.
            let shown = &stderr_lines[stderr_lines.len().saturating_sub(60)..];
            line(shown.join("\n"));
        }
        bail!(
            "{step} failed ({status}); the full output is in {}",
            log.display()
        );
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::signals;

    /// A SIGTERM to xtask reaches the running program as one SIGINT (what makes Terraform
    /// stop gracefully and release its state lock), xtask waits for it to exit, and the step
    /// fails naming the signal. A real child process and a real signal.
    #[test]
    fn a_signal_interrupts_the_running_program_once_and_waits_for_it() {
        signals::install();
        let dir = std::env::temp_dir().join(format!("xtask-signal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("child.log");
        let mut command = Command::new("sh");
        // Counts the SIGINTs it gets, takes a moment to "release its lock", then exits.
        command.args([
            "-c",
            "n=0; trap 'n=$((n+1)); echo \"interrupted $n\"; sleep 1; echo released; exit 3' INT; \
             echo started; while :; do sleep 0.1; done",
        ]);
        let raiser = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(800));
            signals::raise_for_test(libc::SIGTERM);
        });
        let started = Instant::now();
        let err = stream("terraform apply (test)", command, &log, |_| None).unwrap_err();
        raiser.join().unwrap();
        let took = started.elapsed();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(err.to_string().contains("stopped by SIGTERM"), "{err:#}");
        assert!(
            text.contains("interrupted 1") && text.contains("released"),
            "{text}"
        );
        assert!(!text.contains("interrupted 2"), "one SIGINT only: {text}");
        assert!(
            took < Duration::from_secs(7),
            "within the runner's window: {took:?}"
        );
        // Nothing new starts once a stop was asked for.
        let again = stream(
            "terraform apply (again)",
            Command::new("true"),
            &log,
            |_| None,
        );
        assert!(
            again
                .unwrap_err()
                .to_string()
                .contains("not started: stopped by SIGTERM"),
        );
        assert!(signals::sleep(Duration::from_secs(5)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
