//! Peak resident memory of the functions' processes behind the local API server, read from
//! `/proc`, beside the memory size each function is given: a function that outgrows it is
//! killed by Lambda.

use std::collections::BTreeMap;

use anyhow::Result;

use super::processes;
use crate::base::env::Env;

/// One function's peak and the memory it is configured with, in MB.
pub struct Peak {
    pub function: String,
    pub peak_mb: u64,
    pub memory_mb: u64,
}

/// The peak of each function of the catalog that has a live process, with the environment's
/// memory size for it.
pub fn peaks(env: &Env) -> Result<Vec<Peak>> {
    let lambda = infra::load_config(&env.name)?.lambda;
    Ok(peak_memory(env)
        .into_iter()
        .filter_map(|(function, peak_mb)| {
            let declaration = catalog::find(&function)?;
            Some(Peak {
                memory_mb: u64::from(lambda.memory_mb_of(declaration)),
                function,
                peak_mb,
            })
        })
        .collect())
}

/// The largest peak resident memory (`VmHWM`, MB) among the live processes of each function
/// the local API server runs.
fn peak_memory(env: &Env) -> BTreeMap<String, u64> {
    let mut peaks = BTreeMap::new();
    for (function, proc_dir) in processes::function_processes(env) {
        let peak_kib = std::fs::read_to_string(proc_dir.join("status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
        if let Some(kib) = peak_kib {
            let peak = peaks.entry(function).or_insert(0);
            *peak = (*peak).max(kib.div_ceil(1024));
        }
    }
    peaks
}
