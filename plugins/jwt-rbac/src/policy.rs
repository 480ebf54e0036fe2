//! Rules and authorization: which rule applies, what it requires, roles and scopes.

use gateway_core::matching::RequestMatch;
use serde_json::{Map, Value};

/// What a rule requires, providers by index into `Settings::providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing; tokens are ignored.
    Anonymous,
    /// A valid token of at least one of these.
    AnyOf(Vec<usize>),
    /// A valid token of each of these.
    AllOf(Vec<usize>),
    /// No token at all passes as anonymous; a token present must be valid.
    AllowMissing(Vec<usize>),
}

/// A roles or scopes condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCheck {
    /// At least one of these.
    AnyOf(Vec<String>),
    /// Every one of these.
    AllOf(Vec<String>),
}

impl ClaimCheck {
    /// True if `have` satisfies the condition.
    pub fn satisfied_by(&self, have: &[String]) -> bool {
        match self {
            ClaimCheck::AnyOf(want) => want.iter().any(|w| have.contains(w)),
            ClaimCheck::AllOf(want) => want.iter().all(|w| have.contains(w)),
        }
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Path and methods.
    pub matcher: RequestMatch,
    /// What the request must present.
    pub requires: Requirement,
    /// Roles condition.
    pub roles: Option<ClaimCheck>,
    /// Scopes condition.
    pub scopes: Option<ClaimCheck>,
}

/// The first rule matching `method` and `path`.
pub fn first_match<'a>(rules: &'a [Rule], method: &[u8], path: &[u8]) -> Option<&'a Rule> {
    rules.iter().find(|r| r.matcher.matches(method, path))
}

/// The value at a dotted claim path.
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Roles at `path`: an array of strings, or a string of space- or comma-separated roles.
pub fn roles(claims: &Map<String, Value>, path: &[String]) -> Vec<String> {
    lookup(claims, path).map(string_list).unwrap_or_default()
}

/// Scopes: `scope` (space-delimited string, RFC 8693) or `scp` (array or string).
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .map(string_list)
        .unwrap_or_default()
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s
            .split([' ', ','])
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_roles_and_scopes() {
        let c =
            map(json!({"realm_access": {"roles": ["admin", "dev", 3]}, "scope": "read  write"}));
        assert_eq!(
            roles(&c, &["realm_access".into(), "roles".into()]),
            ["admin", "dev"]
        );
        assert_eq!(scopes(&c), ["read", "write"]);
        let c = map(json!({"scp": ["a", "b"], "roles": "x,y"}));
        assert_eq!(scopes(&c), ["a", "b"]);
        assert_eq!(roles(&c, &["roles".into()]), ["x", "y"]);
        assert!(roles(&c, &["nope".into(), "x".into()]).is_empty());
    }

    #[test]
    fn any_and_all() {
        let have = vec!["a".to_owned(), "b".to_owned()];
        assert!(ClaimCheck::AnyOf(vec!["z".into(), "a".into()]).satisfied_by(&have));
        assert!(!ClaimCheck::AnyOf(vec!["z".into()]).satisfied_by(&have));
        assert!(ClaimCheck::AllOf(vec!["a".into(), "b".into()]).satisfied_by(&have));
        assert!(!ClaimCheck::AllOf(vec!["a".into(), "c".into()]).satisfied_by(&have));
    }
}
