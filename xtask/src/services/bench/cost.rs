//! The price model of `cargo xtask bench` and `cargo xtask compare`: idle cost per month and
//! cost per million requests of synthesized stacks, from AWS list prices and what the stacks
//! create (alarms, NAT gateways, the functions' memory, ...), so a function added or removed,
//! or an environment file's option turned on, changes the figure by itself.

use anyhow::Result;
use infra::stack::StackOptions;
use serde::Serialize;
use serde_json::Value;

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
    pub const WAF_RULES: f64 = 3.0;
}

/// The two figures of the price model, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    pub idle_per_month: f64,
    pub per_million: f64,
}

/// Idle cost per month and cost per million requests for one environment: its stacks as this
/// checkout synthesizes them, priced by [`price`].
pub fn estimate(name: &str) -> Result<Cost> {
    let config = infra::load_config(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The options only say where Terraform keeps local state; they create no resource.
    let options = StackOptions {
        local_state_dir: String::new(),
        local_endpoint: String::new(),
    };
    Ok(price(&infra::synth::render(&config, &options)))
}

/// Prices synthesized stacks (`(name, Terraform JSON)`), reading every billed fact from what
/// Terraform would create (alarms, dashboards, NAT gateways, the web ACL, the API cache,
/// secrets, the functions' memory and architecture, a CloudFront distribution) and nothing from the
/// environment file. So the same model prices this checkout's stacks and those another commit
/// synthesized (`cargo xtask compare`, whose base is a pull request's target commit), and a
/// change to an environment file or to the code changes the figure by itself.
pub fn price(stacks: &[(String, Value)]) -> Cost {
    use assumptions as a;
    use prices as p;
    let resources = |kind: &'static str| {
        stacks
            .iter()
            .filter_map(move |(_, stack)| stack["resource"][kind].as_object())
            .flat_map(serde_json::Map::values)
    };
    // An emulator's provider points every service at it (`endpoints`): nothing is billed.
    let emulated = stacks
        .iter()
        .any(|(_, stack)| !stack["provider"]["aws"][0]["endpoints"].is_null());
    if emulated {
        return Cost {
            idle_per_month: 0.0,
            per_million: 0.0,
        };
    }
    let count = |kind: &'static str| resources(kind).count() as f64;
    let web_acls = count("aws_wafv2_web_acl");
    // One KMS key, the stack key, as the model has always counted it.
    let mut idle = p::KMS_KEY_PER_MONTH
        + count("aws_cloudwatch_metric_alarm") * p::ALARM_PER_MONTH
        + count("aws_cloudwatch_dashboard") * p::DASHBOARD_PER_MONTH
        + count("aws_nat_gateway") * p::NAT_GATEWAY_PER_HOUR * p::HOURS_PER_MONTH
        + web_acls * (p::WAF_ACL_PER_MONTH + a::WAF_RULES * p::WAF_RULE_PER_MONTH)
        // One secret per declared name, billed per month whether read or not (the reads,
        // once per process and TTL, are too few to price).
        + count("aws_secretsmanager_secret") * p::SECRET_PER_MONTH;
    for stage in resources("aws_api_gateway_stage") {
        if stage["cache_cluster_enabled"].as_bool() == Some(true)
            && let Some((_, hourly)) = p::API_CACHE_PER_HOUR
                .iter()
                .find(|(size, _)| stage["cache_cluster_size"].as_str() == Some(*size))
        {
            idle += hourly * p::HOURS_PER_MONTH;
        }
    }
    let million = 1e6;
    // Every request priced at the dearest GB-second of the functions (the largest memory).
    let gb_seconds_price = resources("aws_lambda_function")
        .map(|function| {
            let memory_mb = function["memory_size"].as_f64().unwrap_or_default();
            let arm = function["architectures"][0].as_str() == Some("arm64");
            let gb_second = if arm {
                p::LAMBDA_GB_SECOND_ARM
            } else {
                p::LAMBDA_GB_SECOND_X86
            };
            memory_mb / 1024.0 * gb_second
        })
        .fold(0.0, f64::max);
    let mut per_million = p::REST_API_PER_MILLION
        + p::LAMBDA_PER_MILLION_REQUESTS
        + million * a::LAMBDA_SECONDS * gb_seconds_price
        + a::DYNAMODB_READS * p::DYNAMODB_PER_MILLION_READS
        + a::DYNAMODB_WRITES * p::DYNAMODB_PER_MILLION_WRITES
        + million * a::LOG_BYTES / 1e9 * p::LOGS_PER_GB
        + a::TRACED_FRACTION * p::XRAY_PER_MILLION_TRACES;
    if web_acls > 0.0 {
        per_million += p::WAF_PER_MILLION;
    }
    if count("aws_cloudfront_distribution") > 0.0 {
        per_million += p::CLOUDFRONT_PER_MILLION_HTTPS;
    }
    Cost {
        idle_per_month: idle,
        per_million,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stacks(env: &str) -> Vec<(String, Value)> {
        let config = infra::load_config(env).unwrap();
        let options = StackOptions {
            local_state_dir: String::new(),
            local_endpoint: String::new(),
        };
        infra::synth::render(&config, &options)
    }

    fn assert_cost(env: &str, idle_per_month: f64, per_million: f64) {
        let cost = estimate(env).unwrap();
        assert!(
            (cost.idle_per_month - idle_per_month).abs() < 1e-9
                && (cost.per_million - per_million).abs() < 1e-9,
            "{env}: {cost:?}"
        );
    }

    /// The figures the model gave when it read the environment files: reading the stacks
    /// instead changed none. dev: key, 43 alarms, dashboard, one secret; arm64 at 256 MB.
    /// prod: the same plus three NAT gateways, the web ACL and the 0.5 GB API cache; 512 MB.
    #[test]
    fn each_environment_is_priced_from_what_its_stacks_create() {
        assert_cost("dev", 1.0 + 4.3 + 3.0 + 0.4, 5.304_167_5);
        assert_cost(
            "prod",
            1.0 + 4.3 + 3.0 + 3.0 * 0.045 * 730.0 + 8.0 + 0.02 * 730.0 + 0.4,
            6.070_835,
        );
        assert_cost("local", 0.0, 0.0);
    }

    /// Per function errors and throttles, the API's three, per table two throttle alarms, per
    /// route 5xx and p99 latency, per queue its dead letters and its oldest message's age: all
    /// counted from the synthesized stack, so removing one is priced at once.
    #[test]
    fn alarms_are_counted_in_what_infra_synthesizes() {
        let mut dev = stacks("dev");
        let alarms = |stacks: &[(String, Value)]| -> usize {
            stacks
                .iter()
                .filter_map(|(_, s)| s["resource"]["aws_cloudwatch_metric_alarm"].as_object())
                .map(serde_json::Map::len)
                .sum()
        };
        let routes: usize = catalog::FUNCTIONS.iter().map(|f| f.routes.len()).sum();
        assert_eq!(
            alarms(&dev),
            2 * catalog::FUNCTIONS.len()
                + 3
                + 2 * catalog::tables::ALL.len()
                + 2 * routes
                + 2 * catalog::queues().count()
        );
        let before = price(&dev);
        let (_, service) = dev.iter_mut().find(|(name, _)| name == "service").unwrap();
        let all = service["resource"]["aws_cloudwatch_metric_alarm"]
            .as_object_mut()
            .unwrap();
        let first = all.keys().next().unwrap().clone();
        all.remove(&first);
        let after = price(&dev);
        assert!((before.idle_per_month - after.idle_per_month - 0.10).abs() < 1e-9);
        assert_eq!(before.per_million, after.per_million);
    }
}
