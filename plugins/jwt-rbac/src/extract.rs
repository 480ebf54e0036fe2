//! Finding a provider's token in the request, and removing it before the request goes upstream.

use crate::config::TokenSource;
use crate::reason::Reason;
use gateway_core::headers::HeaderEdits;

/// A token and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The token bytes.
    pub token: Vec<u8>,
    /// The source it came from.
    pub source: TokenSource,
}

/// The first source of `sources` holding a token. A source present twice (two header lines,
/// two parameters, two cookies of that name) is ambiguous: `token_malformed`.
pub fn find(sources: &[TokenSource], request: &HeaderEdits) -> Result<Option<Found>, Reason> {
    for source in sources {
        let token = match source {
            TokenSource::Header { name, prefix } => {
                let values = request.all(name);
                match values.as_slice() {
                    [] => None,
                    [value] => strip_prefix(value, prefix).map(trim),
                    _ => return Err(Reason::TokenMalformed),
                }
            }
            TokenSource::Query(name) => {
                let path = request.first(":path").unwrap_or_default();
                let mut found = query_values(path, name);
                match (found.next(), found.next()) {
                    (None, _) => None,
                    (Some(v), None) => Some(v.to_vec()),
                    (Some(_), Some(_)) => return Err(Reason::TokenMalformed),
                }
            }
            TokenSource::Cookie(name) => {
                let lines = request.all("cookie");
                let mut values = lines.iter().flat_map(|l| cookie_values(l, name));
                match (values.next(), values.next()) {
                    (None, _) => None,
                    (Some(v), None) => Some(v.to_vec()),
                    (Some(_), Some(_)) => return Err(Reason::TokenMalformed),
                }
            }
        };
        if let Some(token) = token {
            if token.is_empty() {
                return Err(Reason::TokenMalformed);
            }
            return Ok(Some(Found {
                token,
                source: source.clone(),
            }));
        }
    }
    Ok(None)
}

/// Removes the token's source from the request.
pub fn strip(source: &TokenSource, request: &mut HeaderEdits) {
    match source {
        TokenSource::Header { name, .. } => {
            request.remove(name);
        }
        TokenSource::Query(name) => {
            let path = request.first(":path").unwrap_or_default().to_vec();
            let Some(q) = path.iter().position(|b| *b == b'?') else {
                return;
            };
            let (base, query) = path.split_at(q);
            let kept: Vec<&[u8]> = query[1..]
                .split(|b| *b == b'&')
                .filter(|pair| !pair.is_empty() && param_name(pair) != name.as_bytes())
                .collect();
            let mut new_path = base.to_vec();
            if !kept.is_empty() {
                new_path.push(b'?');
                new_path.extend_from_slice(&kept.join(&b'&'));
            }
            request.set(":path", new_path);
        }
        TokenSource::Cookie(name) => {
            let lines = request.all("cookie");
            let kept: Vec<&[u8]> = lines
                .iter()
                .flat_map(|l| l.split(|b| *b == b';'))
                .map(trim_ref)
                .filter(|c| !c.is_empty() && param_name(c) != name.as_bytes())
                .collect();
            if kept.is_empty() {
                request.remove("cookie");
            } else {
                request.set("cookie", kept.join(&b"; "[..]));
            }
        }
    }
}

fn strip_prefix(value: &[u8], prefix: &str) -> Option<Vec<u8>> {
    let prefix = prefix.as_bytes();
    (value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| value[prefix.len()..].to_vec())
}

fn trim(v: Vec<u8>) -> Vec<u8> {
    trim_ref(&v).to_vec()
}

fn trim_ref(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn param_name(pair: &[u8]) -> &[u8] {
    match pair.iter().position(|b| *b == b'=') {
        Some(eq) => &pair[..eq],
        None => pair,
    }
}

fn query_values<'a>(path: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let query = match path.iter().position(|b| *b == b'?') {
        Some(q) => &path[q + 1..],
        None => &[][..],
    };
    let query = match query.iter().position(|b| *b == b'#') {
        Some(f) => &query[..f],
        None => query,
    };
    query
        .split(|b| *b == b'&')
        .filter(move |pair| param_name(pair) == name.as_bytes())
        .map(|pair| pair.get(name.len() + 1..).unwrap_or_default())
}

fn cookie_values<'a>(line: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    line.split(|b| *b == b';')
        .map(trim_ref)
        .filter(move |c| param_name(c) == name.as_bytes())
        .map(|c| c.get(name.len() + 1..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(pairs: &[(&str, &str)]) -> HeaderEdits {
        HeaderEdits::new(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn bearer() -> Vec<TokenSource> {
        vec![TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }]
    }

    #[test]
    fn header_with_prefix() {
        let r = edits(&[("authorization", "bearer  abc ")]);
        assert_eq!(find(&bearer(), &r).unwrap().unwrap().token, b"abc");
        assert_eq!(
            find(&bearer(), &edits(&[("authorization", "Basic x")])).unwrap(),
            None
        );
        assert_eq!(find(&bearer(), &edits(&[])).unwrap(), None);
        assert_eq!(
            find(
                &bearer(),
                &edits(&[("authorization", "Bearer a"), ("Authorization", "Bearer b")])
            ),
            Err(Reason::TokenMalformed)
        );
        assert_eq!(
            find(&bearer(), &edits(&[("authorization", "Bearer  ")])),
            Err(Reason::TokenMalformed)
        );
    }

    #[test]
    fn query_and_cookie_found_and_stripped() {
        let sources = vec![
            TokenSource::Query("access_token".into()),
            TokenSource::Cookie("jwt".into()),
        ];
        let mut r = edits(&[(":path", "/a?x=1&access_token=tok&y=2")]);
        let found = find(&sources, &r).unwrap().unwrap();
        assert_eq!(found.token, b"tok");
        strip(&found.source, &mut r);
        assert_eq!(r.first(":path"), Some(&b"/a?x=1&y=2"[..]));

        let mut r = edits(&[(":path", "/a"), ("cookie", "a=1; jwt=tok2; b=2")]);
        let found = find(&sources, &r).unwrap().unwrap();
        assert_eq!(found.token, b"tok2");
        strip(&found.source, &mut r);
        assert_eq!(r.first("cookie"), Some(&b"a=1; b=2"[..]));

        let r = edits(&[(":path", "/a?access_token=1&access_token=2")]);
        assert_eq!(find(&sources, &r), Err(Reason::TokenMalformed));
        let mut r = edits(&[(":path", "/a?access_token=t")]);
        let found = find(&sources, &r).unwrap().unwrap();
        strip(&found.source, &mut r);
        assert_eq!(r.first(":path"), Some(&b"/a"[..]));
    }
}
