//! The route table of each function. Same methods and templates as `infra::routes::ROUTES`
//! (the contract's table); a test below pins them.

use http::Method;

use crate::http::Route;

/// Operations of the `health` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthOp {
    Check,
}

/// Operations of the `users` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsersOp {
    Register,
    List,
    Me,
    Get,
    Update,
    Delete,
}

/// Operations of the `sessions` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionsOp {
    LogIn,
    LogOutEverywhere,
    Current,
    LogOut,
}

pub const HEALTH_ROUTES: &[Route<HealthOp>] =
    &[Route::new(Method::GET, "/health", HealthOp::Check)];

pub const USERS_ROUTES: &[Route<UsersOp>] = &[
    Route::new(Method::POST, "/users", UsersOp::Register),
    Route::new(Method::GET, "/users", UsersOp::List),
    Route::new(Method::GET, "/users/me", UsersOp::Me),
    Route::new(Method::GET, "/users/{id}", UsersOp::Get),
    Route::new(Method::PATCH, "/users/{id}", UsersOp::Update),
    Route::new(Method::DELETE, "/users/{id}", UsersOp::Delete),
];

pub const SESSIONS_ROUTES: &[Route<SessionsOp>] = &[
    Route::new(Method::POST, "/sessions", SessionsOp::LogIn),
    Route::new(Method::DELETE, "/sessions", SessionsOp::LogOutEverywhere),
    Route::new(Method::GET, "/sessions/current", SessionsOp::Current),
    Route::new(Method::DELETE, "/sessions/current", SessionsOp::LogOut),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// CONTRACT.md's route table: (method, template, function).
    const CONTRACT: &[(&str, &str, &str)] = &[
        ("GET", "/health", "health"),
        ("POST", "/users", "users"),
        ("GET", "/users", "users"),
        ("GET", "/users/me", "users"),
        ("GET", "/users/{id}", "users"),
        ("PATCH", "/users/{id}", "users"),
        ("DELETE", "/users/{id}", "users"),
        ("POST", "/sessions", "sessions"),
        ("DELETE", "/sessions", "sessions"),
        ("GET", "/sessions/current", "sessions"),
        ("DELETE", "/sessions/current", "sessions"),
    ];

    fn rows<Op>(
        routes: &[Route<Op>],
        function: &'static str,
    ) -> Vec<(String, &'static str, &'static str)> {
        routes
            .iter()
            .map(|r| (r.method.to_string(), r.template, function))
            .collect()
    }

    #[test]
    fn tables_match_the_contract() {
        let mut ours = rows(HEALTH_ROUTES, "health");
        ours.extend(rows(USERS_ROUTES, "users"));
        ours.extend(rows(SESSIONS_ROUTES, "sessions"));
        let contract: Vec<_> = CONTRACT
            .iter()
            .map(|(m, t, f)| (m.to_string(), *t, *f))
            .collect();
        assert_eq!(ours, contract);
    }
}
