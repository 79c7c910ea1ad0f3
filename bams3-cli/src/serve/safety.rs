//! What an id may name, and who may ask: ids resolve to datasets under the configured root or
//! in the id map, never to arbitrary paths; optional bearer tokens.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

use super::error::{HtsgetError, Kind, Result};

/// Where ids are looked up.
pub struct Resolver {
    /// A local directory (canonical) or an `s3://bucket/prefix` location (no trailing `/`).
    root: Option<Root>,
    /// Ids named one by one (`--map ids.json`): id → dataset location. Trusted configuration.
    map: HashMap<String, String>,
}

enum Root {
    Local(PathBuf),
    S3(String),
}

impl Resolver {
    /// A resolver over `root` (a directory or `s3://...`) and the id map in `map_file`.
    pub fn new(root: Option<&str>, map_file: Option<&Path>) -> anyhow::Result<Resolver> {
        let root = match root {
            None => None,
            Some(r) if r.starts_with("s3://") => Some(Root::S3(r.trim_end_matches('/').into())),
            Some(r) => {
                let p = std::fs::canonicalize(r).with_context(|| format!("--root {r}"))?;
                if !p.is_dir() {
                    bail!("--root {r}: not a directory");
                }
                Some(Root::Local(p))
            }
        };
        let map = match map_file {
            None => HashMap::new(),
            Some(f) => {
                let text =
                    std::fs::read_to_string(f).with_context(|| format!("--map {}", f.display()))?;
                serde_json::from_str::<HashMap<String, String>>(&text).with_context(|| {
                    format!(
                        "--map {}: expected a JSON object of id → location",
                        f.display()
                    )
                })?
            }
        };
        if root.is_none() && map.is_empty() {
            bail!("nothing to serve: give --root DIR, --root s3://bucket/prefix or --map ids.json");
        }
        Ok(Resolver { root, map })
    }

    /// The dataset location an id names, or `NotFound` (also for ids that try to leave the
    /// root: a client learns nothing of what lies outside it).
    pub fn resolve(&self, id: &str) -> Result<String> {
        let not_found = || HtsgetError::new(Kind::NotFound, format!("no dataset '{id}'"));
        if let Some(loc) = self.map.get(id) {
            return Ok(loc.clone());
        }
        if !is_relative_id(id) {
            return Err(not_found());
        }
        match &self.root {
            None => Err(not_found()),
            Some(Root::S3(prefix)) => Ok(format!("{prefix}/{id}")),
            Some(Root::Local(root)) => {
                // Symlinks are followed, and the target must still lie under the root.
                let real = std::fs::canonicalize(root.join(id)).map_err(|_| not_found())?;
                if !real.starts_with(root) || !real.is_dir() {
                    return Err(not_found());
                }
                real.to_str().map(str::to_string).ok_or_else(not_found)
            }
        }
    }
}

/// Whether `id` is a plain relative path: non-empty segments, none `.` or `..`, no absolute
/// start, no backslash or control character.
fn is_relative_id(id: &str) -> bool {
    if id.is_empty()
        || id.len() > 1024
        || id.starts_with('/')
        || id.contains('\\')
        || id.chars().any(|c| c.is_control())
    {
        return false;
    }
    id.split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..")
        && Path::new(id)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The bearer tokens a request may present (`--token-file`: one a line; blank lines and `#`
/// comments ignored).
pub struct Tokens(Vec<String>);

impl Tokens {
    /// Reads the token file.
    pub fn load(path: &Path) -> anyhow::Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}", path.display()))?;
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if tokens.is_empty() {
            bail!("--token-file {}: no token in it", path.display());
        }
        Ok(Tokens(tokens))
    }

    /// Checks an `Authorization` header value: missing is `PermissionDenied` (authorization is
    /// required), present but wrong is `InvalidAuthentication`, as the specification's table has it.
    pub fn check(&self, header: Option<&str>) -> Result<()> {
        let Some(h) = header else {
            return Err(HtsgetError::new(
                Kind::PermissionDenied,
                "authorization required: send 'Authorization: Bearer TOKEN'",
            ));
        };
        let given = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim);
        match given {
            Some(t)
                if self
                    .0
                    .iter()
                    .any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) =>
            {
                Ok(())
            }
            _ => Err(HtsgetError::new(
                Kind::InvalidAuthentication,
                "the bearer token is not valid",
            )),
        }
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::is_relative_id;

    #[test]
    fn ids_that_leave_the_root_are_refused() {
        for bad in [
            "", "/etc", "..", "a/../b", "./a", "a//b", "a/", "a\\b", "a\0b", "../x",
        ] {
            assert!(!is_relative_id(bad), "{bad:?}");
        }
        for good in ["a", "a.bams3", "dir/sample.bams3", "..a", "a..b"] {
            assert!(is_relative_id(good), "{good:?}");
        }
    }
}
