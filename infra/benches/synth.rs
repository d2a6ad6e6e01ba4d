//! Synthesis of the full `prod` stack as a whole process: wall time per run and peak resident
//! memory (`getrusage(RUSAGE_CHILDREN)`), against the targets <= 30 ms and <= 20 MiB.

use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 20;

fn main() {
    let exe = env!("CARGO_BIN_EXE_infra");
    let out = deploy_files::workspace_root()
        .join("build")
        .join("infra-bench")
        .join("cdktf.out");
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = Command::new(exe)
            .args(["synth", "--env", "prod", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run infra synth");
        times.push(start.elapsed());
        assert!(status.success(), "infra synth failed");
    }
    times.sort();
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let peak_mib = usage.ru_maxrss as f64 / 1024.0; // Linux reports KiB
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("infra synth --env prod ({RUNS} runs, whole process)");
    println!(
        "  wall: min {:.2} ms, median {:.2} ms, max {:.2} ms (target <= 30 ms)",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    println!("  peak RSS: {peak_mib:.1} MiB (target <= 20 MiB)");
    let ok = ms(times[RUNS / 2]) <= 30.0 && peak_mib <= 20.0;
    println!("  {}", if ok { "within targets" } else { "OVER TARGET" });
}
