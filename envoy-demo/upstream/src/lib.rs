//! The demo upstream's request handling as a library: the HTTP/1.1 codec ([`http`]), the echo
//! with its controls ([`echo`]), and the demo's other two services, each on its own listener of
//! the same binary: a token issuer with a JWKS endpoint ([`auth`]) and an audit collector
//! ([`collector`]). The `demo-upstream` binary serves them over TCP; the harness scenario runner
//! calls [`echo::Upstream::respond`] directly, so a simulated upstream answers exactly as the real
//! one does.

pub mod auth;
pub mod collector;
pub mod echo;
pub mod http;

/// Something that answers requests on a listener.
pub trait Service: Send + Sync {
    /// Answers one request.
    fn respond(&self, req: &http::Request) -> http::Response;
}

impl Service for echo::Upstream {
    fn respond(&self, req: &http::Request) -> http::Response {
        echo::Upstream::respond(self, req)
    }
}

impl Service for auth::Issuer {
    fn respond(&self, req: &http::Request) -> http::Response {
        auth::Issuer::respond(self, req)
    }
}

impl Service for collector::Collector {
    fn respond(&self, req: &http::Request) -> http::Response {
        collector::Collector::respond(self, req)
    }
}
