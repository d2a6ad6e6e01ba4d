//! Test support for the function crates (feature `test-tables`): any function's state on moto
//! with freshly created tables shaped exactly like the contract's schema, builders for real
//! API Gateway events (REST v1 with a stage, HTTP API v2), each app's own `session-sweeps`
//! queue (what was sent to it, as the queue worker's event), and the checks every function
//! crate runs on its route table and its OpenAPI fragment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use emulator::Emulator;
use http::{Method, Response};
use lambda_http::{Body, Request};
use serde_json::{Value, json};

use crate::config::Config;
use crate::http::Route;
use crate::peppers::{self, PepperRing};
use crate::queues::SweepQueue;
use crate::secrets::{Secrets, variable};
use crate::state::{Clients, FunctionState};

/// The stage name used in generated events, so every test exercises stage handling.
pub const STAGE: &str = "prod";

type Item = HashMap<String, AttributeValue>;

/// One moto per test binary while any test uses it: tests running at the same time share it,
/// and the last one to finish stops it (a `static` would never be dropped and leak moto).
fn shared_emulator() -> Arc<Emulator> {
    static SHARED: Mutex<Weak<Emulator>> = Mutex::new(Weak::new());
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(running) = shared.upgrade() {
        return running;
    }
    let started = Arc::new(
        Emulator::for_tests().unwrap_or_else(|e| panic!("cannot start the moto emulator: {e}")),
    );
    *shared = Arc::downgrade(&started);
    started
}

/// A DynamoDB client for moto at `endpoint`, with the contract's dummy credentials and the
/// call log the functions' own client has.
pub fn client(endpoint: &str) -> Client {
    let builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"));
    Client::from_conf(crate::calls::with_call_log(builder))
}

/// The configuration of the emulator's other clients (Secrets Manager, SQS): moto at
/// `endpoint`, with the contract's dummy credentials.
fn moto_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = Credentials::new("test", "test", None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .build()
}

/// A Secrets Manager client for moto at `endpoint`, with the contract's dummy credentials.
pub fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto_config(endpoint))
}

/// An SQS client for moto at `endpoint`, with the contract's dummy credentials.
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto_config(endpoint))
}

/// The production JSON log lines (`logging::json_layer`), captured in memory, for tests that
/// read what the functions log.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A subscriber writing the functions' JSON lines at `level` (a `RUST_LOG` spec) here.
    pub fn subscriber(&self, level: &str) -> impl tracing::Subscriber + Send + Sync + 'static {
        use tracing_subscriber::layer::SubscriberExt as _;
        let writer = self.clone();
        tracing_subscriber::Registry::default()
            .with(crate::logging::json_layer(level, move || writer.clone()))
    }

    /// How many bytes were logged so far (a position for [`LogCapture::text`]).
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text logged between two positions.
    pub fn text(&self, range: std::ops::Range<usize>) -> String {
        String::from_utf8(self.bytes()[range].to_vec()).expect("the log lines are UTF-8")
    }
}

/// A service on moto with its own pair of tables and its own pepper ring (unique names, so
/// tests can share one moto).
pub struct TestApp {
    pub config: Config,
    /// The client the functions' states ([`TestApp::state`]) and the helpers use.
    pub client: Client,
    pub users_table: String,
    pub sessions_table: String,
    /// The client of the functions' secrets reader.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The ARN of this app's `password-peppers` secret, set to a generated ring at start.
    pub peppers_arn: String,
    /// The client of this app's queue.
    pub sqs: aws_sdk_sqs::Client,
    /// The URL of this app's `session-sweeps` queue, which the functions' states send to.
    pub sweeps_url: String,
    _emulator: Arc<Emulator>,
}

