//! Every bound the contract states is enforced at the edge, before any side effect.
//!
//! The test reads `functions/openapi.json`, finds every request-body property and query
//! parameter with a bound (`minLength`, `maxLength`, `minimum`, `maximum`, `enum`, `pattern`),
//! and for each one sends a request with the value at the limit and one just past it, to the
//! real handlers against moto. Past the limit must be refused (422 for a body, 400 for a query)
//! with both tables unchanged and the caller's session alive; at the limit must not be refused
//! for that field. A field added to the contract with a bound is tried the next time this runs;
//! an operation the test cannot call (a new function's) fails it, naming the operation.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use http::{Method, Response, StatusCode};
use lambda_http::Body;
use serde_json::{Value, json};
use service_common::testing::{Event, TestApp, body_json};

const PASSWORD: &str = "correct horse battery";

/// One bound of one field: where it sits, its name, and the values at and past it.
#[derive(Debug)]
struct Case {
    operation: String,
    location: Location,
    field: String,
    bound: String,
    at_limit: Option<Value>,
    past_limit: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Body,
    Query,
}

/// A string of `chars` characters shaped for `format` (an e-mail address stays one).
fn string_of(format: Option<&str>, chars: usize) -> String {
    match format {
        Some("email") => {
            let domain = "@example.com";
            let local = chars.saturating_sub(domain.len()).max(1);
            // Dot-atom labels of at most 63 characters keep the address valid at any length.
            let mut text = String::new();
            while text.len() < local {
                if !text.is_empty() && text.len().is_multiple_of(60) && text.len() + 1 < local {
                    text.push('.');
                } else {
                    text.push('a');
                }
            }
            format!("{text}{domain}")
        }
        _ => "p".repeat(chars),
    }
}

/// The cases of one schema property (or query parameter schema).
fn cases_of(operation: &str, location: Location, field: &str, schema: &Value) -> Vec<Case> {
    let format = schema["format"].as_str().or_else(|| {
        // The address fields carry the e-mail pattern, not `format: email`.
        (field == "email").then_some("email")
    });
    let case = |bound: String, at_limit: Option<Value>, past_limit: Value| Case {
        operation: operation.to_owned(),
        location,
        field: field.to_owned(),
        bound,
        at_limit,
        past_limit,
    };
    let mut cases = Vec::new();
    if let Some(min) = schema["minLength"].as_u64().filter(|min| *min > 0) {
        let min = usize::try_from(min).unwrap();
        cases.push(case(
            format!("minLength {min}"),
            Some(json!(string_of(format, min))),
            json!("p".repeat(min - 1)),
        ));
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        let max = usize::try_from(max).unwrap();
        cases.push(case(
            format!("maxLength {max}"),
            Some(json!(string_of(format, max))),
            json!(string_of(format, max + 1)),
        ));
    }
    let number = |v: u64| match location {
        Location::Body => json!(v),
        Location::Query => json!(v.to_string()),
    };
    if let Some(min) = schema["minimum"].as_u64().filter(|min| *min > 0) {
        cases.push(case(
            format!("minimum {min}"),
            Some(number(min)),
            number(min - 1),
        ));
    }
    if let Some(max) = schema["maximum"].as_u64() {
        cases.push(case(
            format!("maximum {max}"),
            Some(number(max)),
            number(max + 1),
        ));
    }
    if let Some(values) = schema["enum"].as_array() {
        cases.push(case(
            "enum".to_owned(),
            values.first().cloned(),
            json!("not-one-of-the-values"),
        ));
    }
    if schema.get("pattern").is_some() {
        // BEL matches none of the contract's patterns (addresses, names, cursors); what a
        // valid value looks like is the baseline request's.
        cases.push(case("pattern".to_owned(), None, json!("\u{7}")));
    }
    cases
}

/// Every bounded field of every operation in the contract.
fn contract_cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schemas = &document["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => schemas[reference.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let mut cases = Vec::new();
    for operations in document["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            let Some(id) = operation["operationId"].as_str() else {
                continue;
            };
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "query" {
                    let name = parameter["name"].as_str().unwrap();
                    cases.extend(cases_of(id, Location::Query, name, &parameter["schema"]));
                }
            }
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            if body.is_null() {
                continue;
            }
            let body = resolve(body);
            for (name, property) in body["properties"].as_object().into_iter().flatten() {
                cases.extend(cases_of(id, Location::Body, name, &resolve(property)));
            }
        }
    }
    cases
}

type Items = Vec<HashMap<String, AttributeValue>>;

