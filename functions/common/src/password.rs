//! Password hashing with argon2id and a secret pepper: PHC strings in storage that name the
//! pepper's key, constant-time verification, and a dummy verification so that "no such e-mail"
//! costs the same time as "wrong password".

use std::sync::{Arc, Mutex};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, KeyId, Params, ParamsBuilder, Version};
use serde::Deserialize;

use crate::error::ServiceError;
use crate::peppers::{self, PepperRing};
use crate::secrets::Secrets;

/// OWASP Password Storage Cheat Sheet, first argon2id option: 19 MiB, 2 passes, 1 lane.
pub const OWASP_M_COST_KIB: u32 = 19_456;
pub const OWASP_T_COST: u32 = 2;
pub const OWASP_P_COST: u32 = 1;

/// A PHC string made with the OWASP parameters from a random password nobody knows. Verifying
/// against it costs exactly what verifying a real hash costs, without hashing at start-up.
/// A unit test proves it parses and carries the same parameters as [`Passwords::owasp`]. It
/// names no key: the dummy verification hashes with the ring's current key all the same.
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

/// Hashes and verifies passwords with argon2id and a secret pepper. Cheap to clone; the work
/// runs on the blocking pool so a 20-40 ms hash never stalls the async runtime.
///
/// The pepper (argon2's secret input) comes from the key ring in the declared secret
/// `password-peppers` ([`crate::peppers`]), read through the function's [`Secrets`] (cached for
/// their TTL). A hash is made with the ring's current key and records that key's id in its PHC
/// string (argon2's `keyid` parameter: `$argon2id$v=19$m=19456,t=2,p=1,keyid=azI$...`), so it
/// verifies with the same key after the ring moved on. A hash without a `keyid` was made before
/// the pepper and verifies without one; [`Passwords::upgrade`] re-hashes it (and any hash of an
/// older key) with the current key after a successful log-in. A stored hash whose key left the
/// ring fails closed: a 500 whose log line names the key id. A database dump without the secret
/// verifies nothing, which is the point of a pepper.
///
/// Every hash works in one block buffer per process ([`WORKSPACE`]), allocated once. argon2's
/// own `hash_password` allocates its 19 MiB afresh on every call; glibc then serves the next
/// one from the freed heap of whichever thread made it, so each blocking-pool thread grew a
/// malloc arena of its own that kept its blocks, and a function process reached 220 MB
/// resident under load. With the shared buffer it stays at the runtime plus one buffer.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    secrets: Arc<Secrets>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// The process's argon2 block buffer. A Lambda process serves one request at a time, so the
/// lock is never contended there; it grows only for a stored hash with a larger memory cost.
static WORKSPACE: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// argon2id with the OWASP parameters, without a key id (the hash adds the current one).
fn owasp_params() -> Params {
    Params::new(OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST, None)
        .expect("OWASP argon2 parameters are within argon2's limits")
}

impl Passwords {
    /// argon2id with the OWASP parameters and the peppers of `secrets` (which must include
    /// `password-peppers`). The only constructor: production and tests hash the same way (the
    /// workspace builds argon2 optimised even in debug, so tests stay fast).
    pub fn owasp(secrets: Arc<Secrets>) -> Self {
        Self {
            params: owasp_params(),
            secrets,
        }
    }

    /// The key ring, from the secret's cache; a missing, unreadable or malformed ring is the
    /// request's 500.
    async fn ring(&self) -> Result<PepperRing, ServiceError> {
        PepperRing::parse(&self.secrets.get(peppers::SECRET).await?)
    }

    /// Hashes a password with a fresh 16-byte salt from the OS RNG and the ring's current
    /// pepper into a PHC string that names the pepper's key id.
    pub async fn hash(&self, password: &Password) -> Result<String, ServiceError> {
        let ring = self.ring().await?;
        self.hash_with(&ring, password).await
    }

    async fn hash_with(
        &self,
        ring: &PepperRing,
        password: &Password,
    ) -> Result<String, ServiceError> {
        let params = self.params.clone();
        let (password, ring) = (password.clone(), ring.clone());
        tokio::task::spawn_blocking(move || hash_blocking(params, &password, &ring))
            .await
            .map_err(|e| ServiceError::internal("join hashing task", e))?
    }