impl TestApp {
    /// Fresh tables and the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Fresh tables; `adjust` may change the configuration (CORS, TTL, ...).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let emulator = tokio::task::spawn_blocking(shared_emulator)
            .await
            .expect("emulator start-up task");
        let client = client(emulator.endpoint());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("test-{}-", &id[..12]);
        let users_table = format!("{prefix}users");
        let sessions_table = format!("{prefix}sessions");
        create_tables(&client, &users_table, &sessions_table).await;
        let secrets = secrets_client(emulator.endpoint());
        let ring = PepperRing::generate().expect("a generated ring");
        let peppers_arn = secrets
            .create_secret()
            .name(format!("{prefix}{}", peppers::SECRET))
            .secret_string(ring.to_value().expose())
            .send()
            .await
            .unwrap_or_else(|e| panic!("create the pepper ring: {e:?}"))
            .arn()
            .expect("a created secret has an ARN")
            .to_owned();
        let sqs = sqs_client(emulator.endpoint());
        let sweeps_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}{}", crate::sweeps::QUEUE))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create the sweep queue: {e:?}"))
            .queue_url
            .expect("a created queue has a URL");
        let mut config = Config::from_lookup(|name| match name {
            "USERS_TABLE" => Some(users_table.clone()),
            "SESSIONS_TABLE" => Some(sessions_table.clone()),
            "SERVICE_VERSION" => Some("test-version".to_owned()),
            _ => None,
        })
        .expect("test configuration");
        adjust(&mut config);
        Self {
            config,
            client,
            users_table,
            sessions_table,
            secrets,
            peppers_arn,
            sqs,
            sweeps_url,
            _emulator: emulator,
        }
    }

    /// The state of any function, over this app's tables, client and secrets. Cheap: tests
    /// build one per request, so each reads the secrets afresh (a ring a test changed serves
    /// at once, no TTL to wait for).
    pub fn state<S: FunctionState>(&self) -> S {
        let clients = Clients {
            dynamo: self.client.clone(),
            secrets: self.secrets_reader(S::SECRETS),
            sweeps: SweepQueue::new(self.sqs.clone(), Some(self.sweeps_url.clone())),
        };
        S::new(self.config.clone(), clients)
    }

    /// Takes every message on this app's sweep queue (they are deleted, as Lambda deletes a
    /// batch that succeeded) and hands them back as the event Lambda's poller would invoke
    /// the queue worker with, in the order they were received.
    pub async fn take_sweeps(&self) -> aws_lambda_events::sqs::SqsEvent {
        let mut event = aws_lambda_events::sqs::SqsEvent::default();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.sweeps_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive from the sweep queue: {e:?}"))
                .messages
                .unwrap_or_default();
            if received.is_empty() {
                return event;
            }
            for message in received {
                if let Some(handle) = &message.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.sweeps_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("delete from the sweep queue: {e:?}"));
                }
                let mut record = aws_lambda_events::sqs::SqsMessage::default();
                record.message_id = message.message_id;
                record.receipt_handle = message.receipt_handle;
                record.body = message.body;
                record.md5_of_body = message.md5_of_body;
                record.event_source = Some("aws:sqs".to_owned());
                record.aws_region = Some("us-east-1".to_owned());
                event.records.push(record);
            }
        }
    }

    /// Sends `body` to this app's sweep queue as is (a test's malformed message).
    pub async fn send_sweep(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.sweeps_url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("send to the sweep queue: {e:?}"));
    }

    /// A reader of the declared secrets `names` as a function's state has one: this app's
    /// pepper ring is the only secret there is.
    pub fn secrets_reader(&self, names: &[&'static str]) -> Arc<Secrets> {
        let arn = self.peppers_arn.clone();
        let lookup = move |var: &str| (var == variable(peppers::SECRET)).then(|| arn.clone());
        let secrets = Secrets::from_lookup(self.secrets.clone(), names, lookup)
            .expect("the default secrets TTL");
        Arc::new(secrets)
    }

    /// The pepper ring the functions read now.
    pub async fn peppers(&self) -> PepperRing {
        let value = self
            .secrets
            .get_secret_value()
            .secret_id(&self.peppers_arn)
            .send()
            .await
            .expect("read the pepper ring");
        let value = crate::secrets::SecretValue::new(value.secret_string().expect("a text ring"));
        PepperRing::parse(&value).expect("a valid ring")
    }

    /// Stores `ring` as the new value of the pepper secret (what a rotation does).
    pub async fn set_peppers(&self, ring: &PepperRing) {
        self.secrets
            .put_secret_value()
            .secret_id(&self.peppers_arn)
            .secret_string(ring.to_value().expose())
            .send()
            .await
            .expect("store the pepper ring");
    }

    /// Every item of the users table.
    pub async fn user_items(&self) -> Vec<Item> {
        scan(&self.client, &self.users_table).await
    }

    /// Every session of the sessions table (the table also holds log-in attempt counters).
    pub async fn session_items(&self) -> Vec<Item> {
        let mut items = scan(&self.client, &self.sessions_table).await;
        items.retain(|item| item.contains_key("user_id"));
        items
    }

    /// The user ids of the stored sessions, sorted.
    pub async fn session_owners(&self) -> Vec<String> {
        let mut owners: Vec<String> = self
            .session_items()
            .await
            .iter()
            .filter_map(|item| item["user_id"].as_s().ok().cloned())
            .collect();
        owners.sort();
        owners
    }

    /// The log-in attempt counters of the sessions table.
    pub async fn attempt_items(&self) -> Vec<Item> {
        let mut items = scan(&self.client, &self.sessions_table).await;
        items.retain(|item| !item.contains_key("user_id"));
        items
    }
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("key schema element")
}