/// Both tables, sorted, to compare before and after a refused request.
async fn tables(app: &TestApp) -> (Items, Items) {
    let key = |items: &mut Items, name: &str| {
        items.sort_by_key(|item| format!("{:?}", item[name]));
    };
    let (mut users, mut sessions) = (app.user_items().await, app.session_items().await);
    key(&mut users, "pk");
    key(&mut sessions, "token_hash");
    (users, sessions)
}

/// A fresh user, signed in: its id, its token, and its version.
async fn fresh_user(app: &TestApp, n: usize) -> (String, String, u64) {
    let email = format!("bounds{n}@example.com");
    let register = Event::rest(Method::POST, "/users")
        .json(&json!({"email": email, "name": "Bound Test", "password": PASSWORD}));
    let user = body_json(&users::handle(&app.state(), register.build()).await.unwrap());
    let log_in =
        Event::rest(Method::POST, "/sessions").json(&json!({"email": email, "password": PASSWORD}));
    let session = body_json(
        &sessions::handle(&app.state(), log_in.build())
            .await
            .unwrap(),
    );
    (
        user["id"].as_str().unwrap().to_owned(),
        session["token"].as_str().unwrap().to_owned(),
        user["version"].as_u64().unwrap(),
    )
}

/// The request of `case` with `value` in its field, on a valid baseline for its operation.
fn request(case: &Case, value: &Value, n: usize, user: &(String, String, u64)) -> Event {
    let (id, token, version) = user;
    let (method, path, mut body) = match case.operation.as_str() {
        "registerUser" => (
            Method::POST,
            "/users",
            json!({"email": format!("new{n}@example.com"), "name": "New User", "password": PASSWORD}),
        ),
        "logIn" => (
            Method::POST,
            "/sessions",
            json!({"email": format!("bounds{n}@example.com"), "password": PASSWORD}),
        ),
        "updateUser" => (
            Method::PATCH,
            "/users/{id}",
            json!({"version": version, "name": "Renamed", "current_password": PASSWORD}),
        ),
        "deleteUser" => (
            Method::DELETE,
            "/users/{id}",
            json!({"current_password": PASSWORD}),
        ),
        "listUsers" => (Method::GET, "/users", Value::Null),
        other => panic!(
            "the contract has bounded fields on `{other}`, which this test cannot call yet: \
             add its baseline request here"
        ),
    };
    let mut event = Event::rest(method, path).bearer(token);
    if path.contains("{id}") {
        event = event.param("id", id);
    }
    match case.location {
        Location::Body => {
            body[&case.field] = value.clone();
            event = event.json(&body);
        }
        Location::Query => {
            event = event.query(&case.field, value.as_str().unwrap());
        }
    }
    event
}

async fn send(app: &TestApp, operation: &str, event: Event) -> Response<Body> {
    let request = event.build();
    if operation == "logIn" {
        sessions::handle(&app.state(), request).await.unwrap()
    } else {
        users::handle(&app.state(), request).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_bound_is_enforced_before_any_side_effect() {
    let app = TestApp::start().await;
    let cases = contract_cases();
    // The fields the contract bounds today; a new one joins by itself.
    for (operation, field) in [
        ("updateUser", "current_password"),
        ("deleteUser", "current_password"),
        ("registerUser", "password"),
        ("updateUser", "version"),
        ("listUsers", "limit"),
        ("logIn", "email"),
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.operation == operation && c.field == field),
            "no bound found for {operation} {field}: is the contract still read right?"
        );
    }
    for (n, case) in cases.iter().enumerate() {
        let user = fresh_user(&app, n).await;
        let refused = match case.location {
            Location::Body => StatusCode::UNPROCESSABLE_ENTITY,
            Location::Query => StatusCode::BAD_REQUEST,
        };

        let before = tables(&app).await;
        let past = request(case, &case.past_limit, n, &user);
        let response = send(&app, &case.operation, past).await;
        assert_eq!(
            response.status(),
            refused,
            "{} {} {} past the limit: {:?}",
            case.operation,
            case.field,
            case.bound,
            body_json(&response)
        );
        assert_eq!(
            tables(&app).await,
            before,
            "{} {} {}: a refused request changed the tables",
            case.operation,
            case.field,
            case.bound
        );

        if let Some(value) = &case.at_limit {
            let at = request(case, value, n, &user);
            let response = send(&app, &case.operation, at).await;
            let body = body_json(&response);
            let refused_for_this_field = response.status() == refused
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&case.field));
            assert!(
                !refused_for_this_field,
                "{} {} {} at the limit was refused: {body:?}",
                case.operation, case.field, case.bound
            );
        }
    }
}
