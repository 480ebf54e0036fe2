//! A small, strict HTTP/1.1 request reader and response writer.
//!
//! Sizes are bounded (head, chunk lines, body), so a hostile or broken client gets a 4xx and the
//! connection closes; nothing here panics on input.

use std::io::{self, BufRead, Write};

/// Largest request head (request line + headers) accepted: Envoy forwards up to 96 KiB of
/// headers in the test configuration, plus what it adds itself.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Longest chunk-size line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// A header list: lowercase names, raw values, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub http10: bool,
    /// Header names lowercase, values raw bytes, in order, duplicates kept.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Every value of header `name` (lowercase), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the connection stays open after this request.
    pub fn keep_alive(&self) -> bool {
        let has_token = |token: &str| {
            self.header_values("connection").any(|v| {
                v.split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        if self.http10 {
            has_token("keep-alive")
        } else {
            !has_token("close")
        }
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection before sending a byte of a new request.
    Closed,
    /// The socket failed (including read timeouts).
    Io,
    /// The request is malformed: answer 400.
    Bad(&'static str),
    /// The request head is larger than [`MAX_HEAD_BYTES`]: answer 431.
    HeadTooLarge,
    /// The body is larger than [`MAX_BODY_BYTES`]: answer 413.
    BodyTooLarge,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// Reads one line (through `\n`) into `out`, taking at most `budget` bytes from the reader.
/// Returns the number of bytes read; 0 means end of stream.
fn read_line_bounded<R: BufRead>(
    r: &mut R,
    out: &mut Vec<u8>,
    budget: &mut usize,
    too_long: ReadError,
) -> Result<usize, ReadError> {
    let start = out.len();
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Io),
        };
        if available.is_empty() {
            return Ok(out.len() - start);
        }
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if take > *budget {
            return Err(too_long);
        }
        out.extend_from_slice(&available[..take]);
        r.consume(take);
        *budget -= take;
        if done {
            return Ok(out.len() - start);
        }
    }
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `name` is a valid HTTP token (header name or method).
pub fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| is_tchar(*b))
}

/// Reads one request. `interim` receives a `100 Continue` when the client asked for one.
pub fn read_request<R: BufRead, W: Write>(
    r: &mut R,
    interim: &mut W,
) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = Vec::new();
    // One empty line before the request line is tolerated (RFC 9112, 2.2).
    let mut first = true;
    loop {
        line.clear();
        let n = read_line_bounded(r, &mut line, &mut budget, ReadError::HeadTooLarge)?;
        if n == 0 {
            return if first {
                Err(ReadError::Closed)
            } else {
                Err(ReadError::Bad("connection closed inside the request head"))
            };
        }
        first = false;
        if !strip_eol(&line).is_empty() {
            break;
        }
        if budget < MAX_HEAD_BYTES - 4 {
            return Err(ReadError::Bad("empty lines before the request line"));
        }
    }
    let request_line = strip_eol(&line);
    let mut parts = request_line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    if !is_token(method) {
        return Err(ReadError::Bad("malformed method"));
    }
    if target.is_empty() || target.iter().any(|b| *b <= b' ' || *b == 0x7f) {
        return Err(ReadError::Bad("malformed request target"));
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Err(ReadError::Bad("unsupported HTTP version")),
    };
    let method = String::from_utf8_lossy(method).into_owned();
    let target = String::from_utf8_lossy(target).into_owned();

    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = read_line_bounded(r, &mut line, &mut budget, ReadError::HeadTooLarge)?;
        if n == 0 {
            return Err(ReadError::Bad("connection closed inside the request head"));
        }
        let l = strip_eol(&line);
        if l.is_empty() {
            break;
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return Err(ReadError::Bad("obsolete header line folding"));
        }
        let Some(colon) = l.iter().position(|b| *b == b':') else {
            return Err(ReadError::Bad("header line without a colon"));
        };
        let name = &l[..colon];
        if !is_token(name) {
            return Err(ReadError::Bad("malformed header name"));
        }
        let value = l[colon + 1..].trim_ascii();
        if value.iter().any(|b| *b == 0 || *b == b'\r' || *b == b'\n') {
            return Err(ReadError::Bad("control character in a header value"));
        }
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            value.to_vec(),
        ));
    }

    let mut req = Request {
        method,
        target,
        http10,
        headers,
        body: Vec::new(),
    };
    let framing = body_framing(&req)?;
    if !matches!(framing, Framing::None) && !req.http10 {
        let wants_continue = req
            .header_values("expect")
            .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
        if wants_continue {
            interim.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            interim.flush()?;
        }
    }
    req.body = match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => read_exact_body(r, n)?,
        Framing::Chunked => read_chunked_body(r)?,
    };
    Ok(req)
}

enum Framing {
    None,
    Length(usize),
    Chunked,
}

fn body_framing(req: &Request) -> Result<Framing, ReadError> {
    let te: Vec<&[u8]> = req.header_values("transfer-encoding").collect();
    let cl: Vec<&[u8]> = req.header_values("content-length").collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(ReadError::Bad("both transfer-encoding and content-length"));
        }
        let last = te
            .iter()
            .flat_map(|v| v.split(|b| *b == b','))
            .map(|t| t.trim_ascii())
            .next_back()
            .unwrap_or_default();
        return if last.eq_ignore_ascii_case(b"chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(ReadError::Bad("transfer-encoding without chunked last"))
        };
    }
    let mut length: Option<usize> = None;
    for v in cl.iter().flat_map(|v| v.split(|b| *b == b',')) {
        let v = v.trim_ascii();
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 12 {
            return Err(ReadError::Bad("malformed content-length"));
        }
        let n: usize = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ReadError::Bad("malformed content-length"))?;
        match length {
            Some(prev) if prev != n => return Err(ReadError::Bad("conflicting content-length")),
            _ => length = Some(n),
        }
    }
    match length {
        None | Some(0) => Ok(Framing::None),
        Some(n) if n > MAX_BODY_BYTES => Err(ReadError::BodyTooLarge),
        Some(n) => Ok(Framing::Length(n)),
    }
}

