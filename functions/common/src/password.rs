//! Password hashing with argon2id: PHC strings in storage, constant-time verification, and a
//! dummy verification so that "no such e-mail" costs the same time as "wrong password".

use std::sync::Mutex;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
///
/// Every hash works in one block buffer per process ([`WORKSPACE`]), allocated once. argon2's
/// own `hash_password` allocates its 19 MiB afresh on every call; glibc then serves the next
/// one from the freed heap of whichever thread made it, so each blocking-pool thread grew a
/// malloc arena of its own that kept its blocks, and a function process reached 220 MB
/// resident under load. With the shared buffer it stays at the runtime plus one buffer.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// The process's argon2 block buffer. A Lambda process serves one request at a time, so the
/// lock is never contended there; it grows only for a stored hash with a larger memory cost.
static WORKSPACE: Mutex<Vec<Block>> = Mutex::new(Vec::new());

impl Passwords {
    /// argon2id with the OWASP parameters. The only constructor: production and tests hash
    /// the same way (the workspace builds argon2 optimised even in debug, so tests stay fast).
    pub fn owasp() -> Self {
        let params = Params::new(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST, None)
            .expect("OWASP argon2 parameters are within argon2's limits");
        Self { params }
    }

    /// Hashes a password with a fresh 16-byte salt from the OS RNG into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, ServiceError> {
        let params = self.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_blocking(params, &password))
            .await
            .map_err(|e| ServiceError::internal("join hashing task", e))?
    }

    /// Verifies a password against a stored PHC string, comparing in constant time. Parameters
    /// come from the PHC string, so hashes made with older parameters keep verifying.
    pub async fn verify(&self, password: &Password, phc: &str) -> Result<bool, ServiceError> {
        let password = password.clone();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
            .await
            .map_err(|e| ServiceError::internal("join verification task", e))?
    }

    /// Spends the time of one verification and always fails: used when the e-mail is unknown.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, ServiceError> {
        self.verify(password, DUMMY_PHC).await.map(|_| false)
    }
}

/// Maps an argon2 error to a 500 that names the step (the message never holds the password).
fn internal(step: &'static str) -> impl Fn(password_hash::Error) -> ServiceError {
    move |e| ServiceError::internal(step, e.to_string())
}

fn hash_blocking(params: Params, password: &Password) -> Result<String, ServiceError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ServiceError::internal("os rng", e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(internal("encode salt"))?;
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut raw_salt = [0u8; Salt::MAX_LENGTH];
    let raw_salt = salt
        .as_salt()
        .decode_b64(&mut raw_salt)
        .map_err(internal("decode salt"))?;
    compute(&argon, &params, password, raw_salt, &mut output).map_err(internal("hash password"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(internal("encode parameters"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(internal("encode hash"))?),
    };
    Ok(phc.to_string())
}

fn verify_blocking(password: &Password, phc: &str) -> Result<bool, ServiceError> {
    let parsed = PasswordHash::new(phc).map_err(internal("parse stored password hash"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(ServiceError::internal(
            "parse stored password hash",
            "no salt or no hash in the PHC string",
        ));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(internal("read algorithm"))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| ServiceError::internal("read version", e.to_string()))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(internal("read parameters"))?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut raw_salt = [0u8; Salt::MAX_LENGTH];
    let raw_salt = salt
        .decode_b64(&mut raw_salt)
        .map_err(internal("decode salt"))?;
    let mut output = vec![0u8; expected.len()];
    compute(&argon, &params, password, raw_salt, &mut output)
        .map_err(internal("verify password"))?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&output).map_err(internal("encode hash"))? == expected)
}

/// argon2 into `output`, in the process's block buffer, which is wiped afterwards so no
/// state derived from the password outlives the call.
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &Password,
    salt: &[u8],
    output: &mut [u8],
) -> password_hash::Result<()> {
    let mut blocks = WORKSPACE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    let result = argon.hash_password_into_with_memory(
        password.expose().as_bytes(),
        salt,
        output,
        &mut blocks[..needed],
    );
    blocks[..needed].fill(Block::default());
    result.map_err(password_hash::Error::from)
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

    /// Hashes stored before the shared buffer (argon2's own `hash_password`) still verify,
    /// and ours verify with argon2's own verifier: the PHC strings are the same format.
    #[tokio::test]
    async fn the_phc_strings_match_argon2s_own_in_both_directions() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let passwords = Passwords::owasp();
        let password = Password::new("correct horse battery staple");
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            passwords.params.clone(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let stored = theirs
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(passwords.verify(&password, &stored).await.unwrap());
        assert!(
            !passwords
                .verify(&Password::new("wrong"), &stored)
                .await
                .unwrap()
        );

        let ours = passwords.hash(&password).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            theirs
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        );
        assert!(theirs.verify_password(b"wrong", &parsed).is_err());
    }

    /// A stored hash with a larger memory cost than the buffer holds still verifies (the
    /// buffer grows), and the OWASP hashes after it keep working.
    #[tokio::test]
    async fn a_hash_with_other_parameters_verifies() {
        use argon2::PasswordHasher as _;
        let passwords = Passwords::owasp();
        let password = Password::new("an older, bigger hash");
        let bigger = Params::new(2 * OWASP_M_COST_KIB, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"fedcba9876543210").unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, bigger)
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(passwords.verify(&password, &stored).await.unwrap());
        let fresh = passwords.hash(&password).await.unwrap();
        assert!(passwords.verify(&password, &fresh).await.unwrap());
    }

    /// Nothing derived from a password stays in the shared buffer after a hash.
    #[tokio::test]
    async fn the_block_buffer_is_wiped_after_use() {
        let passwords = Passwords::owasp();
        passwords
            .hash(&Password::new("wipe me afterwards"))
            .await
            .unwrap();
        let blocks = WORKSPACE.lock().unwrap();
        assert!(blocks.len() >= passwords.params.block_count());
        let zero = Block::default();
        assert!(blocks.iter().all(|b| b.as_ref() == zero.as_ref()));
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
