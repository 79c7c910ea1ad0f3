//! Requests to answers: CORS, bearer auth, and the routes (`/reads/service-info`,
//! `/reads/{id}` GET and POST, `/data/{id}` record streams, `/viewer/` with `--viewer`).

use std::sync::Arc;

use bams3_core::region::Region;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use super::error::{HtsgetError, Kind, Result};
use super::records::{self, Piece, StreamLimits};
use super::ticket::{self, TicketRequest};
use super::{viewer, Body, State};

/// Largest POST body accepted.
const MAX_POST: usize = 1 << 20;
/// Chunks (of about 256 kB) buffered between a record stream and its connection.
const STREAM_QUEUE: usize = 4;

/// Answers one request.
pub async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let mut resp = if req.method() == Method::OPTIONS {
        preflight(&req)
    } else {
        match route(&state, req).await {
            Ok(r) => r,
            Err(e) => {
                if e.kind == Kind::Internal {
                    eprintln!("bams3 serve: {}", e.message);
                }
                error_response(&e)
            }
        }
    };
    cors(&state, origin.as_deref(), &mut resp);
    resp
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::Full(Some(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ga4gh.htsget.v1.3.0+json; charset=utf-8"),
    );
    r
}

fn error_response(e: &HtsgetError) -> Response<Body> {
    let mut r = json_response(e.kind.status(), e.body());
    if let Some(allow) = e.allow {
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    }
    if e.kind == Kind::PermissionDenied || e.kind == Kind::InvalidAuthentication {
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    r
}

/// A CORS preflight: accepted for GET and POST, echoing the requested headers.
fn preflight(req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let mut r = Response::new(Body::Full(None));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    if let Some(v) = req.headers().get("access-control-request-headers") {
        h.insert("access-control-allow-headers", v.clone());
    }
    h.insert(
        "access-control-max-age",
        HeaderValue::from_static("2592000"),
    );
    r
}

/// Echoes an allowed `Origin` into `Access-Control-Allow-Origin`.
fn cors(state: &State, origin: Option<&str>, resp: &mut Response<Body>) {
    let (Some(allowed), Some(origin)) = (&state.cors, origin) else {
        return;
    };
    if !allowed.is_empty() && !allowed.iter().any(|a| a == origin || a == "*") {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert("access-control-allow-origin", v);
        h.insert("vary", HeaderValue::from_static("Origin"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("Content-Length, Content-Type"),
        );
    }
}

fn invalid(msg: impl Into<String>) -> HtsgetError {
    HtsgetError::new(Kind::InvalidInput, msg)
}

/// The id in a path after `prefix`, percent-decoded.
pub(super) fn id_of(path: &str, prefix: &str) -> Result<String> {
    let raw = path.strip_prefix(prefix).unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid("the id is not UTF-8"))
}

/// Percent-encodes an id for a URL path, keeping its `/` separators.
fn encode_id(id: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    id.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn query_params(req: &Request<hyper::body::Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn authorize(state: &State, req: &Request<hyper::body::Incoming>) -> Result<()> {
    match &state.tokens {
        None => Ok(()),
        Some(t) => t.check(
            req.headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        ),
    }
}

/// A GET-only route's check. HEAD is answered as GET: hyper sends the headers and drops the
/// body.
fn only_get(method: &Method) -> Result<()> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(HtsgetError::method_not_allowed(
            method,
            "GET, HEAD, OPTIONS",
        ))
    }
}

async fn route(state: &Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/reads/service-info" || path == "/service-info" {
        only_get(&method)?;
        return Ok(json_response(StatusCode::OK, service_info().to_string()));
    }
    if let Some(_rest) = path.strip_prefix("/reads/") {
        authorize(state, &req)?;
        let id = id_of(&path, "/reads/")?;
        let base = base_url(state, &req);
        // Record URLs need the same credentials: the ticket hands them on as headers.
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let treq = match method {
            Method::GET | Method::HEAD => TicketRequest::from_query(&query_params(&req))?,
            Method::POST => {
                let body = http_body_util::Limited::new(req.into_body(), MAX_POST)
                    .collect()
                    .await
                    .map_err(|e| invalid(format!("cannot read the request body: {e}")))?
                    .to_bytes();
                TicketRequest::from_json(&body)?
            }
            m => {
                return Err(HtsgetError::method_not_allowed(
                    &m,
                    "GET, HEAD, POST, OPTIONS",
                ));
            }
        };
        return ticket_response(state, &id, treq, base, auth).await;
    }
    if let Some(v) = &state.viewer {
        if path == "/viewer" || path.starts_with("/viewer/") {
            only_get(&method)?;
            if let Some(r) = viewer::route(state, v, &path, || authorize(state, &req)).await {
                return r;
            }
        }
    }
    if path.starts_with("/data/") {
        only_get(&method)?;
        authorize(state, &req)?;
        let id = id_of(&path, "/data/")?;
        return stream_response(state, &id, &query_params(&req)).await;
    }
    Err(HtsgetError::new(Kind::NotFound, format!("no route {path}")))
}

