//! `_metadata.json` and `_header.json` of upstream datasets.
//!
//! Both are parsed as untyped JSON because the producers disagree on types: Go writes header
//! values as strings (`"LN": "51304566"`), Python as numbers; Go writes `"chunks": null` and
//! `"CO": null` where Python omits keys; timestamps may lack a zone. None of the timestamps are
//! needed, so they are not parsed at all.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{LegacyChunk, LegacyDataset, SUPPORTED_VERSIONS};
use crate::{Error, Header, Result};

const META: &str = "_metadata.json";
const HEADER: &str = "_header.json";

/// Opens an upstream dataset from the bytes of its `_metadata.json` and `_header.json`.
///
/// * `version` must be `0.1.0`, `0.1.0-poc` or `0.2.0`.
/// * Chunks are de-duplicated by `path`, keeping the **last** entry: `bams3-go --stdin` could
///   list one path several times (upstream bug B1) and wrote the files in the same order as the
///   entries, so the last entry describes the bytes on disk.
/// * Chunks are sorted by reference (the order of `SQ` in `_header.json`), then start, then
///   path; the unmapped chunk (`reference: "unmapped"`) comes last. Order in the file was random.
/// * The SAM header text is rebuilt from `_header.json`: `@HD`, then `@SQ`, `@RG`, `@PG` in
///   array order, then `@CO`. Within a line the tags SAM expects first come first (`VN` then
///   `SO` for `@HD`, `SN` then `LN` for `@SQ`, `ID` for `@RG`/`@PG`), then the rest in
///   alphabetical order (the Go writer had already sorted them). `@SQ` entries without `SN`
///   are skipped, as upstream did when numbering references.
/// * `one_based` is `source.file == "stdin"`. For such datasets chunk bounds were computed on
///   1-based positions, so a chunk holding 1-based starts `[s, e)` holds 0-based starts
///   `[s-1, e-1)`: `start = max(s-1, 0)` and `end = max(e-1, 0)` (the first chunk also held POS
///   0, "no position", which becomes -1 and so sits just before its new start).
pub fn open(metadata_json: &[u8], header_json: &[u8]) -> Result<LegacyDataset> {
    let meta: Value = serde_json::from_slice(metadata_json)
        .map_err(|e| Error::corrupt(META, format!("not JSON: {e}")))?;
    let meta = meta
        .as_object()
        .ok_or_else(|| Error::corrupt(META, "not a JSON object"))?;
    if let Some(format) = meta.get("format")
        && format.as_str() != Some("bams3")
    {
        return Err(Error::corrupt(
            META,
            format!("format is {format}, not \"bams3\""),
        ));
    }
    let version = meta
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::corrupt(META, "no version string"))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(Error::corrupt(
            META,
            format!(
                "version {version} is not a legacy version this reader knows ({})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    let one_based = meta
        .get("source")
        .and_then(|s| s.get("file"))
        .and_then(Value::as_str)
        == Some("stdin");
    // Go writes {"algorithm": "..."}; accept a bare string too.
    let compression = match meta.get("compression") {
        Some(Value::Object(o)) => o.get("algorithm").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
    .unwrap_or("none")
    .to_string();

    let (header, header_losses) = parse_header(header_json)?;

    let entries: &[Value] = match meta.get("chunks") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Error::corrupt(META, "chunks is not an array")),
    };
    let mut by_path: HashMap<String, LegacyChunk> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let chunk = parse_chunk(entry, i, &compression, &header, one_based)?;
        by_path.insert(chunk.path.clone(), chunk);
    }
    let duplicates = entries.len() - by_path.len();
    let mut chunks: Vec<LegacyChunk> = by_path.into_values().collect();
    // `ref_id < 0` sorts the unmapped chunk (-1) after every reference.
    chunks.sort_by(|a, b| {
        (a.ref_id < 0, a.ref_id, a.start, &a.path).cmp(&(b.ref_id < 0, b.ref_id, b.start, &b.path))
    });

    let mut ds = LegacyDataset {
        version: version.to_string(),
        header,
        chunks,
        one_based,
        compression,
        losses: Vec::new(),
    };
    ds.losses = losses(&ds, duplicates, header_losses);
    Ok(ds)
}

