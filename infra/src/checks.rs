//! Security-scanner findings the stacks have on purpose, with the reason: the checkov checks the
//! `dev` environment fails to save cost, the ones every environment fails until a named piece
//! of work lands, and the parliament (IAM policy linter) findings that
//! AWS's own documentation shows to be wrong. These are the one list: the checkov test fails
//! when `dev` fails anything not listed here (and `prod` must pass every check with none
//! skipped); the parliament test fails on any finding not listed here, and on a listed one
//! that no longer occurs.

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

/// `(check id, what every environment, prod included, lacks until which work lands)`. The
/// checkov test fails when one of them passes again, so the entry leaves with the work.
pub const PENDING: &[(&str, &str)] = &[];

/// A parliament finding that is not a flaw of the policy, with the AWS documentation that
/// shows it. It matches a finding whose `issue` is `issue`, whose policy file name (see
/// `infra/tests/parliament.rs`: `<env>-<stack>-<type>-<name>-<field>.json`) contains `file`
/// and whose `detail` contains `detail`.
pub struct FalsePositive {
    pub issue: &'static str,
    pub file: &'static str,
    pub detail: &'static str,
    pub why: &'static str,
}

/// Every parliament finding the synthesized policies keep, each with why it is wrong.
pub const PARLIAMENT_FALSE_POSITIVES: &[FalsePositive] = &[
    FalsePositive {
        issue: "MALFORMED",
        file: "-assume_role_policy",
        detail: "neither Resource nor NotResource",
        why: "a trust policy names no Resource: the role it is attached to is the resource (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html); parliament reads every document as an identity policy",
    },
    FalsePositive {
        issue: "UNKNOWN_FEDERATION_SOURCE",
        file: "-delivery-aws_iam_role-github_",
        detail: "oidc-provider/token.actions.githubusercontent.com",
        why: "GitHub's OIDC provider, trusted exactly as AWS documents it (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html#idp_oidc_Create_GitHub); parliament knows only Cognito, Amazon, Facebook and Google",
    },
    FalsePositive {
        issue: "RESOURCE_STAR",
        file: "-aws_kms_key-",
        detail: "kms:",
        why: "in a key policy Resource \"*\" means this key and nothing else (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html); parliament reads a key policy as an identity policy",
    },
    FalsePositive {
        issue: "UNKNOWN_CONDITION_FOR_ACTION",
        file: "-aws_kms_key-",
        detail: "kms:EncryptionContext:aws:logs:arn",
        why: "CloudWatch Logs' key policy statement as AWS documents it, kms:Describe* included (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html): Logs calls DescribeKey with the encryption context",
    },
    FalsePositive {
        issue: "MISMATCHED_TYPE",
        file: "-aws_kms_key-",
        detail: "ArnLike requires a value of type Arn but given String",
        why: "kms:EncryptionContext:aws:logs:arn holds a log group's ARN and AWS's own policy matches it with ArnLike (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html)",
    },
    FalsePositive {
        issue: "UNKNOWN_CONDITION_FOR_ACTION",
        // Both boundaries: `service_boundary` and `stages_boundary`.
        file: "_boundary-policy",
        detail: "lambda:SourceFunctionArn",
        why: "Lambda adds lambda:SourceFunctionArn to every AWS request made from a function's execution environment, whatever the service, for use in identity policies (https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html)",
    },
    FalsePositive {
        issue: "RESOURCE_MISMATCH",
        file: "-delivery-aws_iam_policy-github_deploy",
        detail: "ec2:CreateSubnet",
        why: "EC2 authorizes CreateSubnet on the new subnet (subnet*) as well as the VPC (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html); the statement grants the new subnet with this environment's tags, the VPC comes from NetworkOfThisEnvironment. parliament's EC2 data predates resource-level create permissions",
    },
    FalsePositive {
        issue: "RESOURCE_MISMATCH",
        file: "-delivery-aws_iam_policy-github_deploy",
        detail: "ec2:CreateRouteTable",
        why: "EC2 authorizes CreateRouteTable on the new route table (route-table*) as well as the VPC (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html); the VPC comes from NetworkOfThisEnvironment",
    },
    FalsePositive {
        issue: "RESOURCE_MISMATCH",
        file: "-delivery-aws_iam_policy-github_deploy",
        detail: "ec2:CreateNatGateway",
        why: "EC2 authorizes CreateNatGateway on the new gateway (natgateway*) as well as the subnet and address (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html); those come from NetworkOfThisEnvironment",
    },
    FalsePositive {
        issue: "RESOURCE_MISMATCH",
        file: "-delivery-aws_iam_policy-github_deploy",
        detail: "ec2:CreateVpcEndpoint",
        why: "EC2 authorizes CreateVpcEndpoint on the new endpoint (vpc-endpoint*) as well as the VPC and route tables (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html); those come from NetworkOfThisEnvironment",
    },
    FalsePositive {
        issue: "RESOURCE_MISMATCH",
        file: "-delivery-aws_iam_policy-github_deploy",
        detail: "ec2:AuthorizeSecurityGroupEgress",
        why: "security group rules have their own resource type (security-group-rule) for Authorize/Revoke (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html); the group itself is granted by NetworkOfThisEnvironment, on this environment's groups only",
    },
];