/// The base of record URLs: `--base-url`, else this server as the client named it.
fn base_url(state: &State, req: &Request<hyper::body::Incoming>) -> String {
    if let Some(b) = &state.base_url {
        return b.clone();
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()) && !h.contains('/'))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn service_info() -> serde_json::Value {
    json!({
        "id": "org.bams3.htsget",
        "name": "bams3 serve",
        "type": {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"},
        "description": "htsget reads endpoint serving BAMS3 datasets as exact BAM region slices",
        "organization": {"name": "BAMS3", "url": "https://github.com/bams3"},
        "version": env!("CARGO_PKG_VERSION"),
        "htsget": {
            "datatype": "reads",
            "formats": ["BAM"],
            "fieldsParameterEffective": true,
            "tagsParametersEffective": true,
        },
    })
}

async fn ticket_response(
    state: &Arc<State>,
    id: &str,
    treq: TicketRequest,
    base: String,
    auth: Option<String>,
) -> Result<Response<Body>> {
    let location = state.resolver.resolve(id)?;
    let ds = state.dataset(id, location).await?;
    let regions = ticket::resolve(&ds, &treq)?;
    check_limit(state, &ds, &regions)?;
    let headers = auth
        .filter(|_| state.tokens.is_some())
        .map(|a| json!({"Authorization": a}));
    let data_url = format!("{base}/data/{}", encode_id(id));
    let (piece_bytes, level) = (state.piece_bytes, state.level);
    let work = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        let mut pieces = Vec::new();
        if !treq.header_only {
            for r in &regions {
                pieces.extend(ticket::pieces(&ds, *r, piece_bytes)?);
            }
        }
        Ok(ticket::ticket(
            &ds,
            &treq,
            &pieces,
            &data_url,
            headers.as_ref(),
            level,
        ))
    });
    let value = tokio::time::timeout(state.timeout, work)
        .await
        .map_err(|_| HtsgetError::new(Kind::Unavailable, "the ticket took too long"))?
        .map_err(|e| HtsgetError::new(Kind::Internal, e.to_string()))??;
    Ok(json_response(StatusCode::OK, value.to_string()))
}

fn check_limit(state: &State, ds: &bams3_core::dataset::Dataset, regions: &[Region]) -> Result<()> {
    let Some(limit) = state.max_region else {
        return Ok(());
    };
    for r in regions {
        let n = ticket::span_bases(ds, r);
        if n > limit {
            return Err(HtsgetError::new(
                Kind::PayloadTooLarge,
                format!(
                    "the region spans {n} bases; this server serves at most {limit} per region"
                ),
            ));
        }
    }
    Ok(())
}

async fn stream_response(
    state: &Arc<State>,
    id: &str,
    params: &[(String, String)],
) -> Result<Response<Body>> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num = |k: &str| -> Result<Option<i64>> {
        get(k)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|&n| (-1..=u32::MAX as i64).contains(&n))
                    .ok_or_else(|| invalid(format!("{k} '{v}' is not a position")))
            })
            .transpose()
    };
    let shape = ticket::parse_shape(get("fields"), get("tags"), get("notags"))?;
    let location = state.resolver.resolve(id)?;
    let ds = state.dataset(id, location).await?;
    let region = match get("referenceName") {
        Some("*") => Region::Unplaced,
        Some(name) => {
            let ref_id = ds.header().reference_index(name).ok_or_else(|| {
                HtsgetError::new(Kind::NotFound, format!("no reference '{name}'"))
            })?;
            let beg = num("start")?.unwrap_or(0);
            let end = num("end")?.unwrap_or(i64::MAX);
            if beg > end {
                return Err(HtsgetError::new(
                    Kind::InvalidRange,
                    "start is greater than end",
                ));
            }
            Region::Span { ref_id, beg, end }
        }
        None => return Err(invalid("a record URL needs a referenceName")),
    };
    check_limit(state, &ds, &[region])?;
    let piece = Piece {
        region,
        from: num("from")?,
    };
    let permit = tokio::time::timeout(state.timeout, state.streams.clone().acquire_owned())
        .await
        .map_err(|_| HtsgetError::new(Kind::Unavailable, "too many streams; try again later"))?
        .map_err(|e| HtsgetError::new(Kind::Internal, e.to_string()))?;
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let limits = StreamLimits {
        level: state.level,
        timeout: state.timeout,
    };
    records::spawn(ds, piece, shape, limits, tx, permit)
        .map_err(|e| HtsgetError::new(Kind::Internal, format!("cannot start a stream: {e}")))?;
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ga4gh.bam"),
    );
    Ok(r)
}
