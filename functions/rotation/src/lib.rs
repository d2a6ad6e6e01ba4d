//! The rotation function of the generated secrets (issue #24, point 4): Secrets Manager invokes
//! it four times per rotation, one step each, with the version id (`ClientRequestToken`) the
//! rotation makes. It follows AWS's rotation template (`SecretsManagerRotationTemplate`,
//! "How rotation works"):
//!
//! - `createSecret`: unless the token's version already holds a value (a retry), read
//!   `AWSCURRENT`, compute the next value and store it as the token's version, stage
//!   `AWSPENDING`. Secrets Manager keeps one value per version id, so a retry never makes a
//!   second version.
//! - `setSecret`: nothing. The template's step exists for a secret that is also a credential
//!   somewhere else (a database user's password must be changed in the database). A key ring
//!   lives only in the secret: nothing outside holds a copy to update.
//! - `testSecret`: the pending value must parse and keep every key of the current one
//!   (`PepperRing::check_successor`): every stored hash keeps verifying after the switch.
//! - `finishSecret`: move `AWSCURRENT` to the token's version (Secrets Manager moves
//!   `AWSPREVIOUS` to the version it left) and take `AWSPENDING` off it, so no version is left
//!   pending.
//!
//! Before any step, as the template does: rotation must be enabled on the secret and the token
//! must be a version of it staged `AWSPENDING` (or already `AWSCURRENT`: a step retried after
//! the rotation finished has nothing left to do).
//!
//! The readers (`service_common::secrets`) read `AWSCURRENT` only, so they see the old ring
//! until `finishSecret` and the new one, which still holds every old key, after it: no reader
//! fails at any point. The only generated kind is the pepper key ring
//! (`catalog::secrets::Generate::KeyRing`), so every secret this function rotates is one. It
//! logs one line per step naming the secret and the version, never a value.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::{Deserialize, Serialize};
use service_common::error::ServiceError;
use service_common::peppers::PepperRing;
use service_common::secrets::SecretValue;

/// The stage of the value the readers use.
pub const CURRENT: &str = "AWSCURRENT";
/// The stage of the value a rotation is making.
pub const PENDING: &str = "AWSPENDING";
/// The stage Secrets Manager gives the value `AWSCURRENT` left.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// One of the four steps of a rotation, as Secrets Manager names it in the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Step {
    #[serde(rename = "createSecret")]
    Create,
    #[serde(rename = "setSecret")]
    Set,
    #[serde(rename = "testSecret")]
    Test,
    #[serde(rename = "finishSecret")]
    Finish,
}

impl Step {
    /// Every step, in the order Secrets Manager runs them.
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    /// The name Secrets Manager gives the step.
    pub fn name(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

/// The event Secrets Manager sends for each step. `aws_lambda_events` has one
/// (`SecretsManagerSecretRotationEvent`) with the step as a string; this one makes an unknown
/// step a refused event instead of a case every step must handle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: Step,
    /// The secret's ARN (or name).
    pub secret_id: String,
    /// The id of the version this rotation makes.
    pub client_request_token: String,
}

/// Why a step refused or failed. Never holds a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("secret `{secret}`: rotation is not enabled on it")]
    NotEnabled { secret: String },
    #[error("secret `{secret}`: version {token} is not a version of it")]
    UnknownVersion { secret: String, token: String },
    #[error("secret `{secret}`: version {token} is not staged {PENDING}")]
    NotPending { secret: String, token: String },
    #[error("secret `{secret}`: no version is staged {CURRENT}")]
    NoCurrent { secret: String },
    #[error("secret `{secret}`: {call} failed: {detail}")]
    Call {
        secret: String,
        call: &'static str,
        detail: String,
    },
    #[error("secret `{secret}`: {step}: {source}")]
    Value {
        secret: String,
        step: &'static str,
        source: ServiceError,
    },
}

/// Runs one step of a rotation of `event.secret_id` through `client`.
pub async fn handle(client: &Client, event: &RotationEvent) -> Result<(), RotationError> {
    let rotation = Rotation {
        client,
        secret: &event.secret_id,
        token: &event.client_request_token,
    };
    let stages = rotation.checked_stages().await?;
    let token_stages = &stages[rotation.token];
    if token_stages.iter().any(|s| s == CURRENT) && event.step != Step::Finish {
        rotation.log(event.step, "the version is already current: nothing to do");
        return Ok(());
    }
    match event.step {
        Step::Create => rotation.create().await,
        Step::Set => {
            rotation.log(Step::Set, "a key ring has no copy outside the secret");
            Ok(())
        }
        Step::Test => rotation.test().await,
        Step::Finish => rotation.finish(&stages).await,
    }
}

/// One rotation: the secret and the version it makes.
struct Rotation<'a> {
    client: &'a Client,
    secret: &'a str,
    token: &'a str,
}