fn parse_chunk(
    entry: &Value,
    i: usize,
    default_compression: &str,
    header: &Header,
    one_based: bool,
) -> Result<LegacyChunk> {
    let what = format!("{META} chunks[{i}]");
    let bad = |d: &str| Error::corrupt(&what, d.to_string());
    let o = entry.as_object().ok_or_else(|| bad("not an object"))?;
    let path = o
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no path"))?;
    // The path is joined to the dataset root by callers: keep it inside the dataset.
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(bad("path is empty, absolute or leaves the dataset"));
    }
    let reference = o
        .get("reference")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no reference"))?;
    let int = |key: &str| -> Result<i64> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| bad(&format!("{key} is not an integer"))),
        }
    };
    let (mut start, mut end) = (int("start")?, int("end")?);
    if start < 0 || end < 0 {
        return Err(bad("negative start or end"));
    }
    let reads = o
        .get("reads")
        .map_or(Some(0), Value::as_u64)
        .ok_or_else(|| bad("reads is not a non-negative integer"))?;
    // A reference literally named "unmapped" shared data/unmapped.chunk upstream (bug B4), so
    // the name always means the unmapped chunk; its records carry their own reference ids.
    let ref_id = if reference == "unmapped" {
        -1
    } else {
        let id = header
            .reference_index(reference)
            .ok_or_else(|| bad(&format!("reference {reference} is not in {HEADER}")))?;
        i32::try_from(id).map_err(|_| bad("too many references"))?
    };
    if one_based {
        start = (start - 1).max(0);
        end = (end - 1).max(0);
    }
    let compression = o
        .get("compression")
        .and_then(Value::as_str)
        .unwrap_or(default_compression)
        .to_string();
    let checksum = o
        .get("checksum")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(LegacyChunk {
        path: path.to_string(),
        reference: reference.to_string(),
        ref_id,
        start,
        end,
        reads,
        compression,
        checksum,
    })
}

/// Builds the SAM header from `_header.json`; also returns header-specific losses.
fn parse_header(bytes: &[u8]) -> Result<(Header, Vec<String>)> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(HEADER, format!("not JSON: {e}")))?;
    let o = v
        .as_object()
        .ok_or_else(|| Error::corrupt(HEADER, "not a JSON object"))?;
    let mut text = String::new();
    let mut losses = Vec::new();

    if let Some(hd) = object(o.get("HD"), "HD")?
        && !hd.is_empty()
    {
        text.push_str(&line("@HD", hd, &["VN", "SO", "GO", "SS"], "HD")?);
    }
    let mut dropped_sq = 0;
    for sq in array_of_objects(o.get("SQ"), "SQ")? {
        if !sq.contains_key("SN") {
            dropped_sq += 1;
            continue;
        }
        text.push_str(&line("@SQ", sq, &["SN", "LN"], "SQ")?);
    }
    if dropped_sq > 0 {
        losses.push(format!(
            "{dropped_sq} @SQ header entries without SN were dropped"
        ));
    }
    for rg in array_of_objects(o.get("RG"), "RG")? {
        text.push_str(&line("@RG", rg, &["ID"], "RG")?);
    }
    for pg in array_of_objects(o.get("PG"), "PG")? {
        text.push_str(&line("@PG", pg, &["ID"], "PG")?);
    }
    match o.get("CO") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for c in a {
                let c = c
                    .as_str()
                    .ok_or_else(|| Error::corrupt(HEADER, "CO entry is not a string"))?;
                if c.contains(['\n', '\r']) {
                    return Err(Error::corrupt(HEADER, "CO entry contains a line break"));
                }
                text.push_str("@CO\t");
                text.push_str(c);
                text.push('\n');
            }
        }
        Some(_) => return Err(Error::corrupt(HEADER, "CO is not an array")),
    }
    let header = Header::from_sam_text(&text)
        .map_err(|e| Error::corrupt(HEADER, format!("rebuilt header is not valid SAM: {e}")))?;
    Ok((header, losses))
}

fn object<'a>(v: Option<&'a Value>, key: &str) -> Result<Option<&'a Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Error::corrupt(HEADER, format!("{key} is not an object"))),
    }
}

