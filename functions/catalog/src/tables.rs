//! The service's DynamoDB tables and their indexes: what a function may be granted, and what
//! `infra` creates. Kept here, beside the function declarations, so the catalog rejects a grant
//! on a table or index that does not exist.

/// A global secondary index of a table.
#[derive(Clone, Copy, Debug)]
pub struct Index {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub projection: &'static str,
}

/// What a table looks like; attributes are all strings except the TTL attribute, which is
/// never a key and so needs no definition.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    pub logical: &'static str,
    pub hash_key: &'static str,
    pub indexes: &'static [Index],
    pub ttl_attribute: Option<&'static str>,
}

/// Users: `pk` (USER#<id> and EMAIL#<email> items), listed through `by-kind`.
pub const USERS: TableSpec = TableSpec {
    logical: "users",
    hash_key: "pk",
    indexes: &[Index {
        name: "by-kind",
        hash_key: "kind",
        range_key: Some("created_at"),
        projection: "ALL",
    }],
    ttl_attribute: None,
};

/// Sessions: keyed by the token's SHA-256, expiring through TTL on `expires_at`.
pub const SESSIONS: TableSpec = TableSpec {
    logical: "sessions",
    hash_key: "token_hash",
    indexes: &[Index {
        name: "by-user",
        hash_key: "user_id",
        range_key: None,
        projection: "KEYS_ONLY",
    }],
    ttl_attribute: Some("expires_at"),
};

/// Every table, in creation order.
pub static ALL: [TableSpec; 2] = [USERS, SESSIONS];

/// The table called `logical`, if the service has one.
pub fn find(logical: &str) -> Option<&'static TableSpec> {
    ALL.iter().find(|t| t.logical == logical)
}

/// The environment variable that gives a function the name of the table `logical`
/// (`users` -> `USERS_TABLE`).
pub fn variable(logical: &str) -> String {
    format!("{}_TABLE", logical.to_ascii_uppercase().replace('-', "_"))
}
