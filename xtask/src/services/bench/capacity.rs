//! The capacity model of `cargo xtask bench`: how many requests per second an environment can
//! serve, per route and for the mix of requests measured, and which limit binds first. Pure
//! functions over the environment file and the CPU time per request measured on the release
//! binaries under the mix ([`super::route_cpu`]; `smoke --mix` defines the mix and its
//! shares); what AWS documents is in [`aws`], what each route asks of DynamoDB in [`CALLS`].
//!
//! The limits, each as requests per second:
//! - **API throttle**: the stage's `throttling_rate_limit` and the usage plan of the client that
//!   sends the traffic (`[[api.clients]]`, the first: the app). The burst only absorbs spikes.
//! - **Lambda**: a function serves `concurrency / duration` requests per second. Its CPU share
//!   is `memory_mb / 1769` of a vCPU (Lambda's documented ratio), at most one vCPU for these
//!   single-threaded handlers (argon2id runs with one lane), so a request takes its measured
//!   CPU time divided by the share plus one DynamoDB round trip per sequential call. The
//!   concurrency is the function's reserved concurrency (or the account's unreserved pool).
//! - **DynamoDB**: read and write capacity units per request on each table, against the most
//!   autoscaling may provision (`[data.autoscaling] max_capacity`, per table and per index) or
//!   on-demand's per-table quota. Indexes get the same maximum as their table and are written
//!   at most once per table write (transactions double the table's units, not the index's), so
//!   the tables bind before their indexes.
//!
//! Not modelled: how fast capacity arrives. DynamoDB autoscaling steps up from `min_capacity`
//! after minutes of high use (the 300 s of burst credit of unused capacity bridges part of it);
//! Lambda adds 1,000 execution environments per function every 10 s, far above these reserved
//! concurrencies. The model answers for sustained load after the ramp. Nor the WAF's per-address
//! rate limit (`[options.waf] rate_limit`, requests per 5 minutes per IP): the model's traffic
//! comes from many addresses.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use catalog::tables::{SESSIONS, USERS};
use infra::config::Billing;

/// What AWS documents, the only figures the model does not read from the environment.
pub mod aws {
    /// Lambda gives one vCPU's worth of CPU at 1,769 MB, in proportion below and above it
    /// (AWS Lambda developer guide, "Configuring Lambda function memory").
    pub const MB_PER_VCPU: f64 = 1769.0;
    /// The default concurrency quota of an account in a region.
    pub const ACCOUNT_CONCURRENCY: f64 = 1000.0;
    /// Lambda keeps this much of the account's concurrency unreserved.
    pub const UNRESERVED_MINIMUM: f64 = 100.0;
    /// The default per-table throughput quota of an on-demand table, in read or write units.
    pub const ON_DEMAND_TABLE_UNITS: f64 = 40_000.0;
    /// A DynamoDB call's round trip inside a region: "single-digit milliseconds", taken at the
    /// top of that range so the duration is not flattered.
    pub const DYNAMODB_ROUND_TRIP_MS: f64 = 10.0;
}

/// The throughput the model is asked about, in requests per second.
pub const GOAL_PER_SECOND: f64 = 1000.0;

/// What one request of a route asks of DynamoDB, as the functions' call log shows it
/// (`cargo xtask trace` on a request: the `dynamodb call` lines of `calls.rs`).
#[derive(Debug)]
pub struct Calls {
    pub method: &'static str,
    pub path: &'static str,
    /// Calls made one after another (calls made together, `tokio::join!`, count once).
    pub round_trips: u32,
    /// `(table, read units, write units)`, items under 1 KB: a strongly consistent read is one
    /// unit, a write one, each item of a transaction two.
    pub units: &'static [(&'static str, f64, f64)],
}

/// The routes the mix sends (`smoke --mix`, which defines the mix). Both reads authenticate
/// the bearer token: the session, then the user and the log-out marker together (three
/// consistent reads in two round trips). A log-in counts the attempt (update), reads the
/// `EMAIL#` item, the user and the log-out marker, starts the session in a transaction of three
/// items (the user and the marker checked, the session put) and clears the attempts (delete).
/// A registration puts the user and its `EMAIL#` item in one transaction.
pub const CALLS: [Calls; 4] = [
    Calls {
        method: "GET",
        path: "/users/me",
        round_trips: 2,
        units: &[(USERS.logical, 1.0, 0.0), (SESSIONS.logical, 2.0, 0.0)],
    },
    Calls {
        method: "GET",
        path: "/sessions/current",
        round_trips: 2,
        units: &[(USERS.logical, 1.0, 0.0), (SESSIONS.logical, 2.0, 0.0)],
    },
    Calls {
        method: "POST",
        path: "/sessions",
        round_trips: 6,
        units: &[(USERS.logical, 2.0, 2.0), (SESSIONS.logical, 1.0, 6.0)],
    },
    Calls {
        method: "POST",
        path: "/users",
        round_trips: 1,
        units: &[(USERS.logical, 0.0, 4.0)],
    },
];

