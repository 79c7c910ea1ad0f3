//! Tickets: what a request asks for (GET parameters or a POST body), checked against the
//! dataset's header, and the JSON answer: the header and the EOF block as `data:` URIs, and
//! between them record URLs on this server, several for a large region.

use std::collections::HashSet;

use bams3_core::dataset::Dataset;
use bams3_core::region::Region;
use serde_json::{json, Value};

use super::error::{HtsgetError, Kind, Result};
use super::records::{BlockCompressor, Piece, Shape};

/// One region as asked: a reference name (`*` for unplaced reads) or MD5, and 0-based
/// half-open bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// `referenceName`, or the `referenceMD5` (lower-case hex) when `by_md5`.
    pub name: String,
    /// The reference was named by the MD5 of its sequence (`@SQ M5`), as the GA4GH client's
    /// `--reference-md5` sends it.
    pub by_md5: bool,
    /// `start`.
    pub start: Option<u32>,
    /// `end`.
    pub end: Option<u32>,
}

/// A ticket request.
#[derive(Debug, Clone, Default)]
pub struct TicketRequest {
    /// `class=header`: the header alone.
    pub header_only: bool,
    /// The regions; empty for the whole dataset.
    pub regions: Vec<Asked>,
    /// `fields`, `tags`, `notags` as given (comma-separated), passed on to the record URLs.
    pub fields: Option<String>,
    /// `tags`.
    pub tags: Option<String>,
    /// `notags`.
    pub notags: Option<String>,
}

fn invalid(msg: impl Into<String>) -> HtsgetError {
    HtsgetError::new(Kind::InvalidInput, msg)
}

fn check_format(f: Option<&str>) -> Result<()> {
    match f {
        None | Some("BAM") => Ok(()),
        Some(other) => Err(HtsgetError::new(
            Kind::UnsupportedFormat,
            format!("format '{other}' is not served: only BAM"),
        )),
    }
}

fn check_class(c: Option<&str>) -> Result<bool> {
    match c {
        None => Ok(false),
        Some("header") => Ok(true),
        Some(other) => Err(invalid(format!(
            "class '{other}': only 'header' is defined"
        ))),
    }
}

/// The reference of a region: `referenceName` or `referenceMD5` (32 hex digits), not both.
fn reference(name: Option<&str>, md5: Option<&str>) -> Result<Option<(String, bool)>> {
    match (name, md5) {
        (Some(_), Some(_)) => Err(invalid("give referenceName or referenceMD5, not both")),
        (Some(n), None) => Ok(Some((n.to_string(), false))),
        (None, Some(m)) if m.len() == 32 && m.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some((m.to_ascii_lowercase(), true)))
        }
        (None, Some(m)) => Err(invalid(format!(
            "referenceMD5 '{m}' is not 32 hexadecimal digits"
        ))),
        (None, None) => Ok(None),
    }
}

fn parse_u32(what: &str, v: &str) -> Result<u32> {
    v.parse::<u32>()
        .map_err(|_| invalid(format!("{what} '{v}' is not a 32-bit unsigned integer")))
}

impl TicketRequest {
    /// From the query parameters of `GET /reads/{id}`.
    pub fn from_query(params: &[(String, String)]) -> Result<TicketRequest> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        check_format(get("format"))?;
        let header_only = check_class(get("class"))?;
        let start = get("start").map(|v| parse_u32("start", v)).transpose()?;
        let end = get("end").map(|v| parse_u32("end", v)).transpose()?;
        let regions = match reference(get("referenceName"), get("referenceMD5"))? {
            Some((name, by_md5)) => vec![Asked {
                name,
                by_md5,
                start,
                end,
            }],
            None if start.is_some() || end.is_some() => {
                return Err(invalid("start and end need a referenceName"));
            }
            None => Vec::new(),
        };
        let req = TicketRequest {
            header_only,
            regions,
            fields: get("fields").map(str::to_string),
            tags: get("tags").map(str::to_string),
            notags: get("notags").map(str::to_string),
        };
        req.check()?;
        Ok(req)
    }

    /// From the JSON body of `POST /reads/{id}`.
    pub fn from_json(body: &[u8]) -> Result<TicketRequest> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("the request body is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("the request body must be a JSON object"))?;
        let text = |k: &str| -> Result<Option<&str>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(invalid(format!("'{k}' must be a string"))),
            }
        };
        check_format(text("format")?)?;
        let header_only = check_class(text("class")?)?;
        let list = |k: &str| -> Result<Option<String>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| invalid(format!("'{k}' must be a list of strings")))
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(invalid(format!("'{k}' must be a list of strings"))),
            }
        };
        let num = |r: &serde_json::Map<String, Value>, k: &str| -> Result<Option<u32>> {
            match r.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| invalid(format!("'{k}' must be a 32-bit unsigned integer"))),
                Some(_) => Err(invalid(format!("'{k}' must be a number"))),
            }
        };
        let mut regions = Vec::new();
        match obj.get("regions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                if a.is_empty() {
                    return Err(invalid("'regions' is empty: leave it out for every read"));
                }
                for r in a {
                    let r = r
                        .as_object()
                        .ok_or_else(|| invalid("each region must be an object"))?;
                    let field = |k: &str| match r.get(k) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.as_str())),
                        Some(_) => Err(invalid(format!("'{k}' must be a string"))),
                    };
                    let (name, by_md5) =
                        reference(field("referenceName")?, field("referenceMD5")?)?.ok_or_else(
                            || invalid("each region needs a referenceName (or referenceMD5)"),
                        )?;
                    regions.push(Asked {
                        name,
                        by_md5,
                        start: num(r, "start")?,
                        end: num(r, "end")?,
                    });
                }
            }
            Some(_) => return Err(invalid("'regions' must be a list")),
        }
        let req = TicketRequest {
            header_only,
            regions,
            fields: list("fields")?,
            tags: list("tags")?,
            notags: list("notags")?,
        };
        req.check()?;
        Ok(req)
    }

    fn check(&self) -> Result<()> {
        for r in &self.regions {
            if let (Some(s), Some(e)) = (r.start, r.end) {
                if s > e {
                    return Err(HtsgetError::new(
                        Kind::InvalidRange,
                        format!("start {s} is greater than end {e}"),
                    ));
                }
            }
            if r.name == "*" && !r.by_md5 && (r.start.is_some() || r.end.is_some()) {
                return Err(invalid("referenceName '*' takes no start or end"));
            }
        }
        parse_shape(
            self.fields.as_deref(),
            self.tags.as_deref(),
            self.notags.as_deref(),
        )?;
        Ok(())
    }
}

