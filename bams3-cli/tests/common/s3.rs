//! A real S3-compatible server on loopback for the S3 tests: moto (installed by
//! tests/fetch-data.sh into ~/.cache/bams3/moto-venv), behind an in-process HTTP proxy that
//! counts the requests and bytes the client exchanged and injects faults on a schedule
//! (503 SlowDown, dropped connections, bodies cut short).
//!
//! Tests FAIL when moto cannot be started: a missing server is a broken test setup, not a
//! reason to skip.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The moto_server executable made by tests/fetch-data.sh (or `$BAMS3_MOTO_SERVER`).
pub fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BAMS3_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    PathBuf::from(home).join(".cache/bams3/moto-venv/bin/moto_server")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers; panics (fails the test) if not.
    pub fn start() -> Moto {
        let bin = moto_bin();
        assert!(
            bin.is_file(),
            "{} is missing: run tests/fetch-data.sh to install moto",
            bin.display()
        );
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if http(port, "GET", "/", &[]).is_ok() {
                    return Moto { child, port };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start on loopback (tests/fetch-data.sh installs it)");
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, _) = http(self.port, "PUT", &format!("/{bucket}"), &[]).expect("PUT bucket");
        assert!(status == 200, "creating bucket {bucket}: HTTP {status}");
    }

    /// Uploads an object directly (not through the proxy).
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let (status, _) =
            http(self.port, "PUT", &format!("/{bucket}/{key}"), body).expect("PUT object");
        assert!(status == 200, "uploading {bucket}/{key}: HTTP {status}");
    }

    /// Keys in a bucket under a prefix (moto answers unsigned requests).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = http(
            self.port,
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
            &[],
        )
        .expect("list");
        assert_eq!(status, 200, "listing {bucket}");
        let text = String::from_utf8_lossy(&body);
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The s3s-fs executable made by tests/fetch-data.sh (or `$BAMS3_S3S_FS`).
pub fn s3s_fs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BAMS3_S3S_FS").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    PathBuf::from(home).join(".cache/bams3/s3s-fs/bin/s3s-fs")
}

/// An s3s-fs server (a second, independent S3 implementation, which unlike moto checks
/// request signatures) serving the folders of `root` as buckets; killed on drop.
pub struct S3sFs {
    child: Child,
    pub port: u16,
    root: PathBuf,
}

impl S3sFs {
    /// Starts s3s-fs on a free port, accepting only `access_key`/`secret_key`; panics (fails
    /// the test) if it does not answer.
    pub fn start(root: &std::path::Path, access_key: &str, secret_key: &str) -> S3sFs {
        let bin = s3s_fs_bin();
        assert!(
            bin.is_file(),
            "{} is missing: run tests/fetch-data.sh to install s3s-fs",
            bin.display()
        );
        std::fs::create_dir_all(root).expect("s3s-fs root");
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", access_key, "--secret-key", secret_key])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return S3sFs {
                    child,
                    port,
                    root: root.to_path_buf(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("s3s-fs exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("s3s-fs did not start on loopback");
    }

    /// The endpoint URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (a folder of the root, which is all a bucket is to s3s-fs).
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.join(bucket)).expect("bucket folder");
    }

    /// The object keys of a bucket, from its folder.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let base = self.root.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&base) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(port: u16, method: &str, target: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        // moto checks no signature, but treats requests without credentials as anonymous,
        // which may not overwrite objects the signed client wrote.
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let Some((head, headers)) = read_head(&mut r)? else {
        return Err(io::Error::other("no response"));
    };
    let status = status_of(&head);
    let body = read_body(
        &mut r,
        &headers,
        method == "HEAD" || status == 304 || status == 204,
    )?;
    Ok((status, body))
}

type Headers = Vec<(String, String)>;

fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<(String, Headers)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::other("connection closed in headers"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn status_of(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The body as sent on the wire (chunked framing kept, so it can be forwarded as is).
fn read_body<R: BufRead>(r: &mut R, h: &Headers, none: bool) -> io::Result<Vec<u8>> {
    if none {
        return Ok(Vec::new());
    }
    if let Some(len) = header(h, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut b = vec![0; len];
        r.read_exact(&mut b)?;
        return Ok(b);
    }
    if header(h, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut raw = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            raw.extend_from_slice(line.as_bytes());
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            let mut b = vec![0; n + 2];
            r.read_exact(&mut b)?;
            raw.extend_from_slice(&b);
            if n == 0 {
                return Ok(raw);
            }
        }
    }
    Ok(Vec::new())
}

/// A fault the proxy injects instead of (or while) answering one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 SlowDown without forwarding.
    SlowDown,
    /// The connection is closed without an answer.
    Reset,
    /// The answer is forwarded with its full Content-Length but only half of its body.
    Truncate,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes: u64,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Every `n`-th request gets the next fault of `faults`, in turn.
    every: Option<usize>,
    faults: Vec<Fault>,
    counter: usize,
}

