//! The one spelling rule of the names a declaration gives (secrets, queues, schedules): they
//! become AWS names and, upper-cased with `_`, environment variables.

/// 1-`max` characters of a-z, 0-9 and single hyphens, starting with a letter and not ending
/// with a hyphen: hyphens are the only separator, so the variable's `_` maps back to exactly
/// one name.
pub fn is_kebab(name: &str, max: usize) -> bool {
    name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}