/// The record transformation `fields`, `tags` and `notags` ask for.
pub fn parse_shape(
    fields: Option<&str>,
    tags: Option<&str>,
    notags: Option<&str>,
) -> Result<Shape> {
    let mut shape = Shape::default();
    if let Some(f) = fields {
        const ALL: [&str; 11] = [
            "QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR", "RNEXT", "PNEXT", "TLEN", "SEQ",
            "QUAL",
        ];
        let want: HashSet<&str> = f.split(',').filter(|s| !s.is_empty()).collect();
        if let Some(bad) = want.iter().find(|w| !ALL.contains(w)) {
            return Err(invalid(format!(
                "unknown field '{bad}' (fields are {})",
                ALL.join(",")
            )));
        }
        let drop = |n: &str| !want.contains(n);
        shape.drop_qname = drop("QNAME");
        shape.drop_mapq = drop("MAPQ");
        shape.drop_rnext = drop("RNEXT");
        shape.drop_pnext = drop("PNEXT");
        shape.drop_tlen = drop("TLEN");
        shape.drop_seq = drop("SEQ");
        shape.drop_qual = drop("QUAL");
    }
    let tag_set = |what: &str, s: &str| -> Result<HashSet<[u8; 2]>> {
        s.split(',')
            .filter(|t| !t.is_empty())
            .map(|t| match t.as_bytes() {
                &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphanumeric() => Ok([a, b]),
                _ => Err(invalid(format!("{what}: '{t}' is not a two-character tag"))),
            })
            .collect()
    };
    shape.tags = tags.map(|t| tag_set("tags", t)).transpose()?;
    if let Some(n) = notags {
        shape.notags = tag_set("notags", n)?;
    }
    if let Some(t) = &shape.tags {
        if let Some(both) = t.intersection(&shape.notags).next() {
            return Err(invalid(format!(
                "tag '{}' is in both tags and notags",
                String::from_utf8_lossy(both)
            )));
        }
    }
    Ok(shape)
}

/// The regions a request asks for, resolved against the dataset's header; the whole dataset
/// (every reference from its first record, then the unplaced reads) when it names none.
pub fn resolve(ds: &Dataset, req: &TicketRequest) -> Result<Vec<Region>> {
    let header = ds.header();
    if req.regions.is_empty() {
        let mut all: Vec<Region> = (0..header.references.len())
            // From -1: records placed on a reference without a position belong to it too.
            .map(|ref_id| Region::Span {
                ref_id,
                beg: -1,
                end: i64::MAX,
            })
            .collect();
        all.push(Region::Unplaced);
        return Ok(all);
    }
    req.regions
        .iter()
        .map(|a| {
            let ref_id = if a.by_md5 {
                reference_by_md5(header, &a.name).ok_or_else(|| {
                    HtsgetError::new(
                        Kind::NotFound,
                        format!("no reference with MD5 {} (@SQ M5)", a.name),
                    )
                })?
            } else if a.name == "*" {
                return Ok(Region::Unplaced);
            } else {
                header.reference_index(&a.name).ok_or_else(|| {
                    HtsgetError::new(Kind::NotFound, format!("no reference '{}'", a.name))
                })?
            };
            Ok(Region::Span {
                ref_id,
                beg: a.start.map_or(0, i64::from),
                end: a.end.map_or(i64::MAX, i64::from),
            })
        })
        .collect()
}

