//! The counting HTTP proxy of the S3 tests as a program, for `bench/s3.sh`: it forwards to an
//! S3-compatible server on loopback and prints one line per request it answered, so a
//! benchmark can count the requests and bytes of bams3 and of samtools on the same footing.
//!
//! ```text
//! cargo run --release -p bams3-cli --example s3_count_proxy -- UPSTREAM_PORT
//! ```
//! The first line is the proxy's port; then, per request, `METHOD STATUS BYTES TARGET`
//! (BYTES: response body bytes sent to the client).

#[path = "../tests/common/s3.rs"]
mod s3;

use std::io::Write;
use std::time::Duration;

fn main() {
    let upstream = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: s3_count_proxy UPSTREAM_PORT");
            std::process::exit(2);
        }
    };
    let proxy = s3::Proxy::start(upstream);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", proxy.port);
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        for s in proxy.drain() {
            if writeln!(out, "{} {} {} {}", s.method, s.status, s.bytes, s.target).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}
