//! The optional VPC: private subnets across at least two AZs for the functions, NAT gateways
//! in public subnets for egress, a DynamoDB gateway endpoint so table traffic never leaves the
//! AWS network, flow logs, and a default security group with no rules.

use super::security::{Key, RoleKind, service_role};
use crate::config::Vpc;
use crate::iam::{Scope, Statement, star};
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde_json::{Value, json};

/// Where the VPC's flow logs go: `/aws/vpc/<prefix>flow-logs`.
pub const LOG_GROUP_PREFIX: &str = "/aws/vpc/";

/// The role VPC Flow Logs writes the flow logs with.
pub const FLOW_LOGS_ROLE: RoleKind = RoleKind {
    service: "vpc-flow-logs.amazonaws.com",
    managed: &[],
    source_account: false,
};

/// Handle the compute layer uses to place functions in the VPC.
#[derive(Clone, Debug)]
pub struct Network {
    private_subnets: Vec<Ref>,
    lambda_sg: Ref,
}

impl Network {
    pub fn private_subnet_ids(&self) -> Vec<Expr> {
        self.private_subnets.iter().map(|s| s.attr("id")).collect()
    }
    pub fn lambda_security_group_id(&self) -> Expr {
        self.lambda_sg.attr("id")
    }
}

/// The name (after the prefix) Terraform gives the VPC's default security group, which it
/// adopts and strips of every rule.
pub const DEFAULT_SECURITY_GROUP: &str = "default-deny";

/// Splits `10.0.0.0/16` style CIDRs with Terraform's own `cidrsubnet`, so the arithmetic is
/// the one operators know.
fn subnet_cidr(vpc: &Ref, newbits: u8, netnum: usize) -> Expr {
    Expr::raw(format!(
        "cidrsubnet({}, {newbits}, {netnum})",
        vpc.attr("cidr_block").inner()
    ))
}

