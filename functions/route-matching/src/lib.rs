//! Which route template a request path reaches, the way an API Gateway REST API picks a
//! resource: the one rule, shared by the functions (`service-common`, for events that carry no
//! resource template) and the local API server (through `infra::routes`), so the two can never
//! route one path differently.
//!
//! It is a crate of its own, with no dependencies, because every function binary links it, and
//! no function links the catalog (which reads the manifests with a TOML parser).
//!
//! The rule:
//! - A path's segments are the non-empty text between its slashes. A trailing slash, and a
//!   doubled one, change nothing: API Gateway REST APIs serve `/users/` as `/users` and
//!   `/prod//users` as `/prod/users` (see [`segments`]).
//! - A template segment `{name}` takes exactly one segment; any other template segment must
//!   equal the path's segment.
//! - Where several templates match, the resource is chosen before the method: at the first
//!   segment where they differ a literal beats a parameter, so `/users/me` is never
//!   `/users/{id}`, whatever methods either has.

/// The segments of a path or template: the non-empty pieces between slashes
/// (`/users//42/` -> `["users", "42"]`).
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// The parameter a template segment names (`{id}` -> `id`); `None` for a literal segment.
pub fn parameter(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

/// Path parameters of a matched template, `(name, value)` in template order.
pub type Params<'t, 'p> = Vec<(&'t str, &'p str)>;

/// Matches a concrete path against one template; the path parameters when it matches.
pub fn match_template<'t, 'p>(template: &'t str, path: &'p str) -> Option<Params<'t, 'p>> {
    let mut params = Vec::new();
    let mut actual = segments(path);
    for segment in segments(template) {
        let value = actual.next()?;
        match parameter(segment) {
            Some(name) => params.push((name, value)),
            None if segment == value => {}
            None => return None,
        }
    }
    actual.next().is_none().then_some(params)
}

/// The resource a path reaches among `templates` (repeats, one per method, are fine), with its
/// path parameters; `None` when no template matches. The caller then picks the method on the
/// resource: API Gateway its own method or `ANY`, a function its route or 405.
pub fn resource<'t, 'p>(
    templates: impl IntoIterator<Item = &'t str>,
    path: &'p str,
) -> Option<(&'t str, Params<'t, 'p>)> {
    templates
        .into_iter()
        .filter_map(|template| Some((template, match_template(template, path)?)))
        .max_by_key(|(template, _)| literal_segments(template))
}

/// Which segments of a template are literal, in order: compared lexicographically, the more
/// literal template wins where two match.
fn literal_segments(template: &str) -> Vec<bool> {
    segments(template)
        .map(|segment| parameter(segment).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &[&str] = &[
        "/health",
        "/users",
        "/users/{id}",
        "/users/me",
        "/users/{id}/sessions/{session}",
        "/users/{id}/sessions/current",
        "/users/me/sessions/{session}",
    ];

    fn reach(path: &str) -> Option<(&'static str, Vec<(&'static str, &str)>)> {
        resource(TEMPLATES.iter().copied(), path)
    }

    #[test]
    fn a_template_takes_one_segment_per_parameter() {
        assert_eq!(
            match_template("/users/{id}", "/users/42"),
            Some(vec![("id", "42")])
        );
        assert_eq!(match_template("/users/{id}", "/users/"), None);
        assert_eq!(match_template("/users/{id}", "/users"), None);
        assert_eq!(match_template("/users/{id}", "/users/1/2"), None);
        assert_eq!(match_template("/sessions/current", "/sessions/other"), None);
        assert_eq!(match_template("/health", "/healthz"), None);
        assert_eq!(match_template("/health", "/"), None);
    }

    #[test]
    fn trailing_and_doubled_slashes_change_nothing() {
        assert_eq!(match_template("/users", "/users/"), Some(vec![]));
        assert_eq!(match_template("/users", "/users//"), Some(vec![]));
        assert_eq!(match_template("/users", "//users"), Some(vec![]));
        assert_eq!(
            match_template("/users/{id}", "/users//42/"),
            Some(vec![("id", "42")])
        );
    }

    #[test]
    fn a_literal_resource_wins_over_a_parameter() {
        assert_eq!(reach("/users/me"), Some(("/users/me", vec![])));
        assert_eq!(
            reach("/users/abc"),
            Some(("/users/{id}", vec![("id", "abc")]))
        );
        // The first segment that differs decides, wherever the parameters are.
        assert_eq!(
            reach("/users/me/sessions/current"),
            Some(("/users/me/sessions/{session}", vec![("session", "current")]))
        );
        assert_eq!(
            reach("/users/42/sessions/current"),
            Some(("/users/{id}/sessions/current", vec![("id", "42")]))
        );
        assert_eq!(reach("/nope"), None);
        assert_eq!(reach("/"), None);
    }

    #[test]
    fn a_template_listed_once_per_method_is_one_resource() {
        let templates = ["/users", "/users/{id}", "/users/{id}", "/users/me"];
        assert_eq!(
            resource(templates, "/users/7"),
            Some(("/users/{id}", vec![("id", "7")]))
        );
    }

    #[test]
    fn parameters_are_braced_segments() {
        assert_eq!(parameter("{id}"), Some("id"));
        assert_eq!(parameter("id"), None);
        assert_eq!(parameter("{id"), None);
        assert_eq!(segments("/users//42/").collect::<Vec<_>>(), ["users", "42"]);
    }
}