    /// Verifies a password against a stored PHC string, comparing in constant time. Parameters
    /// and the pepper's key id come from the PHC string, so hashes made with older parameters
    /// or an older key keep verifying (and legacy hashes without a key id, without a pepper).
    pub async fn verify(&self, password: &Password, phc: &str) -> Result<bool, ServiceError> {
        let ring = self.ring().await?;
        let password = password.clone();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || verify_blocking(&password, &phc, &ring, None))
            .await
            .map_err(|e| ServiceError::internal("join verification task", e))?
    }

    /// Spends the time of one verification and always fails: used when the e-mail is unknown.
    /// It reads the ring and hashes with its current pepper like a real verification, so
    /// neither the secret's read nor the work tells an unknown address from a wrong password.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, ServiceError> {
        let ring = self.ring().await?;
        let password = password.clone();
        let dummy = Some(ring.current_id().to_owned());
        tokio::task::spawn_blocking(move || verify_blocking(&password, DUMMY_PHC, &ring, dummy))
            .await
            .map_err(|e| ServiceError::internal("join verification task", e))?
            .map(|_| false)
    }

    /// After `password` verified against `phc`: a new hash with the ring's current key when
    /// `phc` was made without a pepper or with another key, else `None`. Log-in stores it, so
    /// the hashes move to the current key and an old key can leave the ring once none uses it.
    pub async fn upgrade(
        &self,
        password: &Password,
        phc: &str,
    ) -> Result<Option<String>, ServiceError> {
        let ring = self.ring().await?;
        if key_id(phc)?.as_deref() == Some(ring.current_id()) {
            return Ok(None);
        }
        self.hash_with(&ring, password).await.map(Some)
    }
}

/// The pepper key id a stored PHC string names; `None` for a hash made without a pepper.
pub fn key_id(phc: &str) -> Result<Option<String>, ServiceError> {
    let parsed = PasswordHash::new(phc).map_err(internal("parse stored password hash"))?;
    let params = Params::try_from(&parsed).map_err(internal("read parameters"))?;
    Ok(named_key(&params))
}

fn named_key(params: &Params) -> Option<String> {
    (!params.keyid().is_empty()).then(|| String::from_utf8_lossy(params.keyid()).into_owned())
}

/// Maps an argon2 error to a 500 that names the step (the message never holds the password).
fn internal(step: &'static str) -> impl Fn(password_hash::Error) -> ServiceError {
    move |e| ServiceError::internal(step, e.to_string())
}