/// `log_retention_days` is the functions' (`[lambda]`), which the flow logs share;
/// `boundary_arn` is the permissions boundary of the flow-log role.
pub fn vpc(
    stack: &mut Stack,
    scope: &Scope,
    options: &Vpc,
    log_retention_days: u32,
    boundary_arn: Option<&str>,
    key: &Key,
) -> Network {
    let names = scope.names();
    let tags = |name: String| json!({ "Name": name });
    let vpc = stack.resource(
        "aws_vpc",
        "main",
        json!({
            "cidr_block": options.cidr,
            "enable_dns_hostnames": true,
            "enable_dns_support": true,
            "tags": tags(names.name("vpc")),
        }),
    );
    // The default security group allows all traffic between members; strip it of every rule so
    // nothing can use it by accident.
    stack.resource(
        "aws_default_security_group",
        "main",
        json!({ "vpc_id": vpc.attr("id"), "ingress": [], "egress": [], "tags": tags(names.name(DEFAULT_SECURITY_GROUP)) }),
    );
    if options.flow_logs {
        let group = stack.resource(
            "aws_cloudwatch_log_group",
            "flow_logs",
            json!({
                "name": format!("{LOG_GROUP_PREFIX}{}", names.name("flow-logs")),
                "retention_in_days": log_retention_days,
                "kms_key_id": key.arn(),
            }),
        );
        let role = service_role(
            stack,
            boundary_arn,
            scope.account,
            "flow_logs",
            &names.name("flow-logs"),
            &FLOW_LOGS_ROLE,
            vec![Statement::allow(
                "WriteFlowLogs",
                &[
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                vec![
                    group.attr("arn").to_string(),
                    format!("{}:*", group.attr("arn")),
                ],
            )],
        );
        stack.resource(
            "aws_flow_log",
            "main",
            json!({
                "vpc_id": vpc.attr("id"),
                "traffic_type": "ALL",
                "log_destination_type": "cloud-watch-logs",
                "log_destination": group.attr("arn"),
                "iam_role_arn": role.arn(),
                "tags": tags(names.name("flow-logs")),
            }),
        );
    }
    let igw = stack.resource(
        "aws_internet_gateway",
        "main",
        json!({ "vpc_id": vpc.attr("id"), "tags": tags(names.name("igw")) }),
    );
    let public_rt = stack.resource(
        "aws_route_table",
        "public",
        json!({ "vpc_id": vpc.attr("id"), "tags": tags(names.name("public")) }),
    );
    stack.resource(
        "aws_route",
        "public_internet",
        json!({ "route_table_id": public_rt.attr("id"), "destination_cidr_block": "0.0.0.0/0", "gateway_id": igw.attr("id") }),
    );
    let count = usize::from(options.az_count);
    let mut nats = Vec::new();
    let mut private_subnets = Vec::new();
    let mut private_rts = Vec::new();
    for i in 0..count {
        // Zones are named, not looked up: the set is fixed in the plan and does not grow
        // silently when AWS adds a zone (letters a, b, c... exist in every region).
        let az = format!(
            "{}{}",
            scope.region,
            char::from(b'a' + u8::try_from(i).expect("az_count <= 6"))
        );
        let public = stack.resource(
            "aws_subnet",
            &format!("public_{i}"),
            json!({
                "vpc_id": vpc.attr("id"),
                "availability_zone": az,
                "cidr_block": subnet_cidr(&vpc, 4, i),
                // NAT gateways get Elastic IPs; nothing launched here needs an automatic one.
                "map_public_ip_on_launch": false,
                "tags": tags(names.name(&format!("public-{i}"))),
            }),
        );
        stack.resource(
            "aws_route_table_association",
            &format!("public_{i}"),
            json!({ "subnet_id": public.attr("id"), "route_table_id": public_rt.attr("id") }),
        );
        if i == 0 || options.nat_per_az {
            let eip = stack.resource(
                "aws_eip",
                &format!("nat_{i}"),
                json!({ "domain": "vpc", "tags": tags(names.name(&format!("nat-{i}"))), "depends_on": depends_on(&[&igw]) }),
            );
            nats.push(stack.resource(
                "aws_nat_gateway",
                &format!("az_{i}"),
                json!({
                    "allocation_id": eip.attr("id"),
                    "subnet_id": public.attr("id"),
                    "tags": tags(names.name(&format!("nat-{i}"))),
                    "depends_on": depends_on(&[&igw]),
                }),
            ));
        }
        let private = stack.resource(
            "aws_subnet",
            &format!("private_{i}"),
            json!({
                "vpc_id": vpc.attr("id"),
                "availability_zone": az,
                "cidr_block": subnet_cidr(&vpc, 4, i + 8),
                "map_public_ip_on_launch": false,
                "tags": tags(names.name(&format!("private-{i}"))),
            }),
        );
        let rt = stack.resource(
            "aws_route_table",
            &format!("private_{i}"),
            json!({ "vpc_id": vpc.attr("id"), "tags": tags(names.name(&format!("private-{i}"))) }),
        );
        let nat = &nats[if options.nat_per_az { i } else { 0 }];
        stack.resource(
            "aws_route",
            &format!("private_{i}_egress"),
            json!({ "route_table_id": rt.attr("id"), "destination_cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.attr("id") }),
        );
        stack.resource(
            "aws_route_table_association",
            &format!("private_{i}"),
            json!({ "subnet_id": private.attr("id"), "route_table_id": rt.attr("id") }),
        );
        private_subnets.push(private);
        private_rts.push(rt);
    }
    stack.resource(
        "aws_vpc_endpoint",
        "dynamodb",
        json!({
            "vpc_id": vpc.attr("id"),
            "service_name": format!("com.amazonaws.{}.dynamodb", scope.account.region),
            "vpc_endpoint_type": "Gateway",
            "route_table_ids": private_rts.iter().map(|r| r.attr("id").into()).collect::<Vec<Value>>(),
            "tags": tags(names.name("dynamodb")),
        }),
    );
    // Functions only call AWS APIs over HTTPS; no inbound rules at all.
    let lambda_sg = stack.resource(
        "aws_security_group",
        "lambda",
        json!({
            "name": names.name("lambda"),
            "description": "Lambda functions: HTTPS egress only",
            "vpc_id": vpc.attr("id"),
            "egress": [{
                "description": "HTTPS to AWS APIs",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": ["0.0.0.0/0"],
                "ipv6_cidr_blocks": [],
                "prefix_list_ids": [],
                "security_groups": [],
                "self": false,
            }],
            "tags": tags(names.name("lambda")),
        }),
    );
    Network {
        private_subnets,
        lambda_sg,
    }
}

/// What the deploy role needs to manage the VPC option. EC2 ARNs carry generated ids, so the environment's tags
/// decide: each kind of network resource is created only with them (one statement per create
/// action, on exactly the kind it creates, so a request's other resources, such as the VPC a
/// subnet goes into, must already be this environment's), tagged only in the create request
/// (`ec2:CreateAction`), and changed, attached to or deleted only while it carries them.
/// Nothing else in the account and region is reachable: not another VPC's routes, security
/// groups or gateways, and an untagged resource can't be tagged into this environment.
/// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html,
/// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
pub fn management_statements(scope: &Scope, options: &Vpc) -> Vec<Statement> {
    let ec2 = |kind: &str| scope.in_region("ec2", kind);
    let env = scope.environment;
    let project = scope.project();
    // The VPC's default security group exists as soon as the VPC does, untagged; Terraform
    // adopts it (`aws_default_security_group`), names it and strips its rules.
    let default_sg = format!("{}{DEFAULT_SECURITY_GROUP}", scope.prefix);
    let flow_logs = options.flow_logs;
    let mut s = vec![star(
        "NetworkReads",
        &[
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeRouteTables",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeNatGateways",
            "ec2:DescribeAddresses",
            "ec2:DescribeAddressesAttribute",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeVpcEndpointServices",
            "ec2:DescribePrefixLists",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeFlowLogs",
        ],
    )];
    // Unlike the other Describe calls, DescribeVpcAttribute is authorized on the VPC.
    s.push(
        Statement::allow(
            "ReadTheVpcAttributes",
            &["ec2:DescribeVpcAttribute"],
            vec![ec2("vpc/*")],
        )
        .condition(scope.owned_condition()),
    );
    // (create action, the kind of resource it creates, Sid)
    let mut creates = vec![
        ("ec2:CreateVpc", "vpc/*", "NewVpcTagged"),
        ("ec2:CreateSubnet", "subnet/*", "NewSubnetsTagged"),
        (
            "ec2:CreateRouteTable",
            "route-table/*",
            "NewRouteTablesTagged",
        ),
        (
            "ec2:CreateInternetGateway",
            "internet-gateway/*",
            "NewInternetGatewayTagged",
        ),
        ("ec2:AllocateAddress", "elastic-ip/*", "NewAddressesTagged"),
        (
            "ec2:CreateNatGateway",
            "natgateway/*",
            "NewNatGatewaysTagged",
        ),
        (
            "ec2:CreateVpcEndpoint",
            "vpc-endpoint/*",
            "NewVpcEndpointsTagged",
        ),
        (
            "ec2:CreateSecurityGroup",
            "security-group/*",
            "NewSecurityGroupsTagged",
        ),
    ];
    if flow_logs {
        creates.push(("ec2:CreateFlowLogs", "vpc-flow-log/*", "NewFlowLogsTagged"));
    }
    for (action, kind, sid) in &creates {
        s.push(
            Statement::allow(sid, &[action], vec![ec2(kind)]).condition(scope.tagging_condition()),
        );
    }
    let create_actions: Vec<&str> = creates.iter().map(|(action, _, _)| *action).collect();
    s.push(
        Statement::allow(
            "TagNetworkOnlyWhenCreated",
            &["ec2:CreateTags"],
            vec![ec2("*")],
        )
        .condition(json!({ "StringEquals": { "ec2:CreateAction": create_actions } })),
    );
    // Everything that changes, connects or fills a network resource, on this environment's
    // resources only; for a create action these are the resources it uses (the VPC, subnets,
    // route tables, addresses). The default security group is left to the two statements
    // below it.
    let mut changes = create_actions.clone();
    changes.extend([
        "ec2:ModifyVpcAttribute",
        "ec2:ModifySubnetAttribute",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
        "ec2:AttachInternetGateway",
        "ec2:ModifyVpcEndpoint",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DeleteVpc",
        "ec2:DeleteSubnet",
        "ec2:DeleteRouteTable",
        "ec2:DeleteRoute",
        "ec2:DeleteInternetGateway",
        "ec2:DetachInternetGateway",
        "ec2:ReleaseAddress",
        "ec2:DisassociateAddress",
        "ec2:DeleteNatGateway",
        "ec2:DeleteVpcEndpoints",
        "ec2:DeleteSecurityGroup",
    ]);
    if flow_logs {
        changes.push("ec2:DeleteFlowLogs");
    }
    let mut of_this_environment = scope.owned_condition();
    of_this_environment["StringNotEquals"] = json!({ "aws:ResourceTag/Name": default_sg });
    s.push(
        Statement::allow("NetworkOfThisEnvironment", &changes, vec![ec2("*")])
            .condition(of_this_environment.clone()),
    );
    // A rule has its own ARN (`security-group-rule/<id>`) but lives in its group, which the
    // statement above checks.
    s.push(Statement::allow(
        "SecurityGroupRulesInTheirGroups",
        &[
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
        ],
        vec![ec2("security-group-rule/*")],
    ));
    // Other tags of this environment's resources change; never the two that make them its own
    // nor the default security group's name.
    let mut tags_except_ownership = of_this_environment;
    tags_except_ownership["ForAllValues:StringNotEquals"] =
        json!({ "aws:TagKeys": scope.ownership_tag_keys() });
    s.push(
        Statement::allow(
            "NetworkTagsExceptOwnership",
            &["ec2:CreateTags", "ec2:DeleteTags"],
            vec![ec2("*")],
        )
        .condition(tags_except_ownership),
    );
    // The default security group: tagged once, when it has no Environment tag yet, with
    // exactly this environment's tags and its `default-deny` name; then only stripped of rules.
    // A group of another VPC without tags could be named so too, but that only ever removes
    // its rules: the statements above never open, attach or delete a group with that name.
    s.push(
        Statement::allow(
            "NameTheDefaultSecurityGroup",
            &["ec2:CreateTags"],
            vec![ec2("security-group/*")],
        )
        .condition(json!({
            "StringEquals": {
                "aws:RequestTag/Project": project,
                "aws:RequestTag/Environment": env,
                "aws:RequestTag/Name": default_sg,
            },
            "ForAllValues:StringEquals": { "aws:TagKeys": ["Project", "Environment", "ManagedBy", "Name"] },
            "Null": { "aws:ResourceTag/Environment": "true" },
        })),
    );
    s.push(
        Statement::allow(
            "StripTheDefaultSecurityGroup",
            &[
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            vec![ec2("security-group/*")],
        )
        .condition(json!({ "StringEquals": {
            "aws:ResourceTag/Project": project,
            "aws:ResourceTag/Environment": env,
            "aws:ResourceTag/Name": default_sg,
        } })),
    );
    s
}
