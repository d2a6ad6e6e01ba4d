//! The optional VPC: private subnets across at least two AZs for the functions, NAT gateways
//! in public subnets for egress, a DynamoDB gateway endpoint so table traffic never leaves the
//! AWS network, flow logs, and a default security group with no rules.

use super::security::{Key, service_role};
use crate::config::{Config, Vpc};
use crate::iam::{Account, Statement};
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde_json::{Value, json};

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

/// Splits `10.0.0.0/16` style CIDRs with Terraform's own `cidrsubnet`, so the arithmetic is
/// the one operators know.
fn subnet_cidr(vpc: &Ref, newbits: u8, netnum: usize) -> Expr {
    Expr::raw(format!(
        "cidrsubnet({}, {newbits}, {netnum})",
        vpc.attr("cidr_block").inner()
    ))
}

pub fn vpc(
    stack: &mut Stack,
    config: &Config,
    options: &Vpc,
    account: &Account,
    key: &Key,
) -> Network {
    let tags = |name: String| json!({ "Name": name });
    let vpc = stack.resource(
        "aws_vpc",
        "main",
        json!({
            "cidr_block": options.cidr,
            "enable_dns_hostnames": true,
            "enable_dns_support": true,
            "tags": tags(config.name("vpc")),
        }),
    );
    // The default security group allows all traffic between members; strip it of every rule so
    // nothing can use it by accident.
    stack.resource(
        "aws_default_security_group",
        "main",
        json!({ "vpc_id": vpc.attr("id"), "ingress": [], "egress": [], "tags": tags(config.name("default-deny")) }),
    );
    if options.flow_logs {
        let group = stack.resource(
            "aws_cloudwatch_log_group",
            "flow_logs",
            json!({
                "name": format!("/aws/vpc/{}", config.name("flow-logs")),
                "retention_in_days": config.lambda.log_retention_days,
                "kms_key_id": key.arn(),
            }),
        );
        let role = service_role(
            stack,
            config,
            account,
            "flow_logs",
            &config.name("flow-logs"),
            "vpc-flow-logs.amazonaws.com",
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
            &[],
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
                "tags": tags(config.name("flow-logs")),
            }),
        );
    }
    let igw = stack.resource(
        "aws_internet_gateway",
        "main",
        json!({ "vpc_id": vpc.attr("id"), "tags": tags(config.name("igw")) }),
    );
    let public_rt = stack.resource(
        "aws_route_table",
        "public",
        json!({ "vpc_id": vpc.attr("id"), "tags": tags(config.name("public")) }),
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
            config.region,
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
                "tags": tags(config.name(&format!("public-{i}"))),
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
                json!({ "domain": "vpc", "tags": tags(config.name(&format!("nat-{i}"))), "depends_on": depends_on(&[&igw]) }),
            );
            nats.push(stack.resource(
                "aws_nat_gateway",
                &format!("az_{i}"),
                json!({
                    "allocation_id": eip.attr("id"),
                    "subnet_id": public.attr("id"),
                    "tags": tags(config.name(&format!("nat-{i}"))),
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
                "tags": tags(config.name(&format!("private-{i}"))),
            }),
        );
        let rt = stack.resource(
            "aws_route_table",
            &format!("private_{i}"),
            json!({ "vpc_id": vpc.attr("id"), "tags": tags(config.name(&format!("private-{i}"))) }),
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
            "service_name": format!("com.amazonaws.{}.dynamodb", account.region),
            "vpc_endpoint_type": "Gateway",
            "route_table_ids": private_rts.iter().map(|r| r.attr("id").into()).collect::<Vec<Value>>(),
            "tags": tags(config.name("dynamodb")),
        }),
    );
    // Functions only call AWS APIs over HTTPS; no inbound rules at all.
    let lambda_sg = stack.resource(
        "aws_security_group",
        "lambda",
        json!({
            "name": config.name("lambda"),
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
            "tags": tags(config.name("lambda")),
        }),
    );
    Network {
        private_subnets,
        lambda_sg,
    }
}