fn read_exact_body<R: BufRead>(r: &mut R, n: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = vec![0; n];
    match r.read_exact(&mut body) {
        Ok(()) => Ok(body),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(ReadError::Bad("connection closed inside the body"))
        }
        Err(_) => Err(ReadError::Io),
    }
}

fn read_chunked_body<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut budget = MAX_CHUNK_LINE;
        let n = read_line_bounded(
            r,
            &mut line,
            &mut budget,
            ReadError::Bad("chunk line too long"),
        )?;
        if n == 0 {
            return Err(ReadError::Bad("connection closed inside a chunked body"));
        }
        let l = strip_eol(&line);
        let size_part = l
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if size_part.is_empty()
            || size_part.len() > 8
            || !size_part.iter().all(u8::is_ascii_hexdigit)
        {
            return Err(ReadError::Bad("malformed chunk size"));
        }
        let size = std::str::from_utf8(size_part)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(ReadError::Bad("malformed chunk size"))?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::BodyTooLarge);
        }
        let chunk = read_exact_body(r, size)?;
        body.extend_from_slice(&chunk);
        let crlf = read_exact_body(r, 2)?;
        if crlf != b"\r\n" {
            return Err(ReadError::Bad("chunk not followed by CRLF"));
        }
    }
    // Trailers, ignored, up to the empty line.
    let mut budget = MAX_CHUNK_LINE * 4;
    loop {
        line.clear();
        let n = read_line_bounded(
            r,
            &mut line,
            &mut budget,
            ReadError::Bad("trailers too long"),
        )?;
        if n == 0 {
            return Err(ReadError::Bad("connection closed inside the trailers"));
        }
        if strip_eol(&line).is_empty() {
            return Ok(body);
        }
    }
}

/// One response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Headers other than content-length and connection, which the writer adds.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with the given status.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: value.to_string().into_bytes(),
        }
    }
}

/// The reason phrase for common statuses; any other status gets an empty phrase, which is valid.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Serialises `resp`. `head_only` drops the body (HEAD requests); `close` adds `connection: close`.
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    for (name, value) in &resp.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let bodyless = resp.status == 204 || resp.status == 304 || (100..200).contains(&resp.status);
    if !bodyless {
        out.extend_from_slice(format!("content-length: {}\r\n", resp.body.len()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodyless && !head_only {
        out.extend_from_slice(&resp.body);
    }
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        let mut r = io::BufReader::new(raw);
        read_request(&mut r, &mut Vec::new())
    }

    #[test]
    fn parses_headers_in_order_with_duplicates_and_raw_bytes() {
        let req = parse(
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a:  2 \r\nX-Raw: \xff\xfeA\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/a?b=1");
        assert_eq!(req.path(), "/a");
        assert_eq!(
            req.headers,
            vec![
                ("host".into(), b"x".to_vec()),
                ("x-a".into(), b"1".to_vec()),
                ("x-a".into(), b"2".to_vec()),
                ("x-raw".into(), b"\xff\xfeA".to_vec()),
            ]
        );
        assert!(req.keep_alive());
    }

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let req = parse(b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello").unwrap();
        assert_eq!(req.body, b"hello");
        let req = parse(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nt: 1\r\n\r\n")
            .unwrap();
        assert_eq!(req.body, b"hello world");
    }

    #[test]
    fn two_requests_on_one_connection() {
        let raw = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nconnection: close\r\n\r\n";
        let mut r = io::BufReader::new(&raw[..]);
        let a = read_request(&mut r, &mut Vec::new()).unwrap();
        let b = read_request(&mut r, &mut Vec::new()).unwrap();
        assert_eq!((a.target.as_str(), b.target.as_str()), ("/1", "/2"));
        assert!(!b.keep_alive());
        assert!(matches!(
            read_request(&mut r, &mut Vec::new()),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn rejects_malformed_requests() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad name: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nx: a\r\n folded\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nshort",
            b"GET / HTTP/1.1\r\nx: 1",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Bad(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn bounds_head_and_body_sizes() {
        let mut raw = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 100 * 1024));
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&raw).unwrap().headers[0].1.len(), 100 * 1024);
        let mut raw = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        assert!(matches!(parse(&raw), Err(ReadError::HeadTooLarge)));
        let raw = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert!(matches!(
            parse(raw.as_bytes()),
            Err(ReadError::BodyTooLarge)
        ));
    }

    #[test]
    fn answers_expect_continue() {
        let mut r = io::BufReader::new(
            &b"POST / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi"[..],
        );
        let mut interim = Vec::new();
        let req = read_request(&mut r, &mut interim).unwrap();
        assert_eq!(req.body, b"hi");
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive());
        assert!(parse(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .keep_alive());
    }

    #[test]
    fn writes_responses() {
        let mut out = Vec::new();
        let resp = Response {
            status: 201,
            headers: vec![("x-a".into(), b"1".to_vec())],
            body: b"ok".to_vec(),
        };
        write_response(&mut out, &resp, false, true).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 201 Created\r\nx-a: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        );
        let mut out = Vec::new();
        write_response(&mut out, &resp, true, false).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 201 Created\r\nx-a: 1\r\ncontent-length: 2\r\n\r\n"
        );
        let mut out = Vec::new();
        let resp = Response {
            status: 204,
            headers: vec![],
            body: b"ignored".to_vec(),
        };
        write_response(&mut out, &resp, false, false).unwrap();
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
    }
}
