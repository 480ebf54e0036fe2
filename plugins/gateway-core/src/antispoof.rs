//! Anti-spoofing: remove client-sent copies of headers a plugin injects as trusted.
//!
//! A header is spoofed when its name equals a protected name ASCII case-insensitively after
//! mapping `_` to `-` on both sides, so `X_User_Id` and `x-user_id` are caught along with
//! `x-user-id` (some upstreams, CGI and many frameworks, treat `_` and `-` alike). Every
//! duplicate line goes.

use crate::error::ConfigError;
use crate::headers::{header_name, HeaderList};

/// A validated set of protected header names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedHeaders {
    normalized: Vec<String>,
}

/// What [`ProtectedHeaders::strip`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stripped {
    /// Distinct names as the client sent them: remove each of these from the host map.
    pub names: Vec<String>,
    /// Header lines removed, duplicates counted.
    pub lines: usize,
}

impl ProtectedHeaders {
    /// Validates `names` (each an RFC 9110 token); `field` names the list in errors.
    pub fn try_new<S: AsRef<str>>(names: &[S], field: &str) -> Result<Self, ConfigError> {
        let mut normalized = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let name = header_name(name.as_ref(), &format!("{field}[{i}]"))?;
            let name = normalize(&name);
            if !normalized.contains(&name) {
                normalized.push(name);
            }
        }
        Ok(Self { normalized })
    }

    /// True if a header called `name` must not come from a client.
    pub fn is_protected(&self, name: &str) -> bool {
        let name = normalize(name);
        self.normalized.contains(&name)
    }

    /// True if nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.normalized.is_empty()
    }

    /// Removes every protected line from `headers`, returning the names to remove on the host.
    pub fn strip(&self, headers: &mut HeaderList) -> Stripped {
        let mut stripped = Stripped::default();
        if self.normalized.is_empty() {
            return stripped;
        }
        headers.retain(|(name, _)| {
            if !self.is_protected(name) {
                return true;
            }
            stripped.lines += 1;
            if !stripped.names.iter().any(|n| n == name) {
                stripped.names.push(name.clone());
            }
            false
        });
        stripped
    }
}

fn normalize(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'_' => '-',
            b => char::from(b.to_ascii_lowercase()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IDENTITY_HEADERS;

    fn list(pairs: &[(&str, &str)]) -> HeaderList {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn removes_duplicates_case_and_underscore_variants() {
        let protected = ProtectedHeaders::try_new(IDENTITY_HEADERS, "f").unwrap();
        let mut headers = list(&[
            (":path", "/"),
            ("x-user-id", "admin"),
            ("X-User-Id", "root"),
            ("x_user_id", "x"),
            ("x-user_roles", "admin"),
            ("x-user-idx", "kept"),
            ("accept", "*/*"),
        ]);
        let stripped = protected.strip(&mut headers);
        assert_eq!(stripped.lines, 4);
        assert_eq!(
            stripped.names,
            vec!["x-user-id", "X-User-Id", "x_user_id", "x-user_roles"]
        );
        assert_eq!(
            headers,
            list(&[(":path", "/"), ("x-user-idx", "kept"), ("accept", "*/*")])
        );
    }

    #[test]
    fn protected_names_given_with_underscores_match_dashes() {
        let protected = ProtectedHeaders::try_new(&["X_Tenant"], "f").unwrap();
        assert!(protected.is_protected("x-tenant"));
        assert!(protected.is_protected("X_TENANT"));
        assert!(!protected.is_protected("x-tenants"));
    }

    #[test]
    fn invalid_name_is_refused_with_index() {
        let err =
            ProtectedHeaders::try_new(&["ok", "not ok"], "anti_spoofing.headers").unwrap_err();
        assert_eq!(err.field, "anti_spoofing.headers[1]");
    }

    #[test]
    fn empty_set_strips_nothing() {
        let protected = ProtectedHeaders::try_new::<&str>(&[], "f").unwrap();
        let mut headers = list(&[("x-user-id", "a")]);
        assert_eq!(protected.strip(&mut headers).lines, 0);
        assert_eq!(headers.len(), 1);
    }
}
