//! SIGINT and SIGTERM during a deploy. A cancelled or timed-out GitHub job gets SIGINT, then
//! SIGTERM 7.5 s later, then the whole process tree is killed; by default the signal would
//! kill xtask on the spot and Terraform with it, holding its state lock, with a release
//! half-shifted. Once [`install`]ed, a signal only raises a flag: a running external program
//! (Terraform) gets one SIGINT, which makes it stop gracefully and release its lock, and is
//! waited for ([`super::progress::stream`]); a release stops at its next check and moves the
//! aliases back ([`sleep`], [`check`]); the deploy then fails with the signal's name.
//!
//! A plain `sigaction` handler that stores the signal number (async-signal-safe) rather than
//! tokio's signal streams: the pipeline is synchronous and polls, and needs no runtime for it.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// The first SIGINT or SIGTERM received since [`install`] (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only the first one counts; the runner's SIGTERM after its SIGINT changes nothing.
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM request a stop instead of killing the process.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe;
        // sigaction is given a zeroed, then filled struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    INSTALLED.store(true, Ordering::SeqCst);
}

/// Whether [`install`] ran: external programs then run in a process group of their own, so
/// a terminal's Ctrl-C reaches them only through xtask, once.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
}

/// The name of the signal that asked this process to stop, if one did.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}

/// Fails, naming the signal, when one asked this process to stop: called before `what`.
pub fn check(what: &str) -> Result<()> {
    match received() {
        Some(signal) => bail!("{what} not started: stopped by {signal}"),
        None => Ok(()),
    }
}

/// Sleeps for `duration`, or fails as soon as a signal asked this process to stop.
pub fn sleep(duration: Duration) -> Result<()> {
    let until = Instant::now() + duration;
    loop {
        if let Some(signal) = received() {
            bail!("stopped by {signal}");
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Sends SIGINT to the process `pid` (an external program xtask started).
pub fn interrupt(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a child's pid and a valid signal number.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}

#[cfg(test)]
pub(crate) fn raise_for_test(signal: libc::c_int) {
    // SAFETY: raise(3) with a valid signal number, after `install` set a handler.
    unsafe {
        libc::raise(signal);
    }
}
