//! ABI 0.2.1 enums as the host sees them, and the plain data types of the test API.

/// A proxy-wasm status code (`proxy_*` return value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0
    Ok,
    /// 1
    NotFound,
    /// 2
    BadArgument,
    /// 3
    SerializationFailure,
    /// 4
    ParseFailure,
    /// 7
    Empty,
    /// 8
    CasMismatch,
    /// 10
    InternalFailure,
    /// 12
    Unimplemented,
}

impl Status {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::BadArgument => 2,
            Status::SerializationFailure => 3,
            Status::ParseFailure => 4,
            Status::Empty => 7,
            Status::CasMismatch => 8,
            Status::InternalFailure => 10,
            Status::Unimplemented => 12,
        }
    }
}

/// What a stream callback returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// 0: continue the filter chain.
    Continue,
    /// 1: stop iteration until the filter resumes the stream.
    Pause,
    /// Any other value (Envoy's extended filter statuses).
    Other(u32),
}

impl Action {
    pub(crate) fn from_raw(raw: i32) -> Action {
        match raw {
            0 => Action::Continue,
            1 => Action::Pause,
            n => Action::Other(n as u32),
        }
    }
}

/// Log level of `proxy_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    pub(crate) fn from_raw(raw: i32) -> Option<LogLevel> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn raw(self) -> u32 {
        self as u32
    }
}

/// Metric kind of `proxy_define_metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// 0
    Counter,
    /// 1
    Gauge,
    /// 2
    Histogram,
}

impl MetricType {
    pub(crate) fn from_raw(raw: i32) -> Option<MetricType> {
        Some(match raw {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            _ => return None,
        })
    }
}

/// Header map selector of the `*_header_map_*` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// 0
    RequestHeaders,
    /// 1
    RequestTrailers,
    /// 2
    ResponseHeaders,
    /// 3
    ResponseTrailers,
    /// 4
    GrpcInitialMetadata,
    /// 5
    GrpcTrailingMetadata,
    /// 6
    CalloutResponseHeaders,
    /// 7
    CalloutResponseTrailers,
}

impl MapType {
    pub(crate) fn from_raw(raw: i32) -> Option<MapType> {
        Some(match raw {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 => MapType::GrpcInitialMetadata,
            5 => MapType::GrpcTrailingMetadata,
            6 => MapType::CalloutResponseHeaders,
            7 => MapType::CalloutResponseTrailers,
            _ => return None,
        })
    }
}

/// Buffer selector of `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    /// 0
    RequestBody,
    /// 1
    ResponseBody,
    /// 2
    DownstreamData,
    /// 3
    UpstreamData,
    /// 4
    CalloutResponseBody,
    /// 5
    GrpcReceiveBuffer,
    /// 6
    VmConfiguration,
    /// 7
    PluginConfiguration,
    /// 8
    CallData,
}

impl BufferType {
    pub(crate) fn from_raw(raw: i32) -> Option<BufferType> {
        Some(match raw {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::CalloutResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// Stream selector of `proxy_continue_stream` / `proxy_close_stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// 0
    Request,
    /// 1
    Response,
    /// 2
    Downstream,
    /// 3
    Upstream,
}

impl StreamType {
    pub(crate) fn from_raw(raw: i32) -> Option<StreamType> {
        Some(match raw {
            0 => StreamType::Request,
            1 => StreamType::Response,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// A header (or trailer) map: lowercase names, values as bytes, duplicates kept in order.
pub type Headers = Vec<(String, Vec<u8>)>;

/// One `proxy_log` line (or a WASI stdout/stderr write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Index of the worker (VM) that logged.
    pub worker: usize,
    /// Context the guest was running in (root or stream id).
    pub context_id: u32,
    /// Level: `proxy_log`'s level; stdout is Info, stderr is Error.
    pub level: LogLevel,
    /// The message, lossily decoded.
    pub message: String,
}

/// The response a filter sent with `proxy_send_local_response`, as the client sees it after the
/// filter's own response callbacks ran on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Response headers (no `:status`), as left by the response callbacks.
    pub headers: Headers,
    /// Response body.
    pub body: Vec<u8>,
    /// `status_code_details` the filter gave (empty when none).
    pub details: String,
    /// gRPC status, when the filter sent one (`-1` on the wire means none).
    pub grpc_status: Option<i32>,
}

/// Something a filter did to its stream, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent {
    /// `proxy_continue_stream` (or legacy `proxy_continue_request/response`).
    Resumed(StreamType),
    /// `proxy_close_stream`.
    Closed(StreamType),
    /// `proxy_send_local_response`.
    LocalResponseSent,
    /// Legacy `proxy_clear_route_cache`.
    RouteCacheCleared,
    /// Kong: the engine resumed the stream itself (its last pending callout finished).
    EngineResumed(StreamType),
}

/// A metric as the host holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Name the guest defined.
    pub name: String,
    /// Name the gateway exposes (see [`crate::Profile::metric_name`]).
    pub host_name: String,
    /// Kind.
    pub kind: MetricType,
    /// Counter / gauge value (a gauge may go negative); histogram: number of samples.
    pub value: i64,
    /// Histogram samples in order (empty for counters and gauges).
    pub samples: Vec<u64>,
}
