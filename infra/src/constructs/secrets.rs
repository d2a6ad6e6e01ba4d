//! Secrets Manager: one secret per name the functions declare (`secrets = [...]` in a function's
//! manifest, read through the catalog), what reading them takes, and what the deploy role needs
//! to manage them.
//!
//! Terraform creates each secret empty, encrypted with the stack key: it never holds a value
//! (no `aws_secretsmanager_secret_version`), so no value ever reaches the plan, the state or the
//! synthesized JSON. A person sets it with `cargo xtask secret set`, straight to Secrets
//! Manager. A function gets each of its secrets' ARNs in `SECRET_ARN_<NAME>`
//! ([`catalog::secrets::variable`]) and reads the value itself (`service_common::secrets`).
//!
//! A generated secret with `rotation_days` rotates: Secrets Manager invokes the function that
//! `rotates` it ([`Secrets::rotations`]), which alone may write its versions
//! ([`Secrets::grant_rotate`]).

use super::compute::Function;
use super::security::Key;
use crate::config::Names;
use crate::iam::{Account, Grant, KeyActions, Scope, Statement};
use crate::routes::FunctionName;
use crate::tf::{Expr, Stack};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

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
/// declaration removed) keeps it recoverable for `recovery_window_days` (Secrets Manager's
/// 7-30, or 0: deleted at once, what a stage needs to be destroyed and made again under the
/// same name).
pub fn secrets(stack: &mut Stack, names: Names, key: &Key, recovery_window_days: u32) -> Secrets {
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
                    "recovery_window_in_days": recovery_window_days,
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

/// The declared secrets that rotate: name, `rotation_days`, and the function that rotates it
/// (the catalog checks there is exactly one).
pub(super) fn rotated() -> impl Iterator<Item = (&'static str, u32, FunctionName)> {
    catalog::GENERATED.iter().filter_map(|generated| {
        let days = generated.rotation_days?;
        let rotator = catalog::rotator(generated.name)
            .and_then(|f| FunctionName::find(f.name))
            .expect("the catalog checks that a rotated secret has its function");
        Some((generated.name, days, rotator))
    })
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
        self.grant_on(
            function.declaration().secrets,
            ("DeclaredSecrets", &["secretsmanager:GetSecretValue"]),
            ("DeclaredSecretsKey", KeyActions::DECRYPT),
            account,
        )
    }

    /// `actions` (statement `sid`) on the secrets `names`, with `key_actions` on the stack key
    /// through Secrets Manager only (statement `key_sid`); `None` for no secret.
    fn grant_on(
        &self,
        names: &[&str],
        (sid, actions): (&str, &[&str]),
        (key_sid, key_actions): (&str, KeyActions),
        account: &Account,
    ) -> Option<Grant> {
        if names.is_empty() {
            return None;
        }
        let arns = names
            .iter()
            .map(|name| self.arns[name].to_string())
            .collect();
        let via = format!("secretsmanager.{}.amazonaws.com", account.region);
        Some(Grant {
            statements: std::iter::once(Statement::allow(sid, actions, arns))
                .chain(self.key.grant_through(key_sid, key_actions, &via))
                .collect(),
            key: KeyActions::NONE,
        })
    }

    /// Rotating exactly the secrets `function` rotates (none: no grant): the calls of the four
    /// steps (AWS's rotation template's policy), on those secrets only. Secrets Manager
    /// decrypts the current value and encrypts the new one with the stack key on the
    /// function's behalf, so the role may use the key only in Secrets Manager's requests.
    pub fn grant_rotate(&self, function: FunctionName, account: &Account) -> Option<Grant> {
        self.grant_on(
            function.declaration().rotates,
            (
                "RotatedSecrets",
                &[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
            ),
            ("RotatedSecretsKey", KeyActions::PUT_SECRET),
            account,
        )
    }

    /// Turns rotation on for every secret with `rotation_days`: Secrets Manager may invoke
    /// the `live` alias of its rotating function for that secret only, and does so every
    /// `rotation_days` days. Not at apply (`rotate_immediately = false`): a new secret is
    /// still empty then, and `cargo xtask secret rotate` starts one whenever wanted.
    pub fn rotations(&self, stack: &mut Stack, functions: &[Function]) {
        for (name, days, rotator) in rotated() {
            let function = functions
                .iter()
                .find(|f| f.which == rotator)
                .expect("every catalog function is created");
            let logical = format!("secret_{}", name.replace('-', "_"));
            let permission = stack.resource(
                "aws_lambda_permission",
                &format!("rotate_{logical}"),
                json!({
                    "statement_id": format!("AllowSecretsManager-{name}"),
                    "action": "lambda:InvokeFunction",
                    "function_name": function.name(),
                    "qualifier": function.alias_name(),
                    "principal": "secretsmanager.amazonaws.com",
                    "source_arn": self.arns[name],
                    "depends_on": [function.alias_ref().addr()],
                }),
            );
            stack.resource(
                "aws_secretsmanager_secret_rotation",
                &logical,
                json!({
                    "secret_id": self.arns[name],
                    "rotation_lambda_arn": function.alias_arn(),
                    "rotate_immediately": false,
                    "rotation_rules": [{ "automatically_after_days": days }],
                    "depends_on": [permission.addr()],
                }),
            );
        }
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
    let mut statements = vec![Statement::allow(
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
    )];
    // Turning rotation on, changing and cancelling it (`aws_secretsmanager_secret_rotation`)
    // and starting one (`cargo xtask secret rotate`). RotateSecret also needs
    // `lambda:InvokeFunction` on the rotation function: it checks the caller may invoke it.
    let rotators: BTreeSet<FunctionName> = rotated().map(|(_, _, rotator)| rotator).collect();
    if !rotators.is_empty() {
        statements.push(Statement::allow(
            "RotatedSecrets",
            &[
                "secretsmanager:RotateSecret",
                "secretsmanager:CancelRotateSecret",
            ],
            vec![arn_pattern(scope)],
        ));
        statements.push(Statement::allow(
            "InvokeRotationFunctions",
            &["lambda:InvokeFunction"],
            rotators
                .into_iter()
                .map(|f| {
                    let name = scope.names().name(f.as_str());
                    scope.in_region(
                        "lambda",
                        &format!("function:{name}:{}", super::compute::ALIAS),
                    )
                })
                .collect(),
        ));
    }
    statements
}