impl Rotation<'_> {
    fn log(&self, step: Step, message: &str) {
        tracing::info!(
            step = step.name(),
            secret = self.secret,
            version = self.token,
            "{message}"
        );
    }

    fn call_failed<E: std::error::Error>(
        &self,
        call: &'static str,
    ) -> impl FnOnce(E) -> RotationError + '_ {
        move |error| RotationError::Call {
            secret: self.secret.to_owned(),
            call,
            detail: DisplayErrorContext(error).to_string(),
        }
    }

    fn bad_value(&self, step: Step) -> impl FnOnce(ServiceError) -> RotationError + '_ {
        move |source| RotationError::Value {
            secret: self.secret.to_owned(),
            step: step.name(),
            source,
        }
    }

    /// The secret's versions and their stages, after the template's checks: rotation is
    /// enabled and the token is a version staged `AWSPENDING` or `AWSCURRENT`.
    async fn checked_stages(&self) -> Result<HashMap<String, Vec<String>>, RotationError> {
        let described = self
            .client
            .describe_secret()
            .secret_id(self.secret)
            .send()
            .await
            .map_err(self.call_failed("DescribeSecret"))?;
        if described.rotation_enabled() != Some(true) {
            return Err(RotationError::NotEnabled {
                secret: self.secret.to_owned(),
            });
        }
        let stages = described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default();
        let Some(token_stages) = stages.get(self.token) else {
            return Err(RotationError::UnknownVersion {
                secret: self.secret.to_owned(),
                token: self.token.to_owned(),
            });
        };
        if !token_stages.iter().any(|s| s == CURRENT || s == PENDING) {
            return Err(RotationError::NotPending {
                secret: self.secret.to_owned(),
                token: self.token.to_owned(),
            });
        }
        Ok(stages)
    }

    /// The value of the version staged `stage`, or of the token's version with `stage`.
    async fn read(
        &self,
        stage: &str,
        version: Option<&str>,
    ) -> Result<Option<SecretValue>, RotationError> {
        let read = self
            .client
            .get_secret_value()
            .secret_id(self.secret)
            .version_stage(stage)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        match read {
            Ok(output) => Ok(output.secret_string().map(SecretValue::new)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.call_failed("GetSecretValue")(error)),
        }
    }

    async fn ring(
        &self,
        step: Step,
        stage: &str,
        version: Option<&str>,
    ) -> Result<PepperRing, RotationError> {
        let value = self.read(stage, version).await?.ok_or_else(|| {
            self.bad_value(step)(ServiceError::internal(
                "reading a rotated secret",
                format!("the {stage} version holds no text value"),
            ))
        })?;
        PepperRing::parse(&value).map_err(self.bad_value(step))
    }

    async fn create(&self) -> Result<(), RotationError> {
        if self.read(PENDING, Some(self.token)).await?.is_some() {
            self.log(Step::Create, "the pending version exists already (a retry)");
            return Ok(());
        }
        let current = self.ring(Step::Create, CURRENT, None).await?;
        let next = current
            .with_new_key()
            .map_err(self.bad_value(Step::Create))?;
        self.client
            .put_secret_value()
            .secret_id(self.secret)
            .client_request_token(self.token)
            .secret_string(next.to_value().expose())
            .version_stages(PENDING)
            .send()
            .await
            .map_err(self.call_failed("PutSecretValue"))?;
        self.log(
            Step::Create,
            "stored the next key ring as the pending version",
        );
        Ok(())
    }

    async fn test(&self) -> Result<(), RotationError> {
        let current = self.ring(Step::Test, CURRENT, None).await?;
        let pending = self.ring(Step::Test, PENDING, Some(self.token)).await?;
        current
            .check_successor(&pending)
            .map_err(self.bad_value(Step::Test))?;
        self.log(Step::Test, "the pending key ring keeps every current key");
        Ok(())
    }

    async fn finish(&self, stages: &HashMap<String, Vec<String>>) -> Result<(), RotationError> {
        let current = stages
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
            .map(|(version, _)| version.as_str())
            .ok_or_else(|| RotationError::NoCurrent {
                secret: self.secret.to_owned(),
            })?;
        if current != self.token {
            self.client
                .update_secret_version_stage()
                .secret_id(self.secret)
                .version_stage(CURRENT)
                .move_to_version_id(self.token)
                .remove_from_version_id(current)
                .send()
                .await
                .map_err(self.call_failed("UpdateSecretVersionStage"))?;
        }
        // After AWSCURRENT moved: a retry of a step that failed here finds the token current
        // and only takes AWSPENDING off.
        if stages[self.token].iter().any(|s| s == PENDING) {
            self.client
                .update_secret_version_stage()
                .secret_id(self.secret)
                .version_stage(PENDING)
                .remove_from_version_id(self.token)
                .send()
                .await
                .map_err(self.call_failed("UpdateSecretVersionStage"))?;
        }
        self.log(Step::Finish, "the version is current");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_secrets_managers() {
        let event: RotationEvent = serde_json::from_str(
            r#"{"Step":"testSecret","SecretId":"arn:aws:secretsmanager:us-east-1:1:secret:s-AbCdEf","ClientRequestToken":"t-1"}"#,
        )
        .unwrap();
        assert_eq!(event.step, Step::Test);
        assert_eq!(event.client_request_token, "t-1");
        for step in Step::ALL {
            let json = serde_json::to_value(step).unwrap();
            assert_eq!(json, step.name());
        }
        let unknown = serde_json::from_str::<RotationEvent>(
            r#"{"Step":"dropSecret","SecretId":"s","ClientRequestToken":"t"}"#,
        );
        assert!(unknown.is_err());
    }
}
