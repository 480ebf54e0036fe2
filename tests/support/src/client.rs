//! A raw HTTP/1.1 client over `std::net::TcpStream`.
//!
//! It sends exactly the header lines it is given (duplicates, underscores, non-UTF-8 bytes, huge
//! values) and keeps every response header as bytes, in order, duplicates included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Header lines: names and values as raw bytes, in order.
pub type RawHeaders = Vec<(Vec<u8>, Vec<u8>)>;

/// Read/write timeout of client connections.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE_HEAD: usize = 1024 * 1024;
const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// A request, sent exactly as described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, e.g. `/api?x=1`.
    pub target: String,
    pub headers: RawHeaders,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// A request with a `host` header.
    pub fn new(method: &str, target: &str, host: &str) -> RawRequest {
        RawRequest {
            method: method.into(),
            target: target.into(),
            headers: vec![(b"host".to_vec(), host.as_bytes().to_vec())],
            body: Vec::new(),
        }
    }

    /// Appends one header line (names and values may be any bytes).
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> RawRequest {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body; `content-length` is added on the wire unless a framing header is present.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RawRequest {
        self.body = body.into();
        self
    }

    /// The bytes sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        let mut framed = false;
        for (name, value) in &self.headers {
            framed |= name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"transfer-encoding");
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !framed && !self.body.is_empty() {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response: status, headers (lowercase names, raw values, duplicates kept), decoded body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lowercased; values as received.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Every value of `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The first value of `name`, lossily as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name)
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The body, lossily as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Connection {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `req` and reads one final response (interim 1xx responses are skipped).
    pub fn send(&mut self, req: &RawRequest) -> Result<RawResponse> {
        self.writer
            .write_all(&req.to_bytes())
            .context("cannot send the request")?;
        loop {
            let resp = read_response(&mut self.reader, req.method == "HEAD")?;
            if !(100..200).contains(&resp.status) || resp.status == 101 {
                return Ok(resp);
            }
        }
    }
}

/// Sends `req` on a fresh connection.
pub fn send(addr: SocketAddr, req: &RawRequest) -> Result<RawResponse> {
    Connection::open(addr)?.send(req)
}

/// A GET with `connection: close` on a fresh connection; handy for admin endpoints.
pub fn get(addr: SocketAddr, target: &str) -> Result<RawResponse> {
    send(
        addr,
        &RawRequest::new("GET", target, "127.0.0.1").header("connection", "close"),
    )
}

fn read_line<R: BufRead>(r: &mut R, budget: &mut usize) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)
        .context("cannot read the response")?;
    if n == 0 {
        bail!("connection closed before a complete response");
    }
    if n > *budget {
        bail!("response head larger than {MAX_RESPONSE_HEAD} bytes");
    }
    *budget -= n;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(line)
}

/// Reads one response from `r`. `head_only` for responses to HEAD.
pub fn read_response<R: BufRead>(r: &mut R, head_only: bool) -> Result<RawResponse> {
    let mut budget = MAX_RESPONSE_HEAD;
    let status_line = read_line(r, &mut budget)?;
    let text = String::from_utf8_lossy(&status_line);
    let mut parts = text.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("malformed status line `{text}`");
    };
    if !version.starts_with("HTTP/1.") {
        bail!("malformed status line `{text}`");
    }
    let status: u16 = code
        .parse()
        .with_context(|| format!("malformed status line `{text}`"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|b| *b == b':').with_context(|| {
            format!("malformed header line {:?}", String::from_utf8_lossy(&line))
        })?;
        headers.push((
            String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
            line[colon + 1..].trim_ascii().to_vec(),
        ));
    }
    let mut resp = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp.header_values("transfer-encoding").iter().any(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("chunked")
    });
    if chunked {
        resp.body = read_chunked(r)?;
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .with_context(|| format!("malformed content-length `{len}`"))?;
        if len > MAX_RESPONSE_BODY {
            bail!("response body of {len} bytes is too large");
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).context("response body cut short")?;
        resp.body = body;
    } else {
        r.take(MAX_RESPONSE_BODY as u64)
            .read_to_end(&mut resp.body)
            .context("cannot read the response body")?;
    }
    Ok(resp)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = 4096;
        let line = read_line(r, &mut budget)?;
        let size = String::from_utf8_lossy(&line);
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .with_context(|| format!("malformed chunk size `{size}`"))?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_RESPONSE_BODY {
            bail!("chunked response body too large");
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .context("chunk cut short")?;
        let mut crlf = [0; 2];
        r.read_exact(&mut crlf).context("chunk cut short")?;
    }
    let mut budget = 64 * 1024;
    while !read_line(r, &mut budget)?.is_empty() {}
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_keep_every_header_line() {
        let req = RawRequest::new("POST", "/a", "h")
            .header("x-user-id", "a")
            .header("x-user-id", "b")
            .header("x_user_id", b"\xff")
            .body("hi");
        assert_eq!(
            req.to_bytes(),
            b"POST /a HTTP/1.1\r\nhost: h\r\nx-user-id: a\r\nx-user-id: b\r\nx_user_id: \xff\r\ncontent-length: 2\r\n\r\nhi"
        );
    }

    #[test]
    fn parses_content_length_chunked_and_duplicates() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: a\r\nset-cookie: b\r\nx-raw: \xfe\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let interim = read_response(&mut r, false).unwrap();
        assert_eq!(interim.status, 100);
        let a = read_response(&mut r, false).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.header_values("set-cookie"), vec![&b"a"[..], b"b"]);
        assert_eq!(a.header_values("x-raw"), vec![&b"\xfe"[..]]);
        assert_eq!(a.body, b"abc");
        let b = read_response(&mut r, false).unwrap();
        assert_eq!((b.status, b.body.as_slice()), (201, &b"hello"[..]));
    }
}