impl Calls {
    /// `METHOD /path`, as the smoke report names routes.
    pub fn route(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What [`CALLS`] says of `route` (`METHOD /path`).
pub fn calls_of(route: &str) -> Result<&'static Calls> {
    CALLS
        .iter()
        .find(|calls| calls.route() == route)
        .with_context(|| {
            format!(
                "the mix sends `{route}`, and capacity::CALLS does not say what it asks of DynamoDB"
            )
        })
}

/// The function that serves `route` (`METHOD /path`), as the catalog declares it.
pub fn function_of(route: &str) -> Result<&'static str> {
    catalog::FUNCTIONS
        .iter()
        .find(|f| {
            f.routes
                .iter()
                .any(|r| format!("{} {}", r.method, r.path) == route)
        })
        .map(|f| f.name)
        .with_context(|| format!("no function serves `{route}`"))
}

/// One route of the mix as measured: its share of the requests and one request's CPU time.
#[derive(Debug, Clone, PartialEq)]
pub struct MixRoute {
    /// `METHOD /path`.
    pub route: String,
    pub share: f64,
    pub cpu_ms: f64,
}

/// The limits of one environment the model reads from its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests per second the API lets through for the app: the stage's throttle and the
    /// first client's usage plan, whichever is lower.
    pub api_per_second: f64,
    /// Memory of each function, MB.
    pub memory_mb: BTreeMap<String, f64>,
    /// Concurrent executions each function may have.
    pub concurrency: BTreeMap<String, f64>,
    /// The most read (and write) units per second a table may be given.
    pub table_units: f64,
    /// How that ceiling came about, for the report.
    pub table_units_source: String,
}

impl Limits {
    pub fn of(config: &infra::Config) -> Limits {
        let client_rate = config
            .api
            .clients
            .first()
            .map_or(f64::INFINITY, |c| c.rate_per_second);
        let reserved = config.lambda.reserved_concurrency;
        let concurrency = if reserved >= 0 {
            reserved as f64
        } else {
            aws::ACCOUNT_CONCURRENCY - aws::UNRESERVED_MINIMUM
        };
        let (table_units, table_units_source) =
            match (config.data.billing, &config.data.autoscaling) {
                (Billing::Provisioned, Some(scaling)) => (
                    f64::from(scaling.max_capacity),
                    format!(
                        "autoscaling max_capacity {} (target {}%)",
                        scaling.max_capacity, scaling.target_utilization
                    ),
                ),
                _ => (
                    aws::ON_DEMAND_TABLE_UNITS,
                    "on-demand per-table quota".to_owned(),
                ),
            };
        Limits {
            api_per_second: config.api.throttling_rate_limit.min(client_rate),
            memory_mb: catalog::FUNCTIONS
                .iter()
                .map(|f| (f.name.to_owned(), f64::from(config.lambda.memory_mb_of(f))))
                .collect(),
            concurrency: catalog::FUNCTIONS
                .iter()
                .map(|f| (f.name.to_owned(), concurrency))
                .collect(),
            table_units,
            table_units_source,
        }
    }

    /// The vCPU share of `function`: memory over 1,769 MB, at most one (one thread per request).
    fn vcpu(&self, function: &str) -> f64 {
        let memory = self.memory_mb.get(function).copied().unwrap_or(128.0);
        (memory / aws::MB_PER_VCPU).min(1.0)
    }

    fn concurrency(&self, function: &str) -> f64 {
        self.concurrency.get(function).copied().unwrap_or(0.0)
    }
}

/// One route's figures in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCapacity {
    pub route: String,
    pub share: f64,
    /// Measured CPU time per request, ms.
    pub cpu_ms: f64,
    /// Modelled duration on Lambda, ms.
    pub duration_ms: f64,
    /// The route alone: requests per second each limit allows.
    pub api_per_second: f64,
    pub lambda_per_second: f64,
    pub dynamodb_per_second: f64,
}