fn hash_blocking(
    params: Params,
    password: &Password,
    ring: &PepperRing,
) -> Result<String, ServiceError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ServiceError::internal("os rng", e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(internal("encode salt"))?;
    let params = with_key_id(&params, ring.current_id())?;
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    let argon = Argon2::new_with_secret(
        ring.current_key(),
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
    )
    .map_err(|e| ServiceError::internal("pepper", e.to_string()))?;
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

/// `params` naming the pepper key `id` (argon2 records it in the PHC string; it does not
/// enter the hash, the key does).
fn with_key_id(params: &Params, id: &str) -> Result<Params, ServiceError> {
    let argon_error = |e: argon2::Error| ServiceError::internal("key id", e.to_string());
    let key_id = KeyId::new(id.as_bytes()).map_err(argon_error)?;
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(params.m_cost())
        .t_cost(params.t_cost())
        .p_cost(params.p_cost())
        .keyid(key_id);
    if let Some(len) = params.output_len() {
        builder.output_len(len);
    }
    builder.build().map_err(argon_error)
}

/// Verifies `password` against `phc` with the pepper its key id names in `ring` (none without
/// a key id). `dummy_key` overrides that with a key of the ring: the dummy verification's
/// stored hash names none, yet must cost what a peppered one does.
fn verify_blocking(
    password: &Password,
    phc: &str,
    ring: &PepperRing,
    dummy_key: Option<String>,
) -> Result<bool, ServiceError> {
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
    let id = dummy_key.or_else(|| named_key(&params));
    let argon = match &id {
        None => Argon2::new(algorithm, version, params.clone()),
        Some(id) => {
            let key = ring.key(id).ok_or_else(|| {
                ServiceError::internal(
                    "verify password",
                    format!(
                        "the stored hash names pepper key `{}`, which the ring in secret `{}` \
                         does not hold: put the key back (a key leaves the ring only when no \
                         hash uses it)",
                        id.escape_debug(),
                        peppers::SECRET
                    ),
                )
            })?;
            Argon2::new_with_secret(key, algorithm, version, params.clone())
                .map_err(|e| ServiceError::internal("pepper", e.to_string()))?
        }
    };
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
    //! The hashing itself, with a ring in hand; `tests/peppers.rs` covers reading the ring from
    //! Secrets Manager (moto), the log-in upgrade and the functions' use.
    use super::*;

    fn ring() -> PepperRing {
        PepperRing::generate().unwrap()
    }

    fn hash(password: &Password, ring: &PepperRing) -> String {
        hash_blocking(owasp_params(), password, ring).unwrap()
    }

    fn verify(password: &Password, phc: &str, ring: &PepperRing) -> bool {
        verify_blocking(password, phc, ring, None).unwrap()
    }

    #[test]
    fn hash_then_verify() {
        let ring = ring();
        let password = Password::new("correct horse battery staple");
        let phc = hash(&password, &ring);
        // keyid=azE is "k1" in base64.
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=azE$"),
            "{phc}"
        );
        assert_eq!(key_id(&phc).unwrap().as_deref(), Some("k1"));
        assert!(verify(&password, &phc, &ring));
        assert!(!verify(&Password::new("wrong horse"), &phc, &ring));
    }

    /// Hashes stored before the pepper (argon2's own `hash_password`, no secret) still verify
    /// with a ring in hand, and ours verify with argon2's own verifier given the same secret:
    /// the PHC strings are the same format.
    #[test]
    fn the_phc_strings_match_argon2s_own_in_both_directions() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ring = ring();
        let password = Password::new("correct horse battery staple");
        let legacy = Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let stored = legacy
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(key_id(&stored).unwrap(), None);
        assert!(verify(&password, &stored, &ring));
        assert!(!verify(&Password::new("wrong"), &stored, &ring));

        let ours = hash(&password, &ring);
        let parsed = PasswordHash::new(&ours).unwrap();
        let theirs = Argon2::new_with_secret(
            ring.current_key(),
            Algorithm::Argon2id,
            Version::V0x13,
            owasp_params(),
        )
        .unwrap();
        assert!(
            theirs
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        );
        assert!(theirs.verify_password(b"wrong", &parsed).is_err());
        // Without the pepper, the same password, salt and parameters give another hash.
        assert!(
            legacy
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_err()
        );
    }

    /// A hash verifies with the key it names after the ring moved on; one whose key left the
    /// ring is a fault that names the key id and no key.
    #[test]
    fn a_hash_verifies_with_the_key_it_names() {
        let first = ring();
        let password = Password::new("kept across rotations");
        let phc = hash(&password, &first);
        let rotated = first.with_new_key().unwrap().with_new_key().unwrap();
        assert!(verify(&password, &phc, &rotated));
        let newer = hash(&password, &rotated);
        assert_eq!(key_id(&newer).unwrap().as_deref(), Some("k3"));
        assert!(verify(&password, &newer, &rotated));

        // Another ring's `k1` is another key: the hash does not verify with it.
        assert!(!verify(&password, &phc, &ring()));
        let stranger = ring().with_new_key().unwrap();
        let error = verify_blocking(&password, &newer, &stranger, None).unwrap_err();
        let logged = crate::logging::error_chain(&error);
        assert!(logged.contains("pepper key `k3`"), "{logged}");
        assert!(matches!(error, ServiceError::Internal { .. }));
    }

    /// A stored hash with a larger memory cost than the buffer holds still verifies (the
    /// buffer grows), and the OWASP hashes after it keep working.
    #[test]
    fn a_hash_with_other_parameters_verifies() {
        use argon2::PasswordHasher as _;
        let ring = ring();
        let password = Password::new("an older, bigger hash");
        let bigger = Params::new(2 * OWASP_M_COST_KIB, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"fedcba9876543210").unwrap();
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, bigger)
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(verify(&password, &stored, &ring));
        let fresh = hash(&password, &ring);
        assert!(verify(&password, &fresh, &ring));
    }

    /// Nothing derived from a password stays in the shared buffer after a hash.
    #[test]
    fn the_block_buffer_is_wiped_after_use() {
        hash(&Password::new("wipe me afterwards"), &ring());
        let blocks = WORKSPACE.lock().unwrap();
        assert!(blocks.len() >= owasp_params().block_count());
        let zero = Block::default();
        assert!(blocks.iter().all(|b| b.as_ref() == zero.as_ref()));
    }

    #[test]
    fn salts_differ() {
        let ring = ring();
        let password = Password::new("same password");
        assert_ne!(hash(&password, &ring), hash(&password, &ring));
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

    /// The dummy hashes with the ring's current pepper (the cost of a real verification) and
    /// fails; a key id the ring lacks fails it loudly, as it would a real one.
    #[test]
    fn dummy_verification_uses_the_pepper_and_fails() {
        let ring = ring();
        let password = Password::new("anything at all");
        assert!(!verify_blocking(&password, DUMMY_PHC, &ring, Some("k1".into())).unwrap());
        assert!(verify_blocking(&password, DUMMY_PHC, &ring, Some("k9".into())).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let text = format!("{:?}", Password::new("hunter22hunter22"));
        assert!(!text.contains("hunter22"));
    }

    #[test]
    fn a_malformed_stored_hash_is_a_fault_not_a_mismatch() {
        let result = verify_blocking(
            &Password::new("whatever1"),
            "not a phc string",
            &ring(),
            None,
        );
        assert!(matches!(result, Err(ServiceError::Internal { .. })));
    }
}
