//! Stages on one emulator: the environment and two stages side by side (the three deployed at
//! the same time), each serving its own data; destroying one leaves the other serving and
//! nothing of itself; the environment's own stack is never touched by either.

use crate::common::*;

/// The names of the emulator's functions that start with `prefix`.
fn functions_named(endpoint: &str, prefix: &str) -> Vec<String> {
    with_lambda(endpoint, async |lambda| {
        let listed = lambda.list_functions().send().await.unwrap();
        listed
            .functions()
            .iter()
            .filter_map(|f| f.function_name())
            .filter(|n| n.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    })
}

#[test]
fn stages_serve_apart_destroy_cleanly_and_never_touch_the_environment() {
    let dir = scratch("stages");
    let bins = release_binaries(&dir);
    let prebuilt = bins.to_str().unwrap();
    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let _down = Down(dir.clone());
    let endpoint = up["endpoint"].as_str().unwrap().to_owned();

    // Bad names are refused before anything is made: too long for the prefix, not kebab.
    for bad in ["toolongname", "Alice", "a--b", "9lives"] {
        let refused = xtask(&dir, &["deploy", "--stage", bad, "--prebuilt", prebuilt]);
        assert!(!refused.status.success(), "{bad}");
        assert!(
            stderr(&refused).contains("stage name"),
            "{bad}: {}",
            stderr(&refused)
        );
    }
    // prod makes no stages.
    let refused = xtask(&dir, &["outputs", "--env", "prod", "--stage", "alice"]);
    assert!(
        stderr(&refused).contains("allows no stages"),
        "{}",
        stderr(&refused)
    );

    // The environment and its two stages deploy at the same time to a fresh emulator, as a
    // developer's, a pull request's and the main branch's may: each has its own synthesized
    // stacks, state, records and server; the bootstrap stack they share is applied by one
    // while the others wait their turn and then find it applied.
    let (base, deployed) = std::thread::scope(|scope| {
        let dir = &dir;
        let base = scope.spawn(move || {
            let args = ["deploy", "--json", "--no-serve", "--prebuilt", prebuilt];
            stdout_json(&xtask(dir, &args))
        });
        let stages = ["alice", "bob"].map(|stage| {
            scope.spawn(move || {
                let args = ["deploy", "--stage", stage, "--json", "--prebuilt", prebuilt];
                (stage, stdout_json(&xtask(dir, &args)))
            })
        });
        let stages: Vec<(&str, serde_json::Value)> =
            stages.map(|deploy| deploy.join().unwrap()).into();
        (base.join().unwrap(), stages)
    });
    assert_eq!(base["stacks"]["service"], "applied");
    let mut bootstrap: Vec<&str> = deployed
        .iter()
        .map(|(_, report)| &report["stacks"]["bootstrap"])
        .chain([&base["stacks"]["bootstrap"]])
        .map(|applied| applied.as_str().unwrap())
        .collect();
    bootstrap.sort();
    assert_eq!(
        bootstrap,
        ["applied", "unchanged", "unchanged"],
        "applied once, by one"
    );

    let mut served = Vec::new();
    for (stage, deployed) in deployed {
        assert_eq!(deployed["stage"], stage);
        assert_eq!(deployed["stacks"]["service"], "applied");
        let key = String::from_utf8(
            xtask(
                &dir,
                &[
                    "outputs",
                    "api_key_value",
                    "--show-sensitive",
                    "--stage",
                    stage,
                ],
            )
            .stdout,
        )
        .unwrap();
        let url = deployed["local_api_url"].as_str().unwrap().to_owned();
        served.push((stage, url, key.trim().to_owned()));
    }
    let stage_functions = functions_named(&endpoint, "prod-service-alice-");
    assert_eq!(
        stage_functions.len(),
        FUNCTIONS.len(),
        "{stage_functions:?}"
    );

    // A user registered in alice exists only there.
    let user =
        r#"{"email":"ada@example.com","name":"Ada","password":"correct horse battery staple"}"#;
    let login = r#"{"email":"ada@example.com","password":"correct horse battery staple"}"#;
    let (alice, bob) = (&served[0], &served[1]);
    let (status, body) = api_call(&alice.1, &alice.2, "POST", "/users", Some(user));
    assert_eq!(status, 201, "{body}");
    let (status, body) = api_call(&alice.1, &alice.2, "POST", "/sessions", Some(login));
    assert_eq!(status, 201, "{body}");
    let (status, body) = api_call(&bob.1, &bob.2, "POST", "/sessions", Some(login));
    assert_eq!(status, 401, "bob never saw alice's user: {body}");
    // Each stage's key is its own: alice's key opens nothing in bob.
    let (status, _) = api_call(&bob.1, &alice.2, "POST", "/sessions", Some(login));
    assert_eq!(status, 403, "alice's API key is not bob's");

    let listed = stdout_json(&xtask(&dir, &["stages", "--json"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{listed}"
    );
    for record in listed.as_array().unwrap() {
        assert!(
            record["url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
        assert!(record["created"].is_string() && record["deployed"].is_string());
    }

    // Destroying alice: nothing of it is left (destroy checks by tag and by name; so does this),
    // bob still serves.
    let destroyed = stdout_json(&xtask(&dir, &["destroy", "--stage", "alice", "--json"]));
    assert_eq!(destroyed["stage"], "alice");
    assert!(
        destroyed["checked_by_tag"].as_u64().unwrap() > 0,
        "{destroyed}"
    );
    assert_eq!(
        functions_named(&endpoint, "prod-service-alice-"),
        Vec::<String>::new()
    );
    let tagged = with_aws(&endpoint, async |config| {
        use aws_sdk_resourcegroupstagging::types::TagFilter;
        aws_sdk_resourcegroupstagging::Client::new(&config)
            .get_resources()
            .tag_filters(TagFilter::builder().key("Stage").values("alice").build())
            .send()
            .await
            .unwrap()
            .resource_tag_mapping_list()
            .len()
    });
    assert_eq!(tagged, 0, "nothing tagged Stage=alice is left");
    let (status, body) = api_call(&bob.1, &bob.2, "POST", "/users", Some(user));
    assert_eq!(status, 201, "bob still serves: {body}");
    assert_eq!(
        functions_named(&endpoint, "prod-service-bob-").len(),
        FUNCTIONS.len()
    );
    let listed = stdout_json(&xtask(&dir, &["stages", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["stage"], "bob");

    // Neither stage changed the environment's own stack.
    let plan = xtask(
        &dir,
        &["plan", "--prebuilt", prebuilt, "--stack", "service"],
    );
    let said = String::from_utf8_lossy(&plan.stdout).into_owned() + &stderr(&plan);
    assert!(plan.status.success(), "{said}");
    assert!(
        said.contains("No changes."),
        "the base plan is empty: {said}"
    );

    // A sweep of stages idle for a day leaves bob; one with no idle bound destroys it.
    let kept = stdout_json(&xtask(
        &dir,
        &["stages", "sweep", "--older-than", "1day", "--json"],
    ));
    assert_eq!(kept["destroyed"], serde_json::json!([]), "{kept}");
    let swept = stdout_json(&xtask(
        &dir,
        &["stages", "sweep", "--older-than", "0s", "--json"],
    ));
    assert_eq!(swept["destroyed"], serde_json::json!(["bob"]), "{swept}");
    assert_eq!(
        functions_named(&endpoint, "prod-service-bob-"),
        Vec::<String>::new()
    );
    assert_eq!(
        functions_named(&endpoint, "prod-service-").len(),
        FUNCTIONS.len(),
        "the environment's functions are all there"
    );
}
