//! The `--viewer` page: igv.js reading a dataset region through this server's htsget endpoint.

use super::Body;
use hyper::Response;

/// The page or asset for `path`, if it is one of the viewer's.
pub fn serve(_path: &str) -> Option<Response<Body>> {
    None
}
