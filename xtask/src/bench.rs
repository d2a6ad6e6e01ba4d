//! `cargo xtask bench`: the figures that matter to someone deploying often,
//! printed, never asserted: no-op deploy, code-only change (excluding the
//! compile), package sizes, synth time, cold start of each release binary,
//! `watch`'s save-to-served time and a cost estimate per environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::cli::{BenchArgs, DeployArgs};
use crate::env::{self, Env};
use crate::{build, deploy, package, progress, synth};

pub fn run(sh: &Shell, env: &Env, args: BenchArgs) -> Result<()> {
    let mut figures = serde_json::Map::new();
    let mut human = Vec::new();

    // Packages (a release build when the binaries are stale).
    let manifest = package::build_check_package(env, None)?;
    let binaries = build::from_dir(&release_dir(env))?;
    let sizes: serde_json::Map<String, serde_json::Value> = manifest
        .functions
        .iter()
        .map(|(n, p)| (n.clone(), p.bytes.into()))
        .collect();
    human.push("package sizes (zip):".to_owned());
    for (name, pkg) in &manifest.functions {
        human.push(format!("  {name:<9} {}", package::human_bytes(pkg.bytes)));
    }
    figures.insert("package_bytes".into(), sizes.into());

    // Synthesis.
    let mut synth_times: Vec<f64> = Vec::new();
    for _ in 0..5 {
        synth_times.push(synth::synthesize(env)?.as_secs_f64());
    }
    let synth_median = median(&mut synth_times);
    human.push(format!("synth: {:.1} ms (median of 5)", synth_median * 1e3));
    figures.insert("synth_seconds".into(), synth_median.into());

    // Cold start: spawn to first response, through a Runtime API on loopback.
    human.push(format!(
        "cold start, spawn to first response (median of {}):",
        args.iterations
    ));
    let mut cold = serde_json::Map::new();
    for (name, path) in &binaries.paths {
        let mut samples = Vec::new();
        for _ in 0..args.iterations.max(1) {
            samples.push(cold_start(env, name, path)?.as_secs_f64());
        }
        let m = median(&mut samples);
        human.push(format!("  {name:<9} {:.1} ms", m * 1e3));
        cold.insert(name.to_string(), m.into());
    }
    figures.insert("cold_start_seconds".into(), cold.into());

    // Deploy figures need an environment to deploy to: the emulator by default.
    if !args.offline && env.emulated {
        let burst = args.burst;
        let args = DeployArgs {
            no_serve: true,
            ..DeployArgs::default()
        };
        let dir = binaries.paths["health"]
            .parent()
            .expect("binary has a folder")
            .to_path_buf();
        let prebuilt = DeployArgs {
            prebuilt: Some(dir.clone()),
            ..args.clone()
        };
        progress::step("Bench: making sure the stack is deployed");
        deploy::deploy(sh, env, &prebuilt)?;
        progress::step("Bench: no-op deploy");
        let t = Instant::now();
        deploy::deploy(sh, env, &args)?;
        let noop = t.elapsed().as_secs_f64();
        human.push(format!(
            "no-op deploy (incl. cargo's up-to-date check): {noop:.2} s"
        ));
        figures.insert("noop_deploy_seconds".into(), noop.into());

        let changed = env.build_root.join("bench").join("prebuilt");
        std::fs::create_dir_all(&changed)?;
        for (mode, hotswap) in [("terraform", false), ("hotswap", true)] {
            progress::step(format!("Bench: code-only change of one function ({mode})"));
            for (name, path) in &binaries.paths {
                std::fs::copy(path, changed.join(name))?;
            }
            // Trailing bytes change the package hash and nothing else.
            let stamp = format!("xtask-bench {mode} {:?}", std::time::SystemTime::now());
            std::fs::OpenOptions::new()
                .append(true)
                .open(changed.join("users"))?
                .write_all(stamp.as_bytes())?;
            let report = deploy::deploy(
                sh,
                env,
                &DeployArgs {
                    prebuilt: Some(changed.clone()),
                    hotswap,
                    ..args.clone()
                },
            )?;
            let seconds = report.timings.get("total").copied().unwrap_or_default()
                - report
                    .timings
                    .get("build_and_package")
                    .copied()
                    .unwrap_or_default();
            human.push(format!(
                "code-only change of `users`, excluding compile ({mode}{}): {seconds:.2} s (updated: {})",
                if hotswap { ", deploy --hotswap" } else { ", deploy" },
                report.changed_functions.join(", ")
            ));
            figures.insert(format!("code_change_{mode}_seconds"), seconds.into());
        }
        progress::step("Bench: restoring the original `users`");
        deploy::deploy(sh, env, &prebuilt)?;

        // Peak resident memory of each function's processes behind the local API server, after
        // a burst of concurrent registrations and log-ins (each hashes with argon2id, 19 MiB).
        progress::step(format!(
            "Bench: peak memory under a burst of {} registrations and log-ins",
            burst
        ));
        let served = DeployArgs {
            prebuilt: Some(dir),
            ..DeployArgs::default()
        };
        deploy::deploy(sh, env, &served)?;
        let (target, moto) = deploy::target(env)?;
        crate::smoke::burst(sh, env, &target, moto.as_ref(), burst)?;
        let memory_mb = u64::from(infra::load_config(&env.name)?.lambda.memory_mb);
        human.push(format!(
            "peak resident memory per function after {} concurrent registrations and log-ins \
             (memory_mb = {memory_mb}):",
            burst
        ));
        let mut peaks = serde_json::Map::new();
        for (function, peak_mb) in peak_memory(env) {
            let warning = if peak_mb * 100 > memory_mb * 80 {
                "  WARNING: over 80% of memory_mb; Lambda kills a function that outgrows it"
            } else {
                ""
            };
            human.push(format!(
                "  {function:<9} {peak_mb} MB ({}% of {memory_mb} MB){warning}",
                peak_mb * 100 / memory_mb
            ));
            peaks.insert(function, peak_mb.into());
        }
        figures.insert("peak_memory_mb".into(), peaks.into());
        figures.insert("memory_mb".into(), memory_mb.into());

        // The development loop, on the server that is running now.
        progress::step("Bench: `watch`, a one-line change of the health handler until served");
        let rebuilt = crate::watch::bench(sh, env)?;
        human.push(format!(
            "watch: a one-line change of `health` served {:.1} s after the save (dev profile; \
             compiled after {:.1} s)",
            rebuilt.served.as_secs_f64(),
            rebuilt.compiled.as_secs_f64()
        ));
        figures.insert(
            "watch_save_to_served_seconds".into(),
            rebuilt.served.as_secs_f64().into(),
        );
    }

    // Costs.
    human.push(
        "cost estimate (AWS list prices, us-east-1; see PRICES in xtask/src/bench.rs):".to_owned(),
    );
    let mut costs = serde_json::Map::new();
    for name in env::available(&env.root)? {
        let cost = estimate(&name)?;
        human.push(format!(
            "  {name:<6} idle ${:>7.2}/month   ${:>6.2} per million requests",
            cost.idle_per_month, cost.per_million
        ));
        costs.insert(name, serde_json::json!({ "idle_per_month_usd": cost.idle_per_month, "per_million_requests_usd": cost.per_million }));
    }
    figures.insert("cost".into(), costs.into());
    progress::result(env, &figures.into(), human.join("\n"));
    Ok(())
}

