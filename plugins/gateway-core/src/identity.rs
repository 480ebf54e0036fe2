//! Identity headers: the names every plugin of the suite agrees on by default.
//!
//! `jwt-rbac` injects them after verifying a caller; `ratelimit-shared-data` and `audit-log` read
//! them; `header-injection` strips client-sent copies by default. Each plugin lets operators rename
//! them in config, but these are the documented defaults, all with an `x-` prefix so they never
//! collide with standard headers.

/// Verified subject (JWT `sub`, or the API key's owner).
pub const USER_ID: &str = "x-user-id";
/// Verified roles, comma-separated.
pub const USER_ROLES: &str = "x-user-roles";
/// Verified OAuth scopes, space-separated as in the `scope` claim.
pub const USER_SCOPES: &str = "x-user-scopes";
/// Verified e-mail address, when the token carries one.
pub const USER_EMAIL: &str = "x-user-email";
/// Outcome of authentication: `verified` or `anonymous`.
pub const AUTH_STATUS: &str = "x-auth-status";
/// How the caller authenticated: `jwt` or `api-key`.
pub const AUTH_METHOD: &str = "x-auth-method";
/// Issuer (`iss`) of the verified token.
pub const JWT_ISSUER: &str = "x-jwt-issuer";
/// Selected verified claims, base64url-encoded JSON.
pub const JWT_CLAIMS: &str = "x-jwt-claims";
/// Identifier of the API key the caller presented (never the key itself).
pub const API_KEY_ID: &str = "x-api-key-id";

/// Every identity header above: the default anti-spoofing list of the suite.
pub const IDENTITY_HEADERS: &[&str] = &[
    USER_ID,
    USER_ROLES,
    USER_SCOPES,
    USER_EMAIL,
    AUTH_STATUS,
    AUTH_METHOD,
    JWT_ISSUER,
    JWT_CLAIMS,
    API_KEY_ID,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::is_token;

    #[test]
    fn defaults_are_lowercase_x_tokens_without_duplicates() {
        for (i, name) in IDENTITY_HEADERS.iter().enumerate() {
            assert!(is_token(name) && name.starts_with("x-"), "{name}");
            assert_eq!(name.to_ascii_lowercase(), *name);
            assert!(!IDENTITY_HEADERS[i + 1..].contains(name));
        }
    }
}