fn array_of_objects<'a>(v: Option<&'a Value>, key: &str) -> Result<Vec<&'a Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_object()
                    .ok_or_else(|| Error::corrupt(HEADER, format!("{key} entry is not an object")))
            })
            .collect(),
        Some(_) => Err(Error::corrupt(HEADER, format!("{key} is not an array"))),
    }
}

/// One header line: `first` keys in that order, then the others alphabetically.
fn line(kind: &str, fields: &Map<String, Value>, first: &[&str], key: &str) -> Result<String> {
    let mut out = kind.to_string();
    let mut rest: Vec<&String> = fields
        .keys()
        .filter(|k| !first.contains(&k.as_str()))
        .collect();
    rest.sort();
    let ordered = first
        .iter()
        .filter_map(|k| fields.get_key_value(*k))
        .chain(rest.into_iter().filter_map(|k| fields.get_key_value(k)));
    for (tag, value) in ordered {
        let value = match value {
            Value::String(s) => s.clone(),
            // Python POC wrote LN (and other numeric fields) as JSON numbers.
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Error::corrupt(
                    HEADER,
                    format!("{key} {tag} is not a string or number"),
                ));
            }
        };
        if tag.is_empty()
            || tag.contains(['\t', '\n', '\r', ':'])
            || value.contains(['\t', '\n', '\r'])
        {
            return Err(Error::corrupt(
                HEADER,
                format!("{key} field {tag:?} cannot be written as SAM"),
            ));
        }
        out.push('\t');
        out.push_str(tag);
        out.push(':');
        out.push_str(&value);
    }
    out.push('\n');
    Ok(out)
}

/// Plain-language list of what the dataset lost relative to its source alignments.
fn losses(ds: &LegacyDataset, duplicates: usize, header_losses: Vec<String>) -> Vec<String> {
    let mut l = vec![
        "mate information was not stored: RNEXT, PNEXT and TLEN read back as *, 0 and 0"
            .to_string(),
        "the SAM header was reconstructed from _header.json: header line order and any \
         non-@HD/@SQ/@RG/@PG/@CO lines are lost"
            .to_string(),
        "the original record order is lost: records are regrouped by chunk".to_string(),
    ];
    let poc = ds.version == "0.1.0-poc";
    if poc {
        l.push("no tags were stored (Python proof of concept)".to_string());
        l.push("unmapped reads lost their position (stored as -1)".to_string());
        l.push("@CO header lines were not stored".to_string());
        l.push(
            "chunk checksums cover re-serialized JSON, not the files, so they cannot be verified"
                .to_string(),
        );
    } else {
        l.push(
            "tag types were lost: every tag reads back as text (type Z); numbers are decimal \
             text, H tags were hex-encoded a second time, B arrays are text"
                .to_string(),
        );
        l.push("tag order was not kept, and a repeated tag kept only its last value".to_string());
    }
    if !ds.one_based && !poc {
        l.push(
            "header: only HD VN/SO, SQ SN/LN, RG ID and PG PN/VN were kept; @PG ID is the \
             program's index, not its original ID"
                .to_string(),
        );
    }
    if ds.version == "0.2.0" {
        l.push(
            "bases other than A, C, G, T and N (IUPAC codes, '=', '.') read back as N; lower \
             case became upper case"
                .to_string(),
        );
        l.push(
            "reads of 65,536 bases or more were stored with a wrapped 16-bit length and cannot \
             be decoded"
                .to_string(),
        );
    } else if !poc {
        l.push(
            "qualities of Phred 95 or more could not be stored in JSON and read back as 93"
                .to_string(),
        );
    }
    if ds.one_based {
        l.push(
            "positions were stored 1-based (converted from SAM on stdin); they are converted \
             back to 0-based"
                .to_string(),
        );
        l.push(
            "records whose RNAME was not in @SQ were stored as unmapped; their RNAME is lost"
                .to_string(),
        );
        if ds.version == "0.2.0" {
            l.push("no CIGARs were stored (binary dataset converted from stdin): every CIGAR reads back as *".to_string());
        }
    }
    if duplicates > 0 {
        l.push(format!(
            "{duplicates} duplicate chunk entries in _metadata.json were ignored; reads the \
             upstream tool overwrote in those chunks are lost"
        ));
    }
    l.extend(header_losses);
    l
}