/// The largest peak resident memory (`VmHWM`, MB) among the live processes of each function
/// the local API server runs: the processes whose executable is a package it extracted under
/// `build/<env>/functions/<function>/`.
fn peak_memory(env: &Env) -> std::collections::BTreeMap<String, u64> {
    let functions = env.dir().join("functions");
    let mut peaks = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let proc_dir = entry.path();
        let Ok(exe) = std::fs::read_link(proc_dir.join("exe")) else {
            continue;
        };
        let Some(function) = exe
            .strip_prefix(&functions)
            .ok()
            .and_then(|rest| rest.iter().next())
            .map(|f| f.to_string_lossy().into_owned())
        else {
            continue;
        };
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

fn release_dir(env: &Env) -> std::path::PathBuf {
    if crate::process::find_program("cargo-zigbuild").is_some() {
        build::target_dir(env)
            .join(env.arch.triple())
            .join("release")
    } else {
        build::target_dir(env).join("release")
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// One cold start: our own Runtime API on a loopback port hands the binary a
/// REST (v1) `GET /health` event and the clock stops at its response.
fn cold_start(env: &Env, function: &str, binary: &Path) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let served = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = done_tx.clone();
            let served = Arc::clone(&served);
            std::thread::spawn(move || serve_runtime(stream, tx, &served));
        }
    });
    let name = env.function_name(function);
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", &env.region)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // Nothing listens here: a function that calls AWS at start fails fast.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("USERS_TABLE", format!("{}users", env.prefix))
        .env("SESSIONS_TABLE", format!("{}sessions", env.prefix))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let outcome = done_rx.recv_timeout(Duration::from_secs(30));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    match outcome {
        Ok(Ok(())) => Ok(elapsed),
        Ok(Err(what)) => bail!("{function} reported an error instead of a response: {what}"),
        Err(_) => bail!("{function} did not answer its first invocation within 30 s"),
    }
}

