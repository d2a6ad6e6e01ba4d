//! `cargo xtask bench`: the figures that matter to someone deploying often,
//! printed, never asserted: no-op deploy, code-only change (excluding the
//! compile), package sizes, synth time, cold start of each release binary,
//! `watch`'s save-to-served time and a cost estimate per environment.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use local_api::function_env::{ConfigSource, FunctionSpec};
use local_api::instance::{Instance, InvokeError};
use xshell::Shell;

use crate::base::env::{self, Env};
use crate::base::{process, progress};
use crate::cli::BenchArgs;
use crate::services::artifacts::{build, package};
use crate::services::deploy::{self, Options};
use crate::services::stacks::synth;
use crate::services::{smoke, target, watch};

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
        let args = Options {
            no_serve: true,
            ..Options::default()
        };
        let dir = binaries.paths["health"]
            .parent()
            .expect("binary has a folder")
            .to_path_buf();
        let prebuilt = Options {
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
                &Options {
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
        let served = Options {
            prebuilt: Some(dir),
            ..Options::default()
        };
        deploy::deploy(sh, env, &served)?;
        let (target, moto) = target::target(env)?;
        let load = smoke::burst(sh, env, &target, moto.as_ref(), burst)?;
        let refused = |key: &str| load["load"][key].as_u64().unwrap_or_default();
        let (registered, unknown) = (
            refused("refused_login_registered_p50_ms"),
            refused("refused_login_unknown_p50_ms"),
        );
        human.push(format!(
            "refused log-in, median of {burst} each: registered address {registered} ms, \
             unknown address {unknown} ms (alike: timing does not tell which addresses exist)"
        ));
        figures.insert(
            "refused_login_median_ms".into(),
            serde_json::json!({ "registered": registered, "unknown": unknown }),
        );
        let lambda = infra::load_config(&env.name)?.lambda;
        human.push(format!(
            "peak resident memory per function after {} concurrent registrations and log-ins:",
            burst
        ));
        let mut peaks = serde_json::Map::new();
        let mut sizes = serde_json::Map::new();
        for (function, peak_mb) in peak_memory(env) {
            let Some(declaration) = catalog::find(&function) else {
                continue;
            };
            let memory_mb = u64::from(lambda.memory_mb_of(declaration));
            let warning = if peak_mb * 100 > memory_mb * 80 {
                "  WARNING: over 80% of memory_mb; Lambda kills a function that outgrows it"
            } else {
                ""
            };
            human.push(format!(
                "  {function:<9} {peak_mb} MB ({}% of {memory_mb} MB){warning}",
                peak_mb * 100 / memory_mb
            ));
            sizes.insert(function.clone(), memory_mb.into());
            peaks.insert(function, peak_mb.into());
        }
        figures.insert("peak_memory_mb".into(), peaks.into());
        figures.insert("memory_mb".into(), sizes.into());
        // The development loop, on the server that is running now.
        progress::step("Bench: `watch`, a one-line change of the health handler until served");
        let rebuilt = watch::bench(sh, env)?;
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
        "cost estimate (AWS list prices, us-east-1; see PRICES in xtask/src/commands/bench.rs):"
            .to_owned(),
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
    progress::finish(env.json, &figures.into(), human.join("\n"));
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
    if process::find_program("cargo-zigbuild").is_some() {
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

/// One cold start, from the process's start to its first response: the local API server's
/// execution environment (its Runtime API and process supervision, `local_api::instance`)
/// hands the binary a REST (v1) `GET /health` event.
fn cold_start(env: &Env, function: &str, binary: &Path) -> Result<Duration> {
    let name = env.function_name(function);
    let variables = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            BENCH_MEMORY_MB.to_string(),
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_REGION", env.region.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        // Nothing listens here: a function that calls AWS at start fails fast.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_owned()),
        ("USERS_TABLE", format!("{}users", env.prefix)),
        ("SESSIONS_TABLE", format!("{}sessions", env.prefix)),
    ];
    let log_file = env.dir().join("logs").join(format!("bench-{function}.log"));
    std::fs::create_dir_all(env.dir().join("logs"))?;
    let spec = FunctionSpec {
        short: function.to_owned(),
        arn: format!("arn:aws:lambda:{}:123456789012:function:{name}", env.region),
        name,
        version: "$LATEST".to_owned(),
        bootstrap: binary.to_path_buf(),
        env: variables
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
        timeout: Duration::from_secs(30),
        memory_mb: BENCH_MEMORY_MB,
        log_file,
        source: ConfigSource::Outputs("the benchmark".to_owned()),
    };
    process::block_on(async {
        let started = Instant::now();
        let instance = Instance::spawn(Arc::new(spec))
            .await
            .map_err(|e| anyhow!("starting {}: {e}", binary.display()))?;
        match instance
            .invoke("bench-request-1", health_event().to_string().into())
            .await
        {
            Ok(_) => Ok(started.elapsed()),
            Err(InvokeError::Timeout) => {
                bail!("{function} did not answer its first invocation within 30 s")
            }
            Err(err) => bail!("{function} reported an error instead of a response: {err}"),
        }
    })
}

/// The memory size the cold starts run with (a process that outgrows it is killed).
const BENCH_MEMORY_MB: u64 = 256;

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
    // Every request priced at the largest memory size of the environment's functions.
    let memory_mb = catalog::FUNCTIONS
        .iter()
        .map(|f| c.lambda.memory_mb_of(f))
        .max()
        .unwrap_or_default();
    let mut per_million = p::REST_API_PER_MILLION
        + p::LAMBDA_PER_MILLION_REQUESTS
        + million * a::LAMBDA_SECONDS * f64::from(memory_mb) / 1024.0 * gb_second
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
