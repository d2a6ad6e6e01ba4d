//! What sits in front of the API: a WAF web ACL on the stage, CloudFront, and a custom domain
//! with an ACM certificate validated through Route 53 (the certificate in the bootstrap stack).
//! All optional.

use super::api::RestApi;
use super::security::Key;
use super::state;
use crate::config::{CloudFront, Domain, Names, Waf};
use crate::iam::{Scope, Statement, star};
use crate::tf::{Expr, Ref, Stack};
use serde_json::{Value, json};

/// WAF only logs to groups whose name starts with `aws-waf-logs-`.
pub const WAF_LOG_GROUP_PREFIX: &str = "aws-waf-logs-";

fn visibility(metric: &str) -> Value {
    json!([{ "cloudwatch_metrics_enabled": true, "metric_name": metric, "sampled_requests_enabled": true }])
}

fn managed_rule(name: &str, priority: u32) -> Value {
    json!({
        "name": name,
        "priority": priority,
        "override_action": [{ "none": [{}] }],
        "statement": [{ "managed_rule_group_statement": [{ "name": name, "vendor_name": "AWS" }] }],
        "visibility_config": visibility(name),
    })
}

/// A regional web ACL (AWS common rules, known bad inputs incl. Log4j, a per-IP rate limit)
/// associated with the stage, logging to a KMS-encrypted log group that keeps its entries as long
/// as the functions' (`log_retention_days` of `[lambda]`).
pub fn waf(
    stack: &mut Stack,
    names: Names,
    options: &Waf,
    log_retention_days: u32,
    key: &Key,
    api: &RestApi,
) {
    let acl = stack.resource(
        "aws_wafv2_web_acl",
        "api",
        json!({
            "name": names.name("api"),
            "description": "Protects the REST API stage",
            "scope": "REGIONAL",
            "default_action": [{ "allow": [{}] }],
            "rule": [
                managed_rule("AWSManagedRulesCommonRuleSet", 1),
                managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 2),
                managed_rule("AWSManagedRulesAnonymousIpList", 4),
                {
                    "name": "rate-limit-per-ip",
                    "priority": 3,
                    "action": [{ "block": [{}] }],
                    "statement": [{ "rate_based_statement": [{ "limit": options.rate_limit, "aggregate_key_type": "IP" }] }],
                    "visibility_config": visibility("rate-limit-per-ip"),
                },
            ],
            "visibility_config": visibility(&names.name("api")),
        }),
    );
    stack.resource(
        "aws_wafv2_web_acl_association",
        "api",
        json!({ "resource_arn": api.stage_arn(), "web_acl_arn": acl.attr("arn") }),
    );
    let logs = stack.resource(
        "aws_cloudwatch_log_group",
        "waf",
        json!({
            "name": format!("{WAF_LOG_GROUP_PREFIX}{}", names.name("api")),
            "retention_in_days": log_retention_days,
            "kms_key_id": key.arn(),
        }),
    );
    stack.resource(
        "aws_wafv2_web_acl_logging_configuration",
        "api",
        json!({
            "resource_arn": acl.attr("arn"),
            "log_destination_configs": [logs.attr("arn")],
            // Never log credentials.
            "redacted_fields": [
                { "single_header": [{ "name": "authorization" }] },
                { "single_header": [{ "name": "x-api-key" }] },
            ],
        }),
    );
}

