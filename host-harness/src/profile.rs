//! Host profiles: which gateway (and which engine version) the harness imitates.

/// The gateway whose behaviour the host reproduces. See the crate docs for the differences.
///
/// The Kong profiles follow the ngx_wasm_module commit each Kong release pins: Kong 3.9.x pins
/// `9136e463` ([`Profile::Kong`]), Kong 3.8.x pins `96b4e27e` ([`Profile::Kong38`]). Every Kong
/// rule in this crate names the engine source file and function it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Envoy / Istio with the V8 runtime (default).
    #[default]
    Envoy,
    /// Kong 3.9 (ngx_wasm_module `9136e463`, wasmtime 26): the default Kong.
    Kong,
    /// Kong 3.8 (ngx_wasm_module `96b4e27e`, wasmtime 23).
    Kong38,
}

/// The ngx_wasm_module revision behind a Kong profile (internal switch for version rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KongEngine {
    /// `96b4e27e` (Kong 3.8).
    V38,
    /// `9136e463` (Kong 3.9).
    V39,
}

impl Profile {
    /// Lowercase name: `envoy`, `kong-3.9` ([`Profile::Kong`]), `kong-3.8`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Envoy => "envoy",
            Profile::Kong => "kong-3.9",
            Profile::Kong38 => "kong-3.8",
        }
    }

    /// Whether this is one of the Kong (ngx_wasm_module) profiles.
    pub fn is_kong(self) -> bool {
        self.kong_engine().is_some()
    }

    /// The ngx_wasm_module commit a Kong profile follows (`None` for Envoy).
    ///
    /// ```
    /// use host_harness::Profile;
    /// assert_eq!(Profile::Kong.engine_commit(), Some("9136e463"));
    /// assert_eq!(Profile::Kong38.engine_commit(), Some("96b4e27e"));
    /// assert_eq!(Profile::Envoy.engine_commit(), None);
    /// ```
    pub fn engine_commit(self) -> Option<&'static str> {
        match self.kong_engine()? {
            KongEngine::V38 => Some("96b4e27e"),
            KongEngine::V39 => Some("9136e463"),
        }
    }

    pub(crate) fn kong_engine(self) -> Option<KongEngine> {
        match self {
            Profile::Envoy => None,
            Profile::Kong => Some(KongEngine::V39),
            Profile::Kong38 => Some(KongEngine::V38),
        }
    }

    /// The name under which the gateway exposes a guest metric: Envoy `wasmcustom.<name>`,
    /// Kong 3.9 `pw:<filter>:<name>`, Kong 3.8 `pw.<filter>.<name>`.
    ///
    /// ```
    /// use host_harness::Profile;
    /// assert_eq!(Profile::Envoy.metric_name("jwt", "denied"), "wasmcustom.denied");
    /// assert_eq!(Profile::Kong.metric_name("jwt", "denied"), "pw:jwt:denied");
    /// assert_eq!(Profile::Kong38.metric_name("jwt", "denied"), "pw.jwt.denied");
    /// ```
    pub fn metric_name(self, filter: &str, name: &str) -> String {
        match self.kong_engine() {
            None => format!("wasmcustom.{name}"),
            // ngx_proxy_wasm_host.c, ngx_proxy_wasm_hfuncs_define_metric: "pw:%V:%V" since
            // 630a5e7d (in 9136e463), "pw.%V.%V" at 96b4e27e.
            Some(KongEngine::V39) => format!("pw:{filter}:{name}"),
            Some(KongEngine::V38) => format!("pw.{filter}.{name}"),
        }
    }

    /// Whether the gateway can return this property path at all. Envoy: everything but `kong.*`.
    /// Kong: the paths of ngx_wasm_module's property table that are not `nyi`/`not_supported`,
    /// plus `ngx.*` and `kong.*` (see [`crate::host::properties`]); `xds.*` and unknown paths
    /// are NotFound.
    pub fn has_property(self, segments: &[String]) -> bool {
        if !self.is_kong() {
            return segments.first().map(String::as_str) != Some("kong");
        }
        let dotted = segments.join(".");
        matches!(
            crate::host::properties::kong_lookup(&dotted),
            crate::host::properties::KongProperty::Supported(_)
        )
    }

    /// Whether a callback that returned Pause may pause in this phase.
    pub(crate) fn may_pause(self, phase: Phase) -> bool {
        if !self.is_kong() {
            return true;
        }
        // ngx_proxy_wasm.c, action2rc: PAUSE yields in the rewrite/access/content phases
        // (request headers and body) and buffers in the body filter (response body); in the
        // header filter it only logs that no local response was produced
        // (ngx_http_wasm_filter_module.c, ngx_http_wasm_header_filter_handler ignores the rc).
        matches!(
            phase,
            Phase::RequestHeaders | Phase::RequestBody | Phase::ResponseBody
        )
    }
}

/// The callback the host is currently running (decides buffer/map availability and, on Kong,
/// the engine "step" the host-call checks look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No callback of a context: `_initialize`, the root's `on_context_create`.
    Init,
    VmStart,
    Configure,
    Tick,
    QueueReady,
    /// `on_context_create` of an HTTP context.
    StreamCreate,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    CalloutResponse,
    Log,
    /// `on_done`.
    Done,
    /// `on_delete`.
    Delete,
}

/// ngx_wasm_module's `ngx_proxy_wasm_step_e` (ngx_proxy_wasm.h): what `pwctx->step` holds when
/// a host call runs in a given harness phase. `None` is the zeroed step of a root context in
/// `on_vm_start`/`on_configure` (ngx_proxy_wasm.c, ngx_proxy_wasm_create_context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KongStep {
    None,
    ReqHeaders,
    ReqBody,
    RespHeaders,
    RespBody,
    Log,
    Done,
    Tick,
    DispatchResponse,
}

impl Phase {
    pub(crate) fn kong_step(self) -> KongStep {
        match self {
            Phase::Init | Phase::VmStart | Phase::Configure | Phase::QueueReady => KongStep::None,
            // ngx_proxy_wasm.c, ngx_proxy_wasm_resume sets pwctx->step before run_step creates
            // the stream context (ngx_proxy_wasm_create_context calls on_context_create).
            Phase::StreamCreate | Phase::RequestHeaders => KongStep::ReqHeaders,
            Phase::RequestBody | Phase::RequestTrailers => KongStep::ReqBody,
            Phase::ResponseHeaders => KongStep::RespHeaders,
            Phase::ResponseBody | Phase::ResponseTrailers => KongStep::RespBody,
            // ngx_proxy_wasm.c, ngx_proxy_wasm_on_log: proxy_on_done and proxy_on_log both run
            // in the LOG step; proxy_on_delete in the DONE step (ngx_proxy_wasm_on_done).
            Phase::Log | Phase::Done => KongStep::Log,
            Phase::Delete => KongStep::Done,
            Phase::Tick => KongStep::Tick,
            Phase::CalloutResponse => KongStep::DispatchResponse,
        }
    }
}