/// Creates both tables as the infrastructure does, from the same specs
/// (`catalog::tables`): keys, indexes with their projections, on-demand billing, TTL.
pub async fn create_tables(client: &Client, users_table: &str, sessions_table: &str) {
    create_table(client, &catalog::tables::USERS, users_table).await;
    create_table(client, &catalog::tables::SESSIONS, sessions_table).await;
}

/// Creates `name` shaped as `spec` says.
async fn create_table(client: &Client, spec: &catalog::tables::TableSpec, name: &str) {
    let mut keys = vec![spec.hash_key];
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash_key, KeyType::Hash));
    for index in spec.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .key_schema(key(index.hash_key, KeyType::Hash));
        keys.push(index.hash_key);
        if let Some(range) = index.range_key {
            gsi = gsi.key_schema(key(range, KeyType::Range));
            keys.push(range);
        }
        let projection = ProjectionType::from(index.projection);
        request = request.global_secondary_indexes(
            gsi.projection(Projection::builder().projection_type(projection).build())
                .build()
                .expect("index"),
        );
    }
    keys.dedup();
    for name in keys {
        request = request.attribute_definitions(attribute(name));
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
    if let Some(ttl) = spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .expect("ttl specification"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("enable TTL on {name}: {e:?}"));
    }
}

/// Every item of `table` (all pages).
pub async fn scan(client: &Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan {table}: {e:?}"));
        items.extend(output.items.unwrap_or_default());
        start = output.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// The JSON body of a response (`Value::Null` when empty).
pub fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Empty => Value::Null,
        Body::Text(text) => serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")),
        Body::Binary(bytes) => serde_json::from_slice(bytes).expect("JSON body"),
        _ => Value::Null,
    }
}

/// The `error.code` of an error response.
pub fn error_code(response: &Response<Body>) -> String {
    body_json(response)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Which API Gateway payload an [`Event`] becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// REST API proxy integration (what the deployed API sends), stage in the path.
    RestV1,
    /// HTTP API payload 2.0, with the stage in `rawPath`.
    HttpV2,
}

/// Builds a request the way the Lambda runtime does: from API Gateway event JSON.
#[derive(Clone, Debug)]
pub struct Event {
    payload: Payload,
    method: Method,
    template: String,
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Event {
    /// A REST v1 event for `method` on the resource `template` (e.g. `/users/{id}`).
    pub fn rest(method: Method, template: &str) -> Self {
        Self {
            payload: Payload::RestV1,
            method,
            template: template.to_owned(),
            params: Vec::new(),
            query: Vec::new(),
            headers: vec![("user-agent".into(), "service-tests".into())],
            body: None,
        }
    }

    /// The same request as an HTTP API v2 event.
    pub fn http_v2(mut self) -> Self {
        self.payload = Payload::HttpV2;
        self
    }

    /// Fills `{name}` in the template.
    pub fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds a query string parameter.
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .raw_body(value.to_string())
    }

