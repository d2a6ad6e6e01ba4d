//! Lambda code signing with AWS Signer. The signing profile must exist before the service
//! stack's first apply (xtask signs the uploaded packages between the two stacks), so it lives
//! in the bootstrap stack, and so does the code signing config that makes Lambda refuse anything
//! else: creating a config with tags takes `lambda:TagResource` on configs that Lambda can't
//! tell from existing ones, which would let the deploy role claim any untagged config of the
//! account (`constructs::delivery`). The service stack reads the config's ARN from the
//! bootstrap stack's outputs and attaches it to the functions.

use super::state;
use crate::iam::{Scope, Statement};
use crate::tf::{Expr, Ref, Stack};
use serde_json::json;

/// The Signer platform for Lambda zip packages.
pub const PLATFORM: &str = "AWSLambda-SHA384-ECDSA";

/// The signing profile's name: `prod-service-` gives `prod_service_functions`.
///
/// Deterministic (not `name_prefix`) so that xtask and the deploy role's policy find the profile
/// from the configuration alone, whether or not the bootstrap stack ran in this checkout. Signer
/// names allow only `[a-zA-Z0-9_]`, 2 to 64 characters. A destroyed profile is only canceled
/// (it stays listed, under its name, for two years), so re-creating the bootstrap stack after
/// `destroy --all` needs a different prefix.
pub fn profile_name(prefix: &str) -> String {
    let mut name: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.is_empty() && !name.ends_with('_') {
        name.push('_');
    }
    name.push_str("functions");
    // Keep the distinctive end: two environments' prefixes differ at their start.
    let excess = name.len().saturating_sub(64);
    name.split_off(excess)
}

/// Bootstrap stack: the signing profile the deploy signs packages with.
pub fn profile(stack: &mut Stack, prefix: &str) -> Ref {
    stack.resource(
        "aws_signer_signing_profile",
        "functions",
        json!({ "name": profile_name(prefix), "platform_id": PLATFORM }),
    )
}

/// The bootstrap stack's output with the code signing config's ARN.
pub const CONFIG_OUTPUT: &str = "code_signing_config_arn";

/// Bootstrap stack: the code signing config the functions carry. Lambda rejects (`Enforce`) any
/// package not signed by `profile`, the current version of the profile always (the version ARN
/// changes only when the profile is re-created, and Terraform then updates the config).
pub fn config(stack: &mut Stack, prefix: &str, profile: &Ref) -> Ref {
    stack.resource(
        "aws_lambda_code_signing_config",
        "functions",
        json!({
            "description": format!("{prefix}functions code signing"),
            "allowed_publishers": [{ "signing_profile_version_arns": [profile.attr("version_arn")] }],
            "policies": [{ "untrusted_artifact_on_deployment": "Enforce" }],
        }),
    )
}

/// Service stack: the bootstrap stack's code signing config, by the ARN in its outputs. A
/// bootstrap stack applied before the config moved there has no such output, and the plan fails
/// naming it, before anything is changed: `cargo xtask bootstrap` (an administrator) adds it.
pub fn code_signing_config(stack: &mut Stack) -> Expr {
    state::outputs_of(stack, "bootstrap").attr(&format!("outputs.{CONFIG_OUTPUT}"))
}

/// What the deploy role needs for code signing: using (never changing) the bootstrap stack's
/// profile and its signing jobs, reading the bootstrap stack's config and attaching it to the
/// functions. The profile and config are shared with the environment's stages: a scope over
/// stages reaches them as its environment's ([`Scope::shared`]), its own functions by name.
pub fn management_statements(scope: &Scope) -> Vec<Statement> {
    let pre = scope.prefix;
    let shared = scope.shared();
    let in_region = |service: &str, resource: &str| scope.in_region(service, resource);
    let mut s = Vec::new();
    // The profile is the bootstrap stack's: read and used, never changed here.
    let profile = profile_name(shared.prefix);
    let profile_arn = in_region("signer", &format!("/signing-profiles/{profile}"));
    s.push(Statement::allow(
        "SigningProfile",
        &[
            "signer:GetSigningProfile",
            "signer:ListTagsForResource",
            "signer:StartSigningJob",
        ],
        vec![profile_arn.clone(), format!("{profile_arn}/*")],
    ));
    s.push(Statement::allow(
        "SigningJobs",
        &["signer:DescribeSigningJob"],
        vec![in_region("signer", "/signing-jobs/*")],
    ));
    // The config is the bootstrap stack's (`signing`): read, never created, changed or
    // tagged here, so no untagged config of the account can be tagged into this
    // environment. Its ARN carries a generated id, so the tags decide; Lambda supports
    // aws:ResourceTag on code signing configs:
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html
    let configs = in_region("lambda", "code-signing-config:*");
    s.push(
        Statement::allow(
            "ReadTheCodeSigningConfigOfThisEnvironment",
            &["lambda:GetCodeSigningConfig", "lambda:ListTags"],
            vec![configs.clone()],
        )
        .condition(shared.owned_condition()),
    );
    // PutFunctionCodeSigningConfig is authorized on the config and on the function: both
    // must be this environment's.
    s.push(
        Statement::allow(
            "AttachCodeSigningConfigsOfThisEnvironment",
            &[
                "lambda:PutFunctionCodeSigningConfig",
                "lambda:DeleteFunctionCodeSigningConfig",
            ],
            vec![
                configs.clone(),
                in_region("lambda", &format!("function:{pre}*")),
            ],
        )
        .condition(shared.owned_condition()),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::profile_name;

    #[test]
    fn profile_names_are_what_signer_accepts() {
        assert_eq!(profile_name("prod-service-"), "prod_service_functions");
        assert_eq!(profile_name("dev.svc"), "dev_svc_functions");
        assert_eq!(profile_name(""), "functions");
        let long = profile_name(&format!("{}-", "a".repeat(80)));
        assert_eq!(long.len(), 64);
        assert!(long.ends_with("_functions"));
        for name in [long, profile_name("x-")] {
            assert!(name.len() >= 2);
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
    }
}
