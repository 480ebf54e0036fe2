//! Host profiles: which gateway the harness imitates.

/// The gateway whose behaviour the host reproduces. See the crate docs for the differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Envoy / Istio with the V8 runtime (default).
    #[default]
    Envoy,
    /// Kong 3.4-3.9 with ngx_wasm_module.
    Kong,
}

impl Profile {
    /// Lowercase name (`envoy`, `kong`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Envoy => "envoy",
            Profile::Kong => "kong",
        }
    }

    /// The name under which the gateway exposes a guest metric:
    /// Envoy `wasmcustom.<name>`, Kong `pw.<filter>.<name>`.
    ///
    /// ```
    /// use host_harness::Profile;
    /// assert_eq!(Profile::Envoy.metric_name("jwt", "denied"), "wasmcustom.denied");
    /// assert_eq!(Profile::Kong.metric_name("jwt", "denied"), "pw.jwt.denied");
    /// ```
    pub fn metric_name(self, filter: &str, name: &str) -> String {
        match self {
            Profile::Envoy => format!("wasmcustom.{name}"),
            Profile::Kong => format!("pw.{filter}.{name}"),
        }
    }

    /// Whether the gateway exposes this property path at all (Kong has no `xds.*`,
    /// `response.flags`, `route_*`/`cluster_*`; only Kong has `kong.*`).
    pub fn has_property(self, segments: &[String]) -> bool {
        let first = segments.first().map(String::as_str).unwrap_or("");
        let second = segments.get(1).map(String::as_str).unwrap_or("");
        match self {
            Profile::Envoy => first != "kong",
            Profile::Kong => {
                !(first == "xds"
                    || first.starts_with("route_")
                    || first.starts_with("cluster_")
                    || first == "upstream_host_metadata"
                    || (first == "response" && second == "flags"))
            }
        }
    }

    /// Whether a callback that returned Pause may pause in this phase.
    pub(crate) fn may_pause(self, phase: Phase) -> bool {
        match self {
            Profile::Envoy => true,
            Profile::Kong => matches!(
                phase,
                Phase::RequestHeaders | Phase::RequestBody | Phase::ResponseBody
            ),
        }
    }
}

/// The callback the host is currently running (decides buffer/map availability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Root,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    CalloutResponse,
    Log,
    Done,
}