/// The reference whose `@SQ` line has `M5:md5` (compared ignoring case, as the SAM
/// specification allows either).
fn reference_by_md5(header: &bams3_core::Header, md5: &str) -> Option<usize> {
    header
        .text
        .lines()
        .filter(|l| l.starts_with("@SQ\t"))
        .find(|l| {
            l.split('\t').any(|f| {
                f.strip_prefix("M5:")
                    .is_some_and(|m| m.eq_ignore_ascii_case(md5))
            })
        })
        .and_then(|l| l.split('\t').find_map(|f| f.strip_prefix("SN:")))
        .and_then(|name| header.reference_index(name))
}

/// The number of reference bases a region spans (its reference's length for an open end; 0 for
/// the unplaced reads).
pub fn span_bases(ds: &Dataset, r: &Region) -> u64 {
    match *r {
        Region::Span { ref_id, beg, end } => {
            let len = ds.header().references[ref_id].length as i64;
            (end.min(len) - beg.max(0)).max(0) as u64
        }
        Region::Unplaced => 0,
    }
}

/// `region` cut into pieces of about `piece_bytes` BAM-encoded bytes each, at chunk starts, by
/// the index; none when no chunk can hold a record of it.
pub fn pieces(ds: &Dataset, region: Region, piece_bytes: u64) -> Result<Vec<Piece>> {
    let (ref_id, beg, end) = match region {
        Region::Unplaced => {
            let any = ds
                .chunks(None, None)
                .map_err(|e| HtsgetError::from_core(&e))?
                .iter()
                .any(|c| c.count > 0);
            return Ok(if any {
                vec![Piece { region, from: None }]
            } else {
                Vec::new()
            });
        }
        Region::Span { ref_id, beg, end } => (ref_id, beg, end),
    };
    if beg >= end {
        return Ok(Vec::new());
    }
    let mut chunks = ds
        .chunks(Some(ref_id), Some((beg, end)))
        .map_err(|e| HtsgetError::from_core(&e))?;
    chunks.retain(|c| c.count > 0);
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    chunks.sort_by_key(|c| c.first_pos);
    // Cut points: chunk starts inside the region once the bytes since the last cut pass the
    // target. Every record goes to the piece holding its start.
    let mut cuts: Vec<i64> = Vec::new();
    let mut acc = 0u64;
    for c in &chunks {
        let last = cuts.last().copied().unwrap_or(beg);
        if acc >= piece_bytes && c.first_pos > last && c.first_pos > beg && c.first_pos < end {
            cuts.push(c.first_pos);
            acc = 0;
        }
        acc += c.raw_bytes;
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut lo = beg;
    for (i, &cut) in cuts.iter().chain(std::iter::once(&end)).enumerate() {
        out.push(Piece {
            region: Region::Span {
                ref_id,
                beg: lo,
                end: cut,
            },
            from: (i > 0).then_some(lo),
        });
        lo = cut;
    }
    Ok(out)
}

/// Standard base64 (RFC 4648, with padding), as `data:` URIs carry it.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        s.push(A[(n >> 18) as usize & 63] as char);
        s.push(A[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

fn data_uri(bytes: &[u8]) -> String {
    format!("data:application/vnd.ga4gh.bam;base64,{}", base64(bytes))
}

/// The query string of a record URL for `piece`, with the request's shape parameters.
pub fn piece_query(ds: &Dataset, piece: &Piece, req: &TicketRequest) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    match piece.region {
        Region::Unplaced => {
            q.append_pair("referenceName", "*");
        }
        Region::Span { ref_id, beg, end } => {
            q.append_pair("referenceName", &ds.header().references[ref_id].name);
            q.append_pair("start", &beg.to_string());
            if end != i64::MAX {
                q.append_pair("end", &end.to_string());
            }
        }
    }
    if let Some(f) = piece.from {
        q.append_pair("from", &f.to_string());
    }
    for (k, v) in [
        ("fields", &req.fields),
        ("tags", &req.tags),
        ("notags", &req.notags),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// The ticket JSON: header, record URLs (`data_url` + each piece's query), EOF.
pub fn ticket(
    ds: &Dataset,
    req: &TicketRequest,
    pieces: &[Piece],
    data_url: &str,
    headers: Option<&Value>,
    level: u8,
) -> Value {
    let header =
        BlockCompressor::new(level).compress(&bams3_core::bamstream::bam_header(ds.header()));
    let mut urls = vec![json!({"url": data_uri(&header), "class": "header"})];
    if !req.header_only {
        for p in pieces {
            let mut u =
                json!({"url": format!("{data_url}?{}", piece_query(ds, p, req)), "class": "body"});
            if let Some(h) = headers {
                u["headers"] = h.clone();
            }
            urls.push(u);
        }
    }
    let class = if req.header_only { "header" } else { "body" };
    urls.push(json!({"url": data_uri(&bams3_core::bam::BGZF_EOF), "class": class}));
    json!({"htsget": {"format": "BAM", "urls": urls}})
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
