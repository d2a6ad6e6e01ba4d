//! The function processes the local API server runs, found in `/proc`: the processes whose
//! executable is a package it extracted under `build/<env>/functions/<function>/`. The
//! benchmark reads their peak memory ([`super::memory`]) and CPU time ([`cpu_ms`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::base::env::Env;

/// Each live function process: its function's name and its `/proc/<pid>` folder.
pub fn function_processes(env: &Env) -> Vec<(String, PathBuf)> {
    let functions = env.dir().join("functions");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let proc_dir = entry.path();
            let exe = std::fs::read_link(proc_dir.join("exe")).ok()?;
            let function = exe.strip_prefix(&functions).ok()?.iter().next()?;
            Some((function.to_string_lossy().into_owned(), proc_dir))
        })
        .collect()
}

/// The CPU time (user + system, all threads) the live processes of each function have used,
/// in ms: fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks.
pub fn cpu_ms(env: &Env) -> BTreeMap<String, f64> {
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut totals = BTreeMap::new();
    for (function, proc_dir) in function_processes(env) {
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
            continue;
        };
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // `after_name` starts at field 3 (state): utime is field 14, stime 15.
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
            .sum();
        *totals.entry(function).or_insert(0.0) += ticks * 1e3 / ticks_per_second;
    }
    totals
}
