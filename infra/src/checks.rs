//! Security-scanner (checkov) checks the `dev` environment fails on purpose, with the reason.
//! This is the one list: the checkov test fails when `dev` fails anything not listed here, and
//! `prod` must pass every check with none skipped.

/// `(check id, why dev switches it off)`.
pub const DEV_COST_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "CKV_AWS_59",
        "GET /health is open without an API key in dev so uptime probes need no secret (SPEC: health open in dev)",
    ),
    (
        "CKV_AWS_120",
        "no API Gateway cache cluster in dev: it is billed per hour even when idle",
    ),
    (
        "CKV_AWS_225",
        "no method-level caching in dev: it needs the hourly-billed cache cluster",
    ),
    (
        "CKV_AWS_338",
        "dev keeps logs 14 days, not a year: log storage is billed per GB-month",
    ),
    (
        "CKV_AWS_117",
        "dev functions run outside a VPC: the NAT gateways a VPC needs are billed per hour",
    ),
    (
        "CKV2_AWS_29",
        "no WAF on the dev stage: a web ACL and its rules are billed per month",
    ),
    (
        "CKV_AWS_18",
        "no S3 server access logs in dev: a second bucket of log objects to pay for",
    ),
    (
        "CKV_AWS_144",
        "no cross-region replication in dev: doubles storage and adds transfer cost",
    ),
    (
        "CKV_AWS_272",
        "dev deploys unsigned packages: a Signer job per changed function slows every iteration; prod signs and enforces",
    ),
];
