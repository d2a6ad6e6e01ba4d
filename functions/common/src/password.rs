//! Password hashing with argon2id: PHC strings in storage, constant-time verification, and a
//! dummy verification so that "no such e-mail" costs the same time as "wrong password".

use argon2::password_hash::{
    self, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;

use crate::error::ServiceError;

/// OWASP Password Storage Cheat Sheet, first argon2id option: 19 MiB, 2 passes, 1 lane.
pub const OWASP_M_COST_KIB: u32 = 19_456;
pub const OWASP_T_COST: u32 = 2;
pub const OWASP_P_COST: u32 = 1;

/// A PHC string made with the OWASP parameters from a random password nobody knows. Verifying
/// against it costs exactly what verifying a real hash costs, without hashing at start-up.
/// A unit test proves it parses and carries the same parameters as [`Passwords::owasp`].
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$Zcn/MJ9IWY2b2Yz/vvs5Zg$M570zuiGDXJx3VqMgW0mw5wkwb7/3OV0CUNJGQQSUGg";

/// A plaintext password from a request. It cannot be printed or serialised: `Debug` is
/// redacted and there is no `Display` or `Serialize`, so it cannot end up in a log or a response.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a plaintext password (tests and request decoding).
    pub fn new(plain: impl Into<String>) -> Self {
        Self(plain.into())
    }

    /// The plaintext, for validation and hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Hashes and verifies passwords. Cheap to clone; the work runs on the blocking pool so a
/// 20-40 ms hash never stalls the async runtime.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// argon2id with the OWASP parameters. The only constructor: production and tests hash
    /// the same way (the workspace builds argon2 optimised even in debug, so tests stay fast).
    pub fn owasp() -> Self {
        let params = Params::new(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST, None)
            .expect("OWASP argon2 parameters are within argon2's limits");
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        }
    }

    /// Hashes a password with a fresh 16-byte salt from the OS RNG into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, ServiceError> {
        let argon = self.argon.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt)
                .map_err(|e| ServiceError::internal("os rng", e.to_string()))?;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|e| ServiceError::internal("encode salt", e.to_string()))?;
            argon
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| ServiceError::internal("hash password", e.to_string()))
        })
        .await
        .map_err(|e| ServiceError::internal("join hashing task", e))?
    }

    /// Verifies a password against a stored PHC string, comparing in constant time. Parameters
    /// come from the PHC string, so hashes made with older parameters keep verifying.
    pub async fn verify(&self, password: &Password, phc: &str) -> Result<bool, ServiceError> {
        let argon = self.argon.clone();
        let password = password.clone();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || verify_blocking(&argon, &password, &phc))
            .await
            .map_err(|e| ServiceError::internal("join verification task", e))?
    }

    /// Spends the time of one verification and always fails: used when the e-mail is unknown.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, ServiceError> {
        self.verify(password, DUMMY_PHC).await.map(|_| false)
    }
}

fn verify_blocking(
    argon: &Argon2<'_>,
    password: &Password,
    phc: &str,
) -> Result<bool, ServiceError> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| ServiceError::internal("parse stored password hash", e.to_string()))?;
    match argon.verify_password(password.expose().as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(e) => Err(ServiceError::internal("verify password", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let passwords = Passwords::owasp();
        let password = Password::new("correct horse battery staple");
        let phc = passwords.hash(&password).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(passwords.verify(&password, &phc).await.unwrap());
        assert!(
            !passwords
                .verify(&Password::new("wrong horse"), &phc)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn salts_differ() {
        let passwords = Passwords::owasp();
        let password = Password::new("same password");
        let a = passwords.hash(&password).await.unwrap();
        let b = passwords.hash(&password).await.unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn dummy_hash_has_the_production_parameters() {
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(params.m_cost(), OWASP_M_COST_KIB);
        assert_eq!(params.t_cost(), OWASP_T_COST);
        assert_eq!(params.p_cost(), OWASP_P_COST);
        assert_eq!(parsed.hash.unwrap().len(), 32);
    }

    #[tokio::test]
    async fn dummy_verification_always_fails() {
        let passwords = Passwords::owasp();
        assert!(
            !passwords
                .verify_dummy(&Password::new("anything at all"))
                .await
                .unwrap()
        );
    }

    #[test]
    fn debug_is_redacted() {
        let text = format!("{:?}", Password::new("hunter22hunter22"));
        assert!(!text.contains("hunter22"));
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_a_fault_not_a_mismatch() {
        let passwords = Passwords::owasp();
        let result = passwords
            .verify(&Password::new("whatever1"), "not a phc string")
            .await;
        assert!(matches!(result, Err(ServiceError::Internal { .. })));
    }
}
