//! HTTP for the demo walkthrough and readiness checks: one request per connection over the
//! shared raw client ([`suite_support::client`]), with headers and body seen as text.

use std::net::SocketAddr;

use anyhow::Result;
use suite_support::client::{self, RawRequest};

/// A response: status, headers (lowercase names, in order), body as text.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request (`connection: close`) and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response> {
    let mut req = RawRequest::new(method, path, &addr.to_string()).header("connection", "close");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let raw = client::send(addr, &req.body(body.as_bytes().to_vec()))?;
    Ok(Response {
        status: raw.status,
        body: raw.text(),
        headers: raw
            .headers
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
    })
}
