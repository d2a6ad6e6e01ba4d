//! Secrets Manager: one secret per name the functions declare (`secrets = [...]` in a function's
//! manifest, read through the catalog), what reading them takes, and what the deploy role needs
//! to manage them.
//!
//! Terraform creates each secret empty, encrypted with the stack key: it never holds a value
//! (no `aws_secretsmanager_secret_version`), so no value ever reaches the plan, the state or the
//! synthesized JSON. A person sets it with `cargo xtask secret set`, straight to Secrets
//! Manager. A function gets each of its secrets' ARNs in `SECRET_ARN_<NAME>`
//! ([`catalog::secrets::variable`]) and reads the value itself (`service_common::secrets`).

use super::security::Key;
use crate::config::Names;
use crate::iam::{Account, Grant, KeyActions, Scope, Statement};
use crate::routes::FunctionName;
use crate::tf::{Expr, Stack};
use serde_json::json;
use std::collections::BTreeMap;

/// Every declared secret and the functions that read it, in catalog order: the one list infra
/// (and xtask's `secret` command, which shows who reads what) works from.
pub fn declared() -> BTreeMap<&'static str, Vec<FunctionName>> {
    let mut declared: BTreeMap<&'static str, Vec<FunctionName>> = BTreeMap::new();
    for function in FunctionName::all() {
        for secret in function.declaration().secrets {
            declared.entry(secret).or_default().push(function);
        }
    }
    declared
}

/// The secret `name`'s name in Secrets Manager: `<prefix>secret-<name>`.
pub fn aws_name(names: Names, name: &str) -> String {
    names.name(&catalog::secrets::aws_suffix(name))
}

/// The environment's declared secrets, by declared name.
#[derive(Clone, Debug)]
pub struct Secrets {
    arns: BTreeMap<&'static str, Expr>,
    key: Key,
}

/// Creates one empty secret per declared name, encrypted with `key`. Deleting one (its
/// declaration removed) keeps it recoverable for 7 days.
pub fn secrets(stack: &mut Stack, names: Names, key: &Key) -> Secrets {
    let arns = declared()
        .into_iter()
        .map(|(name, readers)| {
            let readers: Vec<&str> = readers.iter().map(|f| f.as_str()).collect();
            let secret = stack.resource(
                "aws_secretsmanager_secret",
                &format!("secret_{}", name.replace('-', "_")),
                json!({
                    "name": aws_name(names, name),
                    "description": format!(
                        "Declared by {}; set with `cargo xtask secret set {name}`",
                        readers.join(", ")
                    ),
                    "kms_key_id": key.arn(),
                    "recovery_window_in_days": 7,
                }),
            );
            (name, secret.attr("arn"))
        })
        .collect();
    Secrets {
        arns,
        key: key.clone(),
    }
}

impl Secrets {
    /// The environment variables that hand `function` the ARNs of the secrets it declares.
    pub fn variables(&self, function: FunctionName) -> Vec<(String, Expr)> {
        function
            .declaration()
            .secrets
            .iter()
            .map(|name| (catalog::secrets::variable(name), self.arns[name].clone()))
            .collect()
    }

    /// Reading exactly the secrets `function` declares (none: no grant). Secrets Manager
    /// decrypts the value with the stack key on the caller's behalf, so the role may decrypt
    /// with it, but only in requests Secrets Manager makes (`kms:ViaService`).
    pub fn grant_read(&self, function: FunctionName, account: &Account) -> Option<Grant> {
        let arns: Vec<String> = function
            .declaration()
            .secrets
            .iter()
            .map(|name| self.arns[name].to_string())
            .collect();
        if arns.is_empty() {
            return None;
        }
        let via = format!("secretsmanager.{}.amazonaws.com", account.region);
        Some(Grant {
            statements: std::iter::once(Statement::allow(
                "DeclaredSecrets",
                &["secretsmanager:GetSecretValue"],
                arns,
            ))
            .chain(
                self.key
                    .grant_through("DeclaredSecretsKey", KeyActions::DECRYPT, &via),
            )
            .collect(),
            key: KeyActions::NONE,
        })
    }
}

/// The ARN pattern of every declared secret of the environment: `secret:<prefix>secret-*`
/// (Secrets Manager appends `-` and six characters to the name).
pub fn arn_pattern(scope: &Scope) -> String {
    scope.in_region(
        "secretsmanager",
        &format!("secret:{}*", aws_name(scope.names(), "")),
    )
}

/// What the deploy role needs to create, describe, tag, update and delete the declared
/// secrets (and `cargo xtask deploy` to see which have no value yet): never their values
/// (`GetSecretValue`, `PutSecretValue`), which only a person sets and only functions read.
/// Nothing when no function declares a secret.
pub fn management_statements(scope: &Scope) -> Vec<Statement> {
    if declared().is_empty() {
        return Vec::new();
    }
    vec![Statement::allow(
        "DeclaredSecrets",
        &[
            "secretsmanager:CreateSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:UpdateSecret",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
            "secretsmanager:DeleteSecret",
        ],
        vec![arn_pattern(scope)],
    )]
}