impl RouteCapacity {
    /// The lowest of the route's limits.
    pub fn limit(&self) -> f64 {
        self.api_per_second
            .min(self.lambda_per_second)
            .min(self.dynamodb_per_second)
    }
}

/// One limit of the mix: the total rate at which it is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// `API throttle`, `Lambda users`, `DynamoDB sessions reads`, ...
    pub limit: String,
    pub per_second: f64,
}

/// The model's answer for the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub routes: Vec<RouteCapacity>,
    /// Every limit, lowest first: the first binds.
    pub bounds: Vec<Bound>,
}

impl Verdict {
    /// The most the mix can sustain: the binding limit's rate.
    pub fn mix_per_second(&self) -> f64 {
        self.bounds.first().map_or(0.0, |b| b.per_second)
    }

    pub fn binding(&self) -> &str {
        self.bounds.first().map_or("none", |b| b.limit.as_str())
    }

    pub fn meets_goal(&self) -> bool {
        self.mix_per_second() >= GOAL_PER_SECOND
    }
}

/// The model for `limits` and the measured `mix`; an error names a route [`CALLS`] or the
/// catalog does not know.
pub fn model(limits: &Limits, mix: &[MixRoute]) -> Result<Verdict> {
    let mut routes = Vec::new();
    let mut bounds = vec![Bound {
        limit: "API throttle".to_owned(),
        per_second: limits.api_per_second,
    }];
    // A function's concurrency is shared by its routes: in-flight requests per request per
    // second of the mix is the sum of share × duration.
    let mut busy: BTreeMap<&str, f64> = BTreeMap::new();
    let mut units: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for measured in mix {
        let calls = calls_of(&measured.route)?;
        let function = function_of(&measured.route)?;
        let duration_ms = measured.cpu_ms / limits.vcpu(function)
            + f64::from(calls.round_trips) * aws::DYNAMODB_ROUND_TRIP_MS;
        *busy.entry(function).or_default() += measured.share * duration_ms / 1e3;
        for (table, read, write) in calls.units {
            *units.entry((table, "reads")).or_default() += measured.share * read;
            *units.entry((table, "writes")).or_default() += measured.share * write;
        }
        let dynamodb = calls
            .units
            .iter()
            .flat_map(|(_, read, write)| [read, write])
            .filter(|units| **units > 0.0)
            .map(|units| limits.table_units / units)
            .fold(f64::INFINITY, f64::min);
        routes.push(RouteCapacity {
            route: measured.route.clone(),
            share: measured.share,
            cpu_ms: measured.cpu_ms,
            duration_ms,
            api_per_second: limits.api_per_second,
            lambda_per_second: limits.concurrency(function) / (duration_ms / 1e3),
            dynamodb_per_second: dynamodb,
        });
    }
    for (function, seconds) in busy {
        bounds.push(Bound {
            limit: format!("Lambda {function} concurrency"),
            per_second: limits.concurrency(function) / seconds,
        });
    }
    for ((table, what), per_request) in units {
        if per_request > 0.0 {
            bounds.push(Bound {
                limit: format!("DynamoDB {table} {what}"),
                per_second: limits.table_units / per_request,
            });
        }
    }
    bounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    Ok(Verdict { routes, bounds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(api: f64, memory: f64, concurrency: f64, table_units: f64) -> Limits {
        let each = |v: f64| catalog::NAMES.iter().map(|f| (f.to_string(), v)).collect();
        Limits {
            api_per_second: api,
            memory_mb: each(memory),
            concurrency: each(concurrency),
            table_units,
            table_units_source: String::new(),
        }
    }

    /// The stated mix (80% reads, half each, 15% log-ins, 5% registrations) at these CPU times.
    fn mix(read: f64, log_in: f64, registration: f64) -> Vec<MixRoute> {
        [
            ("GET /users/me", 0.40, read),
            ("GET /sessions/current", 0.40, read),
            ("POST /sessions", 0.15, log_in),
            ("POST /users", 0.05, registration),
        ]
        .into_iter()
        .map(|(route, share, cpu_ms)| MixRoute {
            route: route.to_owned(),
            share,
            cpu_ms,
        })
        .collect()
    }

    #[test]
    fn every_route_with_calls_is_served_and_unknown_routes_are_refused() {
        for calls in &CALLS {
            function_of(&calls.route()).unwrap();
        }
        let unknown = MixRoute {
            route: "GET /nowhere".to_owned(),
            share: 1.0,
            cpu_ms: 1.0,
        };
        let error = model(&limits(1.0, 128.0, 1.0, 1.0), &[unknown]).unwrap_err();
        assert!(error.to_string().contains("GET /nowhere"), "{error}");
    }

    /// By hand, at 1,769 MB (one vCPU), 100 concurrent, 200 units, API 500:
    /// - a read: 1 ms CPU + 2 × 10 ms = 21 ms; a log-in 50 + 60 = 110 ms; a registration
    ///   50 + 10 = 60 ms.
    /// - `users` busy per mix request: 0.4 × 0.021 + 0.05 × 0.060 = 0.0114 s → 100 / 0.0114 =
    ///   8,772/s; `sessions`: 0.4 × 0.021 + 0.15 × 0.110 = 0.0249 s → 4,016/s.
    /// - sessions reads per request: 0.8 × 2 + 0.15 × 1 = 1.75 → 200 / 1.75 = 114.3/s, the
    ///   lowest: DynamoDB binds, far below the API's 500.
    #[test]
    fn the_lowest_limit_binds_and_the_figures_are_the_hand_computed_ones() {
        let verdict = model(&limits(500.0, 1769.0, 100.0, 200.0), &mix(1.0, 50.0, 50.0)).unwrap();
        let rate = |name: &str| {
            verdict
                .bounds
                .iter()
                .find(|b| b.limit == name)
                .unwrap()
                .per_second
        };
        assert!((rate("Lambda users concurrency") - 100.0 / 0.0114).abs() < 0.01);
        assert!((rate("Lambda sessions concurrency") - 100.0 / 0.0249).abs() < 0.01);
        assert!((rate("DynamoDB sessions reads") - 200.0 / 1.75).abs() < 1e-9);
        assert_eq!(rate("API throttle"), 500.0);
        assert_eq!(verdict.binding(), "DynamoDB sessions reads");
        assert!(!verdict.meets_goal());

        let log_in = &verdict.routes[2];
        assert_eq!(log_in.route, "POST /sessions");
        assert!((log_in.duration_ms - 110.0).abs() < 1e-9);
        assert!((log_in.lambda_per_second - 100.0 / 0.110).abs() < 1e-9);
        // Alone, a log-in writes 6 units on sessions: 200 / 6.
        assert!((log_in.dynamodb_per_second - 200.0 / 6.0).abs() < 1e-9);
        assert!((log_in.limit() - 200.0 / 6.0).abs() < 1e-9);
    }

    /// Less memory, less CPU: at 442.25 MB (a quarter vCPU) a 50 ms log-in takes 200 ms of CPU
    /// plus 60 ms, so `sessions` is busy 0.4 × (4 + 20) ms + 0.15 × 260 ms = 48.6 ms per mix
    /// request, and 10 concurrent carry 10 / 0.0486 = 205.8/s: below the API's 1,000 and the
    /// tables' 40,000 units, so Lambda binds.
    #[test]
    fn the_cpu_share_follows_memory() {
        let verdict = model(
            &limits(1000.0, aws::MB_PER_VCPU / 4.0, 10.0, 40_000.0),
            &mix(1.0, 50.0, 50.0),
        )
        .unwrap();
        assert_eq!(verdict.binding(), "Lambda sessions concurrency");
        assert!((verdict.mix_per_second() - 10.0 / 0.0486).abs() < 1e-6);
        // More than a vCPU buys nothing for one thread.
        let big = model(
            &limits(1000.0, 10_240.0, 10.0, 40_000.0),
            &mix(1.0, 50.0, 50.0),
        )
        .unwrap();
        let one = model(
            &limits(1000.0, 1769.0, 10.0, 40_000.0),
            &mix(1.0, 50.0, 50.0),
        )
        .unwrap();
        assert_eq!(big.bounds, one.bounds);
    }

    #[test]
    fn prod_serves_the_goal() {
        let prod = Limits::of(&infra::load_config("prod").unwrap());
        // Argon2id's log-in at a generous 100 ms of CPU, a read at 5 ms.
        let verdict = model(&prod, &mix(5.0, 100.0, 100.0)).unwrap();
        assert!(
            verdict.meets_goal(),
            "prod: {:.0}/s, bound by {}",
            verdict.mix_per_second(),
            verdict.binding()
        );
    }
}
