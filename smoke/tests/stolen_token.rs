//! What a stolen token buys, tried as an attacker would, against the real binaries behind the
//! local API server (several warm `users` processes at once) and moto: one password check, no
//! matter how many requests race on it.

mod support;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;
use smoke::api::Api;

const PASSWORD: &str = "correct horse battery";
/// Rounds, each with a fresh stolen token.
const ROUNDS: usize = 10;
/// Concurrent wrong guesses per round: more than the local server's four instances.
const GUESSES: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_guesses_on_one_token_get_one_password_check() {
    let stack = support::Stack::start(false).await;
    let api = Api::new(&stack.target());
    let email = "victim@example.com";
    let register = api
        .call(
            Method::POST,
            "/users",
            None,
            Some(json!({"email": email, "name": "Victim", "password": PASSWORD})),
        )
        .await;
    assert_eq!(register.status(), Some(201), "{:?}", register.body());
    let id = register.body()["id"].as_str().unwrap().to_owned();

    let mut tally = BTreeMap::new();
    for round in 0..ROUNDS {
        let login = api
            .call(
                Method::POST,
                "/sessions",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(login.status(), Some(201));
        let token = login.body()["token"].as_str().unwrap().to_owned();
        let guesses: Vec<_> = (0..GUESSES)
            .map(|i| {
                let (api, token, path) = (api.clone(), token.clone(), format!("/users/{id}"));
                let body = json!({"version": 1, "email": "thief@example.com",
                                  "current_password": format!("guess {round}.{i}")});
                tokio::spawn(async move {
                    api.call(Method::PATCH, &path, Some(&token), Some(body))
                        .await
                        .status()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for guess in guesses {
            statuses.push(guess.await.unwrap().unwrap_or(0));
        }
        let checked = statuses.iter().filter(|s| **s == 403).count();
        let refused = statuses.iter().filter(|s| **s == 401).count();
        assert_eq!(
            (checked, refused),
            (1, GUESSES - 1),
            "round {round}: one guess is checked, the others refused: {statuses:?}"
        );
        for status in statuses {
            *tally.entry(status).or_insert(0) += 1;
        }
        let after = api
            .call(Method::GET, "/sessions/current", Some(&token), None)
            .await;
        assert_eq!(after.status(), Some(401), "round {round}: the token died");
    }
    // The function's own log agrees: one failed check per round, whatever the processes.
    let log = std::fs::read_to_string(stack.dir.join("functions/users/output.log"))
        .expect("the users function's log");
    assert_eq!(
        log.matches("re-authentication failed; session ended")
            .count(),
        ROUNDS,
        "checked guesses in the log"
    );
    eprintln!("{ROUNDS} rounds of {GUESSES} guesses: {tally:?}");
}