    /// A body as is, with whatever headers were set.
    pub fn raw_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The concrete path (template with parameters filled in), without the stage.
    pub fn path(&self) -> String {
        self.params
            .iter()
            .fold(self.template.clone(), |path, (name, value)| {
                path.replace(&format!("{{{name}}}"), value)
            })
    }

    fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The event JSON API Gateway would send.
    pub fn to_json(&self) -> Value {
        let request_id = uuid::Uuid::new_v4().to_string();
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        match self.payload {
            Payload::RestV1 => {
                let multi_headers: serde_json::Map<String, Value> = self
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), json!([v])))
                    .collect();
                let query: serde_json::Map<String, Value> = self
                    .query
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let multi_query: serde_json::Map<String, Value> = self
                    .query
                    .iter()
                    .map(|(k, v)| (k.clone(), json!([v])))
                    .collect();
                let params: serde_json::Map<String, Value> = self
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let path = self.path();
                json!({
                    "resource": self.template,
                    "path": path,
                    "httpMethod": self.method.as_str(),
                    "headers": headers,
                    "multiValueHeaders": multi_headers,
                    "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
                    "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
                    "pathParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
                    "stageVariables": null,
                    "requestContext": {
                        "accountId": "123456789012",
                        "resourceId": "abc123",
                        "stage": STAGE,
                        "requestId": request_id,
                        "identity": { "sourceIp": "127.0.0.1", "userAgent": "service-tests" },
                        "resourcePath": self.template,
                        "httpMethod": self.method.as_str(),
                        "path": format!("/{STAGE}{path}"),
                        "apiId": "testapi",
                        "domainName": "testapi.execute-api.us-east-1.amazonaws.com",
                        "protocol": "HTTP/1.1",
                        "requestTimeEpoch": 1_700_000_000_000_i64
                    },
                    "body": self.body,
                    "isBase64Encoded": false
                })
            }
            Payload::HttpV2 => json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": format!("/{STAGE}{}", self.path()),
                "rawQueryString": self.query_string(),
                "headers": headers,
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "testapi",
                    "domainName": "testapi.execute-api.us-east-1.amazonaws.com",
                    "domainPrefix": "testapi",
                    "http": {
                        "method": self.method.as_str(),
                        "path": format!("/{STAGE}{}", self.path()),
                        "protocol": "HTTP/1.1",
                        "sourceIp": "127.0.0.1",
                        "userAgent": "service-tests"
                    },
                    "requestId": request_id,
                    "routeKey": "$default",
                    "stage": STAGE,
                    "time": "14/Nov/2023:22:13:20 +0000",
                    "timeEpoch": 1_700_000_000_000_i64
                },
                "body": self.body,
                "isBase64Encoded": false
            }),
        }
    }

    /// The `lambda_http` request the runtime would hand to the handler.
    pub fn build(&self) -> Request {
        lambda_http::request::from_str(&self.to_json().to_string())
            .unwrap_or_else(|e| panic!("event JSON does not deserialise: {e}"))
    }
}

#[cfg(feature = "passwords")]
impl TestApp {
    /// Stores a user directly (hashing its password), for tests that need one to exist.
    pub async fn seed_user(&self, email: &str, password: &str) -> crate::records::UserRecord {
        let now = crate::clock::Timestamp::now().to_rfc3339();
        let user = crate::records::UserRecord {
            id: uuid::Uuid::new_v4(),
            email: crate::validation::email(email).expect("valid seed e-mail"),
            name: "Seeded User".to_owned(),
            password_hash: crate::password::Passwords::owasp(
                self.secrets_reader(&[peppers::SECRET]),
            )
            .hash(&crate::password::Password::new(password))
            .await
            .expect("hash seed password"),
            version: 1,
            session_generation: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        self.users().create(&user).await.expect("store seed user");
        user
    }
}

/// Seeding sessions needs no password hasher (the table report's tests seed them without one).
impl TestApp {
    /// Stores a session for `user_id` expiring at `expires_at` (epoch seconds; may be in the
    /// past, which TTL has not yet removed) and returns its token. It carries the user's
    /// current session generation (0 when there is no such user) and log-out count, written
    /// directly, as a session whose log-in committed.
    pub async fn seed_session(
        &self,
        user_id: uuid::Uuid,
        expires_at: i64,
    ) -> crate::token::SessionToken {
        let token = crate::token::SessionToken::generate().expect("token");
        let generation = self
            .users()
            .get(user_id)
            .await
            .expect("read seed session's user")
            .map_or(0, |user| user.session_generation);
        let logout_generation =
            crate::store::SessionStore::new(self.client.clone(), &self.config.sessions_table)
                .logouts(user_id)
                .await
                .expect("read seed session's log-out marker");
        let session = crate::records::SessionRecord {
            token_hash: token.hash(),
            user_id,
            generation,
            logout_generation,
            created_at: crate::clock::Timestamp::now().to_rfc3339(),
            expires_at,
        };
        let item = serde_dynamo::to_item(crate::records::SessionItem::from(&session))
            .expect("session item");
        self.client
            .put_item()
            .table_name(&self.sessions_table)
            .set_item(Some(item))
            .send()
            .await
            .expect("store seed session");
        token
    }