/// A minimal Lambda Runtime API: one `next` invocation, then waits.
fn serve_runtime(stream: TcpStream, done: mpsc::Sender<Result<(), String>>, served: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone socket"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        if path.ends_with("/invocation/next") {
            if served.swap(true, Ordering::SeqCst) {
                // The second poll: park until the process is killed.
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
            let event = health_event().to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: bench-request-1\r\n\
                 lambda-runtime-deadline-ms: {}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                event.len(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    + 30_000
            );
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(event.as_bytes());
        } else {
            let _ = writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}");
            let outcome = if path.ends_with("/response") {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&body).into_owned())
            };
            let _ = done.send(outcome);
        }
    }
}

/// An API Gateway REST (v1) proxy event for `GET /health`, stage `v1`.
fn health_event() -> serde_json::Value {
    serde_json::json!({
        "resource": "/health",
        "path": "/health",
        "httpMethod": "GET",
        "headers": { "accept": "application/json", "host": "bench.execute-api.us-east-1.amazonaws.com" },
        "multiValueHeaders": { "accept": ["application/json"], "host": ["bench.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "bench", "resourcePath": "/health", "httpMethod": "GET",
            "path": "/v1/health", "stage": "v1", "requestId": "bench-request-1",
            "accountId": "123456789012", "apiId": "bench", "protocol": "HTTP/1.1",
            "requestTimeEpoch": 0, "extendedRequestId": "bench",
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "xtask-bench" }
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// AWS list prices (USD, us-east-1), the one table the estimate uses. Update
/// here when AWS changes them.
mod prices {
    pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
    pub const LAMBDA_GB_SECOND_X86: f64 = 0.000_016_666_7;
    pub const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
    pub const REST_API_PER_MILLION: f64 = 3.50;
    pub const DYNAMODB_PER_MILLION_WRITES: f64 = 0.625;
    pub const DYNAMODB_PER_MILLION_READS: f64 = 0.125;
    pub const KMS_KEY_PER_MONTH: f64 = 1.00;
    pub const ALARM_PER_MONTH: f64 = 0.10;
    pub const DASHBOARD_PER_MONTH: f64 = 3.00;
    pub const LOGS_PER_GB: f64 = 0.50;
    pub const XRAY_PER_MILLION_TRACES: f64 = 5.00;
    pub const NAT_GATEWAY_PER_HOUR: f64 = 0.045;
    pub const WAF_ACL_PER_MONTH: f64 = 5.00;
    pub const WAF_RULE_PER_MONTH: f64 = 1.00;
    pub const WAF_PER_MILLION: f64 = 0.60;
    pub const CLOUDFRONT_PER_MILLION_HTTPS: f64 = 1.00;
    pub const SECRET_PER_MONTH: f64 = 0.40;
    /// API Gateway cache, per hour by size in GB.
    pub const API_CACHE_PER_HOUR: [(&str, f64); 8] = [
        ("0.5", 0.020),
        ("1.6", 0.038),
        ("6.1", 0.200),
        ("13.5", 0.250),
        ("28.4", 0.500),
        ("58.2", 1.000),
        ("118", 1.900),
        ("237", 3.800),
    ];
    pub const HOURS_PER_MONTH: f64 = 730.0;
}

/// What the estimate assumes about one request (documented with the figure).
mod assumptions {
    /// Average billed duration of one invocation.
    pub const LAMBDA_SECONDS: f64 = 0.05;
    pub const DYNAMODB_READS: f64 = 1.0;
    pub const DYNAMODB_WRITES: f64 = 0.5;
    /// Log volume per request (JSON access log + function log).
    pub const LOG_BYTES: f64 = 1_500.0;
    /// X-Ray's default sampling keeps about 5% beyond the first request a second.
    pub const TRACED_FRACTION: f64 = 0.05;
    /// Alarms the stack creates: errors and throttles per function, API 4XX, 5XX and
    /// latency, DynamoDB throttles per table.
    pub const ALARMS: f64 = 11.0;
    pub const WAF_RULES: f64 = 3.0;
}

pub struct Cost {
    pub idle_per_month: f64,
    pub per_million: f64,
}

/// Idle cost per month and cost per million requests for one environment.
pub fn estimate(name: &str) -> Result<Cost> {
    use assumptions as a;
    use prices as p;
    let c = infra::load_config(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if c.emulator {
        return Ok(Cost {
            idle_per_month: 0.0,
            per_million: 0.0,
        });
    }
    let mut idle = p::KMS_KEY_PER_MONTH + a::ALARMS * p::ALARM_PER_MONTH + p::DASHBOARD_PER_MONTH;
    if let Some(vpc) = &c.options.vpc {
        let nats = if vpc.nat_per_az {
            f64::from(vpc.az_count)
        } else {
            1.0
        };
        idle += nats * p::NAT_GATEWAY_PER_HOUR * p::HOURS_PER_MONTH;
    }
    if c.options.waf.is_some() {
        idle += p::WAF_ACL_PER_MONTH + a::WAF_RULES * p::WAF_RULE_PER_MONTH;
    }
    if let Some(cache) = &c.api.cache
        && let Some((_, hourly)) = p::API_CACHE_PER_HOUR
            .iter()
            .find(|(size, _)| *size == cache.size_gb)
    {
        idle += hourly * p::HOURS_PER_MONTH;
    }
    if c.options.secrets.is_some() {
        idle += p::SECRET_PER_MONTH;
    }
    let gb_second = if c.lambda.architecture.as_str() == "arm64" {
        p::LAMBDA_GB_SECOND_ARM
    } else {
        p::LAMBDA_GB_SECOND_X86
    };
    let million = 1e6;
    let mut per_million = p::REST_API_PER_MILLION
        + p::LAMBDA_PER_MILLION_REQUESTS
        + million * a::LAMBDA_SECONDS * f64::from(c.lambda.memory_mb) / 1024.0 * gb_second
        + a::DYNAMODB_READS * p::DYNAMODB_PER_MILLION_READS
        + a::DYNAMODB_WRITES * p::DYNAMODB_PER_MILLION_WRITES
        + million * a::LOG_BYTES / 1e9 * p::LOGS_PER_GB
        + a::TRACED_FRACTION * p::XRAY_PER_MILLION_TRACES;
    if c.options.waf.is_some() {
        per_million += p::WAF_PER_MILLION;
    }
    if c.options.cloudfront.is_some() {
        per_million += p::CLOUDFRONT_PER_MILLION_HTTPS;
    }
    Ok(Cost {
        idle_per_month: idle,
        per_million,
    })
}
