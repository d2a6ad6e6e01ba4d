//! The declared secrets' reader against the emulator (moto over HTTP): a secret that exists
//! without a value, or whose variable is missing, fails the request that needs it with the
//! documented 500 (and a log line that says how to fix it, without a value); once set, it is
//! read.

use emulator::Emulator;
use service_common::ServiceError;
use service_common::secrets::{Secrets, variable};
use service_common::testing::secrets_client as client;

#[test]
fn the_variable_is_the_one_infra_sets() {
    for name in ["payments-key", "password-peppers", "a1"] {
        assert_eq!(variable(name), catalog::secrets::variable(name));
    }
}

#[tokio::test]
async fn an_unset_secret_fails_the_request_and_a_set_one_is_read() {
    let moto = Emulator::for_tests().expect("moto starts");
    let client = client(moto.endpoint());
    let name = format!("test-secret-{}", uuid::Uuid::new_v4());
    let created = client.create_secret().name(&name).send().await.unwrap();
    let arn = created.arn().unwrap().to_owned();
    let lookup = |var: &str| (var == variable("payments-key")).then(|| arn.clone());
    let secrets =
        Secrets::from_lookup(client.clone(), &["payments-key", "signing-key"], lookup).unwrap();

    let error = secrets.get("payments-key").await.unwrap_err();
    assert_eq!(error.status(), 500);
    assert_eq!(error.code(), "internal_error");
    assert_eq!(error.public_message(), "internal error");
    let logged = service_common::logging::error_chain(&error);
    assert!(
        logged.contains("secret `payments-key`: has no value")
            && logged.contains("cargo xtask secret set payments-key"),
        "{logged}"
    );
    let missing = secrets.get("signing-key").await.unwrap_err();
    let logged = service_common::logging::error_chain(&missing);
    assert!(
        logged.contains("SECRET_ARN_SIGNING_KEY is not set"),
        "{logged}"
    );
    assert!(matches!(missing, ServiceError::Internal { .. }));

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("s3cr3t-value")
        .send()
        .await
        .unwrap();
    let value = secrets.get("payments-key").await.unwrap();
    assert_eq!(value.expose(), "s3cr3t-value");
    assert!(!format!("{value:?}").contains("s3cr3t"));
}
