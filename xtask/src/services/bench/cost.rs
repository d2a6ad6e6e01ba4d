//! The price model of `cargo xtask bench`: idle cost per month and cost per million requests
//! of an environment, from AWS list prices, the environment file and what the stacks
//! synthesize (the alarms are counted in them, so a function added or removed changes the
//! figure by itself).

use anyhow::Result;
use infra::stack::StackOptions;

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
    let alarms = alarm_count(&c) as f64;
    let mut idle = p::KMS_KEY_PER_MONTH + alarms * p::ALARM_PER_MONTH + p::DASHBOARD_PER_MONTH;
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
    // One secret per declared name, billed per month whether read or not (the reads, once
    // per process and TTL, are too few to price).
    idle += infra::constructs::secrets::declared().len() as f64 * p::SECRET_PER_MONTH;
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

/// The CloudWatch alarms the environment's stacks create, counted in the synthesized JSON.
fn alarm_count(config: &infra::Config) -> usize {
    // The options only say where Terraform keeps local state; they create no resource.
    let options = StackOptions {
        local_state_dir: String::new(),
        local_endpoint: String::new(),
    };
    infra::synth::render(config, &options)
        .iter()
        .filter_map(|(_, stack)| stack["resource"]["aws_cloudwatch_metric_alarm"].as_object())
        .map(serde_json::Map::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per function errors and throttles, the API's three, per table two throttle alarms, per
    /// route 5xx and p99 latency, per queue its dead letters and its oldest message's age: all
    /// counted from the synthesized stack.
    #[test]
    fn alarms_are_counted_in_what_infra_synthesizes() {
        let config = infra::load_config("dev").unwrap();
        let routes: usize = catalog::FUNCTIONS.iter().map(|f| f.routes.len()).sum();
        assert_eq!(
            alarm_count(&config),
            2 * catalog::FUNCTIONS.len()
                + 3
                + 2 * catalog::tables::ALL.len()
                + 2 * routes
                + 2 * catalog::queues().count()
        );
    }
}
