//! The viewer page (`--viewer`): igv.js showing a dataset region read through this server's own
//! htsget endpoint. The page is compiled in; igv.js is read at start-up from `--viewer-assets`
//! (the `dist` directory of the npm package `igv`), so building the binary needs no npm and the
//! browser fetches nothing from a CDN (docs/HTSGET.md says why this split).

use std::path::Path;

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Response, StatusCode};

use super::error::Result;
use super::{Body, State};

/// The page, with its script: it reads `?id=ID&locus=chr:start-end` (and `#token=` for
/// `--token-file`) and builds an igv.js browser whose reference is the dataset's header.
const PAGE: &str = include_str!("viewer.html");
/// The file the page loads from the assets directory.
const IGV_JS: &str = "igv.min.js";
/// igv.min.js is about 1.5 MB; anything far larger is not it.
const MAX_ASSET: u64 = 64 << 20;

/// The viewer's assets, read once at start-up.
///
/// ```ignore
/// let v = Viewer::load(Path::new("node_modules/igv/dist"))?;
/// ```
pub struct Viewer {
    igv_js: Bytes,
}

impl Viewer {
    /// Reads igv.min.js from `dir`, failing with what to install when it is not there.
    pub fn load(dir: &Path) -> anyhow::Result<Viewer> {
        let path = dir.join(IGV_JS);
        let hint = "the dist directory of the npm package igv: `npm install igv`, then \
                    --viewer-assets node_modules/igv/dist";
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("--viewer-assets {}: no {IGV_JS} ({hint})", dir.display()))?;
        if !meta.is_file() || meta.len() > MAX_ASSET {
            bail!(
                "--viewer-assets {}: {IGV_JS} is not igv.js ({hint})",
                dir.display()
            );
        }
        let igv_js = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        Ok(Viewer {
            igv_js: Bytes::from(igv_js),
        })
    }
}

fn response(body: Bytes, content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::Full(Some(body)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Answers `/viewer…` paths when the viewer is on; `None` for any other path.
pub async fn route(
    state: &State,
    viewer: &Viewer,
    path: &str,
    authorize: impl FnOnce() -> Result<()>,
) -> Option<Result<Response<Body>>> {
    let rest = path.strip_prefix("/viewer")?;
    Some(match rest {
        // Relative URLs in the page need the trailing slash.
        "" => {
            let mut r = Response::new(Body::Full(None));
            *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("viewer/"));
            Ok(r)
        }
        "/" | "/index.html" => Ok(response(
            Bytes::from_static(PAGE.as_bytes()),
            "text/html; charset=utf-8",
            "no-cache",
        )),
        "/igv.min.js" => Ok(response(
            viewer.igv_js.clone(),
            "text/javascript; charset=utf-8",
            "public, max-age=3600",
        )),
        _ => match rest.strip_prefix("/chromsizes/") {
            Some(_) => chrom_sizes(state, path, authorize).await,
            None => return None,
        },
    })
}

/// The dataset's references as igv.js' chrom.sizes text (`name\tlength` a line), under the
/// same id rules and tokens as its tickets.
async fn chrom_sizes(
    state: &State,
    path: &str,
    authorize: impl FnOnce() -> Result<()>,
) -> Result<Response<Body>> {
    authorize()?;
    let id = super::router::id_of(path, "/viewer/chromsizes/")?;
    let location = state.resolver.resolve(&id)?;
    let ds = state.dataset(&id, location).await?;
    let mut text = String::new();
    for r in &ds.header().references {
        text.push_str(&format!("{}\t{}\n", r.name, r.length));
    }
    Ok(response(
        Bytes::from(text),
        "text/plain; charset=utf-8",
        "no-cache",
    ))
}
