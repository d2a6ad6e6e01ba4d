//! What the user sees: step headings, a progress display for long external
//! steps, and the final result as text or (`--json`) as JSON on stdout.
//!
//! Progress always goes to stderr so `--json` output on stdout stays clean.

use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::env::Env;

/// Announces a step of a task on stderr.
pub fn step(message: impl Display) {
    eprintln!("==> {message}");
}

/// A short note under the current step.
pub fn note(message: impl Display) {
    eprintln!("    {message}");
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

/// Convenience for tasks that have an [`Env`].
pub fn result(env: &Env, json: &serde_json::Value, human: impl Display) {
    finish(env.json, json, human)
}

/// A spinner on stderr when it is a terminal; nothing otherwise (CI logs get
/// the plain lines instead, see [`stream`]).
pub fn spinner(prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {wide_msg}")
            .expect("static template is valid"),
    );
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// How [`stream`] treats one line of output.
pub enum LineKind {
    /// Worth keeping on screen (a resource finished, the plan summary, a warning).
    Keep,
    /// Progress chatter: shown in the spinner only.
    Transient,
}

/// Runs `command` with its output streamed under a spinner named `step`,
/// every line also written to `log`. On failure the program's own stderr is
/// shown in full and the error names the step and the log file.
pub fn stream(
    step: &str,
    mut command: Command,
    log: &Path,
    classify: fn(&str) -> LineKind,
) -> Result<Duration> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
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
    let bar = spinner(step);
    let mut stderr_lines = Vec::new();
    for (is_err, line) in rx {
        let _ = writeln!(log_file, "{line}");
        if is_err {
            stderr_lines.push(line);
            continue;
        }
        if bar.is_hidden() {
            eprintln!("{line}");
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        match classify(trimmed) {
            LineKind::Keep => bar.println(format!("    {trimmed}")),
            LineKind::Transient => bar.set_message(trimmed.to_owned()),
        }
    }
    let _ = t1.join();
    let _ = t2.join();
    let status = child
        .wait()
        .with_context(|| format!("{step}: waiting for the process"))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    if !status.success() {
        for line in &stderr_lines {
            eprintln!("{line}");
        }
        bail!(
            "{step} failed ({status}); the full output is in {}",
            log.display()
        );
    }
    if !stderr_lines.is_empty() {
        // Warnings (e.g. deprecations) are still worth reading.
        for line in &stderr_lines {
            eprintln!("{line}");
        }
    }
    Ok(elapsed)
}
