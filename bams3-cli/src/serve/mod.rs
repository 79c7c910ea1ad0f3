//! `bams3 serve`: an htsget 1.3 reads endpoint over datasets under a root directory, an S3
//! prefix or an id map, so htslib, htsjdk (IGV) and igv.js read exact region slices over HTTP.
//!
//! One concept a module: `router` (requests to answers: CORS, auth, routes), `ticket` (what a
//! request asks for and the ticket JSON), `records` (a record URL's body: BGZF blocks streamed
//! as records decode), `safety` (ids and tokens), `error` (the specification's error bodies),
//! `viewer` (the igv.js page of `--viewer`).

mod error;
mod records;
mod router;
mod safety;
mod ticket;
mod viewer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bams3_core::dataset::{Dataset, OpenOptions};
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{mpsc, Semaphore};

use crate::units;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Datasets served: ids are paths relative to this directory or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|s3://...")]
    root: Option<String>,
    /// A JSON object of id -> dataset location (directory or s3://), looked up before --root.
    #[arg(long, value_name = "ids.json")]
    map: Option<PathBuf>,
    /// Base of the record URLs in tickets, as clients reach this server (behind a proxy:
    /// https://host/prefix). Default: http:// and the request's Host header.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Require `Authorization: Bearer TOKEN` with one of the tokens in FILE (one a line).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Origins allowed by CORS (repeatable); default: any origin, as the htsget specification asks.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    /// No CORS headers at all.
    #[arg(long, conflicts_with = "cors_origin")]
    no_cors: bool,
    /// Record streams served at once; further requests wait up to --timeout, then get 503.
    #[arg(long, default_value_t = 8)]
    max_streams: usize,
    /// Connections open at once.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Seconds a ticket may take to compute, and a record stream to finish.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Refuse (413) regions spanning more reference bases than this (e.g. 10M); default no limit.
    #[arg(long, value_parser = units::size_arg, value_name = "BASES")]
    max_region: Option<u64>,
    /// Target BAM-encoded size of one record URL: larger regions get several.
    #[arg(long, default_value = "64M", value_parser = units::size_arg, value_name = "BYTES")]
    piece_size: u64,
    /// Deflate level of the BGZF blocks served (0-9).
    #[arg(short = 'l', long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    level: u8,
    /// Also serve /viewer/?id=ID&locus=chr:start-end, a page showing the region in igv.js.
    #[arg(long, requires = "viewer_assets")]
    viewer: bool,
    /// The directory igv.min.js is read from: the dist directory of the npm package igv
    /// (`npm install igv` puts it in node_modules/igv/dist).
    #[arg(long, value_name = "DIR", requires = "viewer")]
    viewer_assets: Option<PathBuf>,
}

/// Everything a request handler needs.
pub struct State {
    resolver: safety::Resolver,
    tokens: Option<safety::Tokens>,
    /// `None`: no CORS; `Some(empty)`: any origin.
    cors: Option<Vec<String>>,
    base_url: Option<String>,
    piece_bytes: u64,
    level: u8,
    max_region: Option<u64>,
    timeout: Duration,
    streams: Arc<Semaphore>,
    open: OpenOptions,
    datasets: Mutex<HashMap<String, (Instant, Arc<Dataset>)>>,
    viewer: Option<viewer::Viewer>,
}

/// How long an opened dataset is reused before it is opened (and revalidated) again.
const DATASET_TTL: Duration = Duration::from_secs(30);

impl State {
    /// The dataset at `location`, opened on a blocking thread (the library's I/O is
    /// synchronous) and kept for a short while.
    async fn dataset(&self, id: &str, location: String) -> error::Result<Arc<Dataset>> {
        if let Some((at, ds)) = self.datasets.lock().expect("lock").get(&location) {
            if at.elapsed() < DATASET_TTL {
                return Ok(ds.clone());
            }
        }
        let opts = self.open.clone();
        let loc = location.clone();
        let opened = tokio::task::spawn_blocking(move || Dataset::open_location(&loc, &opts))
            .await
            .map_err(|e| error::HtsgetError::new(error::Kind::Internal, e.to_string()))?;
        let ds = match opened {
            Ok(ds) => ds,
            Err(bams3_core::Error::NotFound(_)) => {
                return Err(error::HtsgetError::new(
                    error::Kind::NotFound,
                    format!("no dataset '{id}'"),
                ))
            }
            Err(e) => {
                eprintln!("bams3 serve: {id}: {e}");
                return Err(error::HtsgetError::new(
                    error::Kind::Internal,
                    format!("dataset '{id}' cannot be read"),
                ));
            }
        };
        let mut cache = self.datasets.lock().expect("lock");
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(location, (Instant::now(), ds.clone()));
        Ok(ds)
    }
}

/// A response body: bytes at once, or BGZF blocks as a record stream produces them.
pub enum Body {
    /// The whole body.
    Full(Option<Bytes>),
    /// Chunks from a producer thread; an `Err` cuts the response short.
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => hyper::body::SizeHint::with_exact(0),
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

pub fn run(a: Args, opts: &OpenOptions) -> Result<()> {
    let resolver = safety::Resolver::new(a.root.as_deref(), a.map.as_deref())?;
    let tokens = a
        .token_file
        .as_deref()
        .map(safety::Tokens::load)
        .transpose()?;
    let viewer = match (a.viewer, &a.viewer_assets) {
        (true, Some(dir)) => Some(viewer::Viewer::load(dir)?),
        _ => None,
    };
    let state = Arc::new(State {
        resolver,
        tokens,
        cors: (!a.no_cors).then_some(a.cors_origin),
        base_url: a.base_url.map(|u| u.trim_end_matches('/').to_string()),
        piece_bytes: a.piece_size,
        level: a.level,
        max_region: a.max_region,
        timeout: Duration::from_secs(a.timeout.max(1)),
        streams: Arc::new(Semaphore::new(a.max_streams.max(1))),
        open: opts.clone(),
        datasets: Mutex::new(HashMap::new()),
        viewer,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bams3-serve")
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the server runtime")?;
    rt.block_on(serve(a.listen, state, a.max_connections.max(1)))
}

async fn serve(addr: SocketAddr, state: Arc<State>, max_connections: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("bams3 serve: listening on http://{local}");
    if state.viewer.is_some() {
        eprintln!("bams3 serve: viewer on http://{local}/viewer/?id=ID&locus=chr:start-end");
    }
    let connections = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = connections.clone().acquire_owned().await?;
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                eprintln!("bams3 serve: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(router::handle(state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}
