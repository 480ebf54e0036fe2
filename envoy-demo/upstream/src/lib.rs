//! The demo upstream's request handling as a library: the HTTP/1.1 codec ([`http`]) and the echo
//! with its controls ([`echo`]). The `demo-upstream` binary serves it over TCP; the harness
//! scenario runner calls [`echo::Upstream::respond`] directly, so a simulated upstream answers
//! exactly as the real one does.

pub mod echo;
pub mod http;