    fn users(&self) -> crate::store::UserStore {
        crate::store::UserStore::new(self.client.clone(), &self.config.users_table)
    }
}

/// An endpoint that answers every DynamoDB call with `ThrottlingException`, to prove that
/// throttling that outlasts the SDK's retries reaches the client as 429.
pub fn throttling_endpoint() -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let payload = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
                    let response = format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{payload}",
                        payload.len()
                    );
                    if reader.get_mut().write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Every route of the service as (method, template, function), from the functions'
/// declarations (`catalog`), in their order. Each function crate checks its own table against
/// its rows ([`check_function`]); the assembled OpenAPI document must document every row.
pub fn contract_routes() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    catalog::FUNCTIONS
        .iter()
        .flat_map(|f| f.routes.iter().map(|r| (r.method, r.path, f.name)))
}

/// The directory holding every function crate (`functions/`): the parent of the crate under
/// test, whose directory cargo sets at run time (a test binary reused in a copy of the
/// workspace, as the scaffold scenario's is, must write the copy's documents), else this
/// crate's.
pub fn functions_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("service-common lives in functions/")
        .to_path_buf()
}

/// Whether `document` has an operation for `method` (upper case) on `template`.
pub fn documents(document: &Value, method: &str, template: &str) -> bool {
    document["paths"][template][method.to_ascii_lowercase()].is_object()
}

/// The checks every function crate runs on itself: its route table is its rows of
/// [`contract_routes`], in order; the secrets its state `S` reads
/// ([`FunctionState::SECRETS`]) are the ones its manifest declares (infra sets the variables of
/// those only); its OpenAPI paths document every route; and its fragment
/// `functions/<function>/openapi.json`, from which the whole document is assembled, is up to
/// date (`UPDATE_EXPECT=1 cargo test -p <function> openapi` rewrites it).
pub fn check_function<S: FunctionState, Op>(
    function: &str,
    routes: &[Route<Op>],
    openapi: &utoipa::openapi::OpenApi,
) {
    let declared = catalog::find(function)
        .unwrap_or_else(|| panic!("the catalog has no function `{function}`"))
        .secrets;
    assert_eq!(
        S::SECRETS,
        declared,
        "{function}'s State::SECRETS differ from the secrets its manifest declares"
    );
    let ours: Vec<_> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.template))
        .collect();
    let contract: Vec<_> = contract_routes()
        .filter(|(_, _, f)| *f == function)
        .map(|(m, t, _)| (m.to_string(), t))
        .collect();
    assert_eq!(
        ours, contract,
        "{function}'s routes differ from the contract's"
    );
    let document = serde_json::to_value(openapi).expect("the OpenAPI fragment serialises");
    for (method, template) in &ours {
        assert!(
            documents(&document, method, template),
            "{method} {template} is not documented"
        );
    }
    expect_test::expect_file![functions_dir().join(function).join("openapi.json")]
        .assert_eq(&pretty(&document));
}

/// `value` as pretty JSON with a trailing newline, the form OpenAPI files are checked in as.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON always serialises");
    text.push('\n');
    text
}