/// A counting, fault-injecting HTTP proxy in front of a server on loopback.
pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream` on loopback.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &st);
                });
            }
        });
        Proxy { port, state, stop }
    }

    /// The endpoint URL clients use.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Injects `faults` in turn into every `every`-th request from now on (`None`: no faults).
    pub fn set_faults(&self, every: Option<usize>, faults: &[Fault]) {
        let mut s = self.state.lock().unwrap();
        s.every = every;
        s.faults = faults.to_vec();
        s.counter = 0;
    }

    /// Forgets the requests seen so far.
    pub fn reset_counts(&self) {
        self.state.lock().unwrap().seen.clear();
    }

    /// The requests seen since the last reset.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests seen since the last reset or drain, forgetting them (none is lost between
    /// reading and forgetting, as it could be with `seen` then `reset_counts`).
    pub fn drain(&self) -> Vec<Seen> {
        std::mem::take(&mut self.state.lock().unwrap().seen)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// ACKs what arrives on `s` at once rather than after up to 40 ms. A server that writes a
/// response's head and body separately without TCP_NODELAY (s3s-fs does) holds a small body
/// until the head is ACKed; with the usual delayed ACK every small response then costs ~40 ms,
/// a stall of that server which no real S3 endpoint has. Linux leaves quick-ACK mode on its
/// own, so it is set again before each read.
fn quickack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn serve(client: TcpStream, upstream: u16, state: &Mutex<State>) -> io::Result<()> {
    // A response goes out as head, then body: without NODELAY the body's last small segment
    // waits for the client's delayed ACK of the head (~40 ms), which the proxy must not add.
    client.set_nodelay(true)?;
    let mut out = client.try_clone()?;
    let mut r = BufReader::new(client);
    let mut up: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let Some((head, headers)) = read_head(&mut r)? else {
            return Ok(());
        };
        let body = read_body(&mut r, &headers, false)?;
        let mut parts = head.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let fault = {
            let mut s = state.lock().unwrap();
            s.counter += 1;
            match s.every {
                Some(n) if n > 0 && s.counter.is_multiple_of(n) && !s.faults.is_empty() => {
                    let k = (s.counter / n - 1) % s.faults.len();
                    Some(s.faults[k])
                }
                _ => None,
            }
        };
        let record = |status: u16, bytes: u64| {
            state.lock().unwrap().seen.push(Seen {
                method: method.clone(),
                target: target.clone(),
                status,
                bytes,
                fault,
            });
        };
        match fault {
            Some(Fault::SlowDown) => {
                let msg = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                write!(
                    out,
                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
                    msg.len()
                )?;
                out.write_all(msg)?;
                record(503, msg.len() as u64);
                continue;
            }
            Some(Fault::Reset) => {
                record(0, 0);
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        // Forward on a kept-alive upstream connection, reconnecting once if it went stale.
        let mut request = Vec::new();
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(b"\r\n");
        for (k, v) in &headers {
            request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(&body);
        let mut response = None;
        for _ in 0..2 {
            if up.is_none() {
                let s = TcpStream::connect(("127.0.0.1", upstream))?;
                s.set_nodelay(true)?;
                let rd = BufReader::new(s.try_clone()?);
                up = Some((s, rd));
            }
            let (w, rd) = up.as_mut().expect("upstream");
            if w.write_all(&request).is_err() {
                up = None;
                continue;
            }
            quickack(w);
            match read_head(rd) {
                Ok(Some(h)) => {
                    response = Some(h);
                    break;
                }
                _ => up = None,
            }
        }
        let Some((rhead, rheaders)) = response else {
            return Err(io::Error::other("upstream did not answer"));
        };
        let status = status_of(&rhead);
        let (w, rd) = up.as_mut().expect("upstream");
        quickack(w);
        let none = method == "HEAD" || status == 304 || status == 204 || status < 200;
        let length = header(&rheaders, "content-length").and_then(|v| v.parse::<u64>().ok());
        let chunked = !none && length.is_none();
        // A chunked body is forwarded whole, with its framing; others are streamed.
        let rbody = if chunked {
            read_body(rd, &rheaders, false)?
        } else {
            Vec::new()
        };
        let close = header(&rheaders, "connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || (chunked && header(&rheaders, "transfer-encoding").is_none());
        let mut head_out = Vec::new();
        head_out.extend_from_slice(rhead.as_bytes());
        head_out.extend_from_slice(b"\r\n");
        for (k, v) in &rheaders {
            head_out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        head_out.extend_from_slice(b"\r\n");
        out.write_all(&head_out)?;
        let truncate = fault == Some(Fault::Truncate);
        if chunked {
            if truncate && rbody.len() > 1 {
                let half = rbody.len() / 2;
                out.write_all(&rbody[..half])?;
                record(status, half as u64);
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            out.write_all(&rbody)?;
            record(status, rbody.len() as u64);
            if close {
                up = None;
            }
            continue;
        }
        // Streamed as it arrives, so a client that reads part of an open-ended range and
        // hangs up (htslib does) costs what it read, and is counted for what it was sent.
        let length = if none { 0 } else { length.unwrap_or(0) };
        let limit = if truncate && length > 1 {
            length / 2
        } else {
            length
        };
        let (mut read, mut sent) = (0u64, 0u64);
        let mut buf = vec![0u8; 64 << 10];
        while sent < limit {
            let want = (length - read).min(buf.len() as u64) as usize;
            let n = rd.read(&mut buf[..want])?;
            quickack(rd.get_ref());
            if n == 0 {
                record(status, sent);
                return Err(io::Error::other("upstream closed mid-body"));
            }
            read += n as u64;
            let take = (n as u64).min(limit - sent) as usize;
            if out.write_all(&buf[..take]).is_err() {
                // The client hung up; the rest of the upstream body is not worth reading.
                record(status, sent);
                return Ok(());
            }
            sent += take as u64;
        }
        record(status, sent);
        if limit < length {
            let _ = out.shutdown(Shutdown::Both);
            return Ok(());
        }
        if close {
            up = None;
        }
    }
}