/// IDs of AWS-managed CloudFront policies (stable, documented by AWS).
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
const SECURITY_HEADERS: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// CloudFront in front of the regional API: HTTPS only, no caching (responses are per user),
/// all headers but Host forwarded (API Gateway routes on its own host name).
pub fn cloudfront(stack: &mut Stack, scope: &Scope, options: &CloudFront, api: &RestApi) -> Expr {
    let origin_id = "api";
    let distribution = stack.resource(
        "aws_cloudfront_distribution",
        "api",
        json!({
            "enabled": true,
            "comment": scope.names().name("api"),
            "price_class": options.price_class,
            "http_version": "http2and3",
            "origin": [{
                "origin_id": origin_id,
                "domain_name": format!("{}.execute-api.{}.amazonaws.com", api.id(), scope.account.region),
                "origin_path": format!("/{}", api.stage_name()),
                "custom_origin_config": [{
                    "http_port": 80,
                    "https_port": 443,
                    "origin_protocol_policy": "https-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                }],
            }],
            "default_cache_behavior": [{
                "target_origin_id": origin_id,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
                "cached_methods": ["GET", "HEAD"],
                "compress": true,
                "cache_policy_id": CACHING_DISABLED,
                "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_HEADER,
                "response_headers_policy_id": SECURITY_HEADERS,
            }],
            "restrictions": [{ "geo_restriction": [{ "restriction_type": "none" }] }],
            "viewer_certificate": [{ "cloudfront_default_certificate": true }],
        }),
    );
    distribution.attr("domain_name")
}

/// The bootstrap stack's output with the custom domain's validated certificate.
pub const CERTIFICATE_OUTPUT: &str = "certificate_arn";

fn hosted_zone(stack: &mut Stack, options: &Domain) -> Ref {
    stack.data(
        "aws_route53_zone",
        "api",
        json!({ "name": options.hosted_zone, "private_zone": false }),
    )
}

/// Bootstrap stack: the ACM certificate for the custom domain, validated by DNS in the hosted
/// zone; the validation's ARN (ready once ACM issued it) for [`custom_domain`]. Here because
/// requesting a certificate with tags takes `acm:AddTagsToCertificate`, which ACM can't limit to
/// the new certificate: the deploy role could tag any untagged certificate of the account into
/// its environment (`constructs::delivery`). An administrator requests it instead.
pub fn certificate(stack: &mut Stack, options: &Domain) -> Expr {
    let zone = hosted_zone(stack, options);
    let cert = stack.resource(
        "aws_acm_certificate",
        "api",
        json!({
            "domain_name": options.name,
            "validation_method": "DNS",
            "lifecycle": { "create_before_destroy": true },
        }),
    );
    let option = Expr::raw(format!(
        "tolist({})[0]",
        cert.attr("domain_validation_options").inner()
    ));
    let record = stack.resource(
        "aws_route53_record",
        "api_validation",
        json!({
            "zone_id": zone.attr("zone_id"),
            "name": Expr::raw(format!("{}.resource_record_name", option.inner())),
            "type": Expr::raw(format!("{}.resource_record_type", option.inner())),
            "records": [Expr::raw(format!("{}.resource_record_value", option.inner()))],
            "ttl": 300,
            "allow_overwrite": true,
        }),
    );
    let validation = stack.resource(
        "aws_acm_certificate_validation",
        "api",
        json!({ "certificate_arn": cert.attr("arn"), "validation_record_fqdns": [record.attr("fqdn")] }),
    );
    validation.attr("certificate_arn")
}

/// Service stack: `https://<domain>` for the API: a regional API Gateway domain name with TLS
/// 1.2 and the bootstrap stack's [`certificate`] (from its outputs), a base path mapping to the
/// stage and an alias record. A bootstrap stack applied before the certificate moved there has
/// no such output, and the plan fails naming it: `cargo xtask bootstrap` adds it.
pub fn custom_domain(stack: &mut Stack, options: &Domain, api: &RestApi) -> String {
    let zone = hosted_zone(stack, options);
    let certificate =
        state::outputs_of(stack, "bootstrap").attr(&format!("outputs.{CERTIFICATE_OUTPUT}"));
    let domain = stack.resource(
        "aws_api_gateway_domain_name",
        "api",
        json!({
            "domain_name": options.name,
            "regional_certificate_arn": certificate,
            "security_policy": "TLS_1_2",
            "endpoint_configuration": [{ "types": ["REGIONAL"] }],
        }),
    );
    stack.resource(
        "aws_api_gateway_base_path_mapping",
        "api",
        json!({ "api_id": api.id(), "stage_name": api.stage_name(), "domain_name": domain.attr("domain_name") }),
    );
    stack.resource(
        "aws_route53_record",
        "api",
        json!({
            "zone_id": zone.attr("zone_id"),
            "name": domain.attr("domain_name"),
            "type": "A",
            "alias": [{
                "name": domain.attr("regional_domain_name"),
                "zone_id": domain.attr("regional_zone_id"),
                "evaluate_target_health": false,
            }],
        }),
    );
    format!("https://{}", options.name)
}

/// What the deploy role needs for the web ACL (`[options.waf]`): the ACL, its association with
/// this environment's stages, and its log delivery.
pub fn waf_management_statements(scope: &Scope) -> Vec<Statement> {
    let pre = scope.prefix;
    let in_region = |service: &str, resource: &str| scope.in_region(service, resource);
    let api = |path: &str| super::api::arn(scope, path);
    let mut s = Vec::new();
    let webacl = in_region("wafv2", &format!("regional/webacl/{pre}*/*"));
    let stages = api("/restapis/*/stages/*");
    s.push(Statement::allow(
        "WebAcl",
        &[
            "wafv2:CreateWebACL",
            "wafv2:GetWebACL",
            "wafv2:UpdateWebACL",
            "wafv2:DeleteWebACL",
            "wafv2:ListTagsForResource",
            "wafv2:TagResource",
            "wafv2:UntagResource",
            "wafv2:AssociateWebACL",
            "wafv2:DisassociateWebACL",
            "wafv2:GetWebACLForResource",
            "wafv2:PutLoggingConfiguration",
            "wafv2:GetLoggingConfiguration",
            "wafv2:DeleteLoggingConfiguration",
        ],
        vec![
            webacl,
            in_region("wafv2", "regional/managedruleset/*/*"),
            stages.clone(),
        ],
    ));
    // Only on this environment's stages (a stage inherits its REST API's tags).
    s.push(
        Statement::allow("WebAclOnTheStage", &["apigateway:SetWebACL"], vec![stages])
            .condition(scope.owned_condition()),
    );
    s.push(star(
        "WafLogDelivery",
        &[
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
        ],
    ));
    s
}

/// What the deploy role needs for the custom domain (`[options.domain]`): reading the
/// bootstrap stack's certificate, the hosted zone, and the API's own record.
pub fn domain_management_statements(scope: &Scope, domain: &Domain) -> Vec<Statement> {
    let p = &scope.account.partition;
    let shared = scope.shared();
    let in_region = |service: &str, resource: &str| scope.in_region(service, resource);
    let mut s = Vec::new();
    // The certificate is the bootstrap stack's (`edge::certificate`): read, never
    // requested, tagged or deleted here, so no untagged certificate of the account can be
    // tagged into this environment. ACM supports aws:ResourceTag on certificates:
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscertificatemanager.html
    s.push(
        Statement::allow(
            "ReadTheCertificateOfThisEnvironment",
            &["acm:DescribeCertificate", "acm:ListTagsForCertificate"],
            vec![in_region("acm", "certificate/*")],
        )
        .condition(shared.owned_condition()),
    );
    s.push(star(
        "FindHostedZone",
        &["route53:ListHostedZones", "route53:ListHostedZonesByName"],
    ));
    s.push(Statement::allow(
        "ReadHostedZone",
        &[
            "route53:GetHostedZone",
            "route53:ListResourceRecordSets",
            "route53:ListTagsForResource",
        ],
        vec![format!("arn:{p}:route53:::hostedzone/*")],
    ));
    // Only the API's own name: the certificate's validation records are the bootstrap
    // stack's.
    s.push(
        Statement::allow(
            "ApiRecordsOnly",
            &["route53:ChangeResourceRecordSets"],
            vec![format!("arn:{p}:route53:::hostedzone/*")],
        )
        .condition(json!({ "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                domain.name.to_ascii_lowercase(),
            ],
        } })),
    );
    s.push(Statement::allow(
        "RecordChanges",
        &["route53:GetChange"],
        vec![format!("arn:{p}:route53:::change/*")],
    ));
    s
}
