//! The rules for a declared secret's name (`secrets = ["payments-key"]`) and the names derived
//! from it. Kept here, beside the declarations, so the catalog refuses a name that would make an
//! invalid AWS name or environment variable.

/// The longest name: with the longest prefix (20) and `secret-`, the Secrets Manager name stays
/// under 100 characters, far inside its 512, and the variable under Lambda's limits.
pub const MAX_LEN: usize = 64;

/// Checks a declared secret name: 1-64 of a-z, 0-9 and single hyphens, starting with a letter,
/// not ending in a hyphen (`names::is_kebab`).
pub fn check_name(name: &str) -> Result<(), String> {
    if !crate::names::is_kebab(name, MAX_LEN) {
        return Err(format!(
            "secret `{name}`: use 1-{MAX_LEN} characters of a-z, 0-9 and single '-', starting \
             with a letter and not ending with '-' (it becomes the Secrets Manager name \
             `<prefix>secret-{name}` and the variable {})",
            variable(name)
        ));
    }
    // Secrets Manager appends `-` and six random characters to a secret's ARN; an AWS name
    // (`...secret-<name>`) that itself ends so is mistaken for a partial ARN by the calls that
    // accept either.
    if name.rsplit('-').next().is_some_and(|last| last.len() == 6) {
        return Err(format!(
            "secret `{name}`: a name may not end with '-' and six characters (Secrets Manager \
             would read it as a partial ARN); rename the last part"
        ));
    }
    Ok(())
}

/// How `cargo xtask` makes the value of a secret nobody has to choose (a pepper, a signing
/// key): `generate = "<kind>"` in the root manifest's `[workspace.metadata.secrets.<name>]`.
/// On an emulator environment the deploy generates it when the secret has none; on an account,
/// `cargo xtask secret set NAME --generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generate {
    /// `service_common::peppers`' key ring: one random 32-byte key, `k1`, current.
    KeyRing,
}

impl Generate {
    /// Every kind, by the name the manifest uses.
    pub const KINDS: &[(&str, Generate)] = &[("key-ring", Generate::KeyRing)];

    /// The kind called `kind` in a manifest.
    pub fn from_kind(kind: &str) -> Result<Self, String> {
        Self::KINDS
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, generate)| *generate)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::KINDS.iter().map(|(name, _)| *name).collect();
                format!(
                    "`generate = \"{kind}\"` is no kind of generated value (known: {})",
                    known.join(", ")
                )
            })
    }

    /// The name the manifest uses.
    pub fn kind(self) -> &'static str {
        Self::KINDS
            .iter()
            .find(|(_, generate)| *generate == self)
            .map(|(name, _)| *name)
            .expect("every kind is in KINDS")
    }
}

/// A declared secret whose value is generated, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generated {
    pub name: &'static str,
    pub generate: Generate,
    /// `rotation_days`: Secrets Manager rotates it this often, by the function that declares
    /// `rotates = ["<name>"]`; `None`: never rotated.
    pub rotation_days: Option<u32>,
}

/// The days `rotation_days` may say: Secrets Manager's `AutomaticallyAfterDays` range.
pub const ROTATION_DAYS: std::ops::RangeInclusive<u32> = 1..=1000;

/// The environment variable that hands a function the ARN of the secret `name` (never its
/// value): `payments-key` -> `SECRET_ARN_PAYMENTS_KEY`. `service_common::secrets` reads it.
pub fn variable(name: &str) -> String {
    format!("SECRET_ARN_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The secret's name in Secrets Manager, after the environment's prefix.
pub fn aws_suffix(name: &str) -> String {
    format!("secret-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_mapped_to_one_variable() {
        assert_eq!(variable("payments-key"), "SECRET_ARN_PAYMENTS_KEY");
        assert_eq!(aws_suffix("payments-key"), "secret-payments-key");
        for good in ["payments-key", "password-peppers", "a1", "signing-key-2"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "Payments",
            "1key",
            "a_b",
            "a--b",
            "key-",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(
                check_name(bad).unwrap_err().contains("1-64 characters"),
                "{bad}"
            );
        }
        assert!(
            check_name("api-abcdef")
                .unwrap_err()
                .contains("partial ARN")
        );
    }
}
