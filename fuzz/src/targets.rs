//! One function per fuzz target: untrusted bytes in, through the library's public entry points,
//! nothing out. A target may return errors freely; it must never panic, hang or allocate
//! without bound (libFuzzer's `-rss_limit_mb` and `-timeout` catch the last two).
//!
//! Checksums stand between a fuzzer and most of a decoder (it cannot guess a CRC-32), so the
//! chunk targets rewrite them to match before decoding: what lies behind the checks is what
//! must survive hostile bytes, and the checks themselves are tested on their own.
//!
//! Decoded lengths are capped at [`MAX_FUZZ_LEN`]: the format lets a few stored bytes stand for
//! up to 4 GiB of a stream (a run of one quality compresses to almost nothing), so decoding a
//! larger claim takes seconds by design; the library caps it (`MAX_STREAM_LEN`), and what the
//! fuzzer looks for is what goes wrong below that.
//!
//! This file is compiled twice: by the fuzz crate (`bams3_fuzz::targets`) and, by path, by
//! bams3-ffi/tests/fuzz_regressions.rs, which replays `fuzz/corpus` and `fuzz/regressions`.

use std::collections::BTreeMap;
use std::ffi::{c_char, CString};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use bams3_core::chunk::{
    BlockDirectory, ChunkData, ChunkHeader, Fields, StreamId, StreamInfo, CODEC_BLOCKED,
};
use bams3_core::codec::rans;
use bams3_core::dataset::{Dataset, DatasetWriter, RecordFilter, WriteOptions};
use bams3_core::region::Region;
use bams3_core::storage::{Blob, Storage};
use bams3_core::{bam, legacy, sam, Error, Header, Result};

/// Largest decoded length a chunk or stream input may claim (see the module comment).
pub const MAX_FUZZ_LEN: u64 = 16 << 20;

/// A fuzz target: bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by name, for the regression test and bench/fuzz.sh.
pub const ALL: &[(&str, Target)] = &[
    ("chunk_header", chunk_header),
    ("chunk", chunk),
    ("stream", stream),
    ("rans", rans),
    ("block_directory", block_directory),
    ("index", index),
    ("metadata", metadata),
    ("legacy", legacy),
    ("sam", sam),
    ("bam", bam),
    ("region", region),
    ("ffi_text", ffi_text),
];

/// The chunk header parser, checksum included.
pub fn chunk_header(data: &[u8]) {
    let _ = ChunkHeader::read(data, "fuzz");
}

/// A whole chunk object (checksums made to match), decoded for every reader's field set and
/// walked record by record.
pub fn chunk(data: &[u8]) {
    let mut bytes = data.to_vec();
    if !fix_chunk_checksums(&mut bytes) {
        return;
    }
    for fields in [Fields::ALL, Fields::COVERAGE, Fields::FLAGSTAT] {
        let Ok(chunk) = ChunkData::decode(&bytes, fields, "fuzz") else {
            continue;
        };
        if fields == Fields::ALL {
            for r in chunk.records() {
                if r.is_err() {
                    break;
                }
            }
        } else if fields == Fields::COVERAGE {
            for a in chunk.alignments() {
                if a.is_err() {
                    break;
                }
            }
        }
    }
}

/// Stored stream bytes through the stream decoders, as a remote reader decodes them (from the
/// index's stream table, without a chunk header): byte 0 picks the codec, bytes 1..5 the
/// decoded length the table claims, byte 5 the record count; every stream of the table points
/// at the same bytes, whose CRC is made to match.
pub fn stream(data: &[u8]) {
    let Some((&codec, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let Some((&n_records, stored)) = rest.split_first() else {
        return;
    };
    let streams: Vec<StreamInfo> = StreamId::ALL
        .iter()
        .map(|&id| StreamInfo {
            id: id as u8,
            codec: codec % 4,
            crc32: crc32(stored),
            offset: 0,
            stored_len: stored.len() as u64,
            raw_len: u32::from_le_bytes(*len) as u64 % MAX_FUZZ_LEN,
        })
        .collect();
    let n = n_records as usize;
    if let Ok(chunk) = ChunkData::from_span(&streams, n, stored, 0, Fields::ALL, "fuzz") {
        for r in chunk.records() {
            if r.is_err() {
                break;
            }
        }
    }
}

/// The order-1 rANS decoder, whole and through a shared table (as blocks use it).
pub fn rans(data: &[u8]) {
    let Some((len, src)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = u16::from_le_bytes(*len) as usize;
    let _ = rans::decode(src, len);
    if let Ok((table, used)) = rans::DecodeTable::parse(src) {
        let mut out = vec![0u8; len];
        let _ = table.decode_into(&src[used..], &mut out);
    }
}

/// The record-block directory of a blocked stream (codec 3): byte 0 sets the record count.
pub fn block_directory(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n_records = n as usize * 37;
    for raw_len in [0, 1 << 10, u64::MAX] {
        let _ = BlockDirectory::parse(rest, n_records, raw_len, "fuzz", "qual");
    }
}

/// `_index/spatial.json` (and the sections `_metadata.json` locates in it) of a real dataset
/// replaced by the input: opened, queried, validated.
pub fn index(data: &[u8]) {
    for with_sections in [true, false] {
        let store = sample_dataset();
        store.put(bams3_core::metadata::INDEX_KEY, data).ok();
        if !with_sections {
            strip_sections(&store);
        }
        read_all(store);
    }
}

/// `_metadata.json` of a real dataset replaced by the input: opened, queried, validated.
pub fn metadata(data: &[u8]) {
    let store = sample_dataset();
    store.put(bams3_core::metadata::METADATA_KEY, data).ok();
    read_all(store);
}

/// The upstream v0.1/v0.2 readers: the input is `_metadata.json`, `_header.json` and one chunk
/// object, separated by NUL bytes; the chunk is decoded as each chunk the metadata lists.
pub fn legacy(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(meta), Some(header)) = (parts.next(), parts.next()) else {
        return;
    };
    let chunk = parts.next().unwrap_or_default();
    let Ok(ds) = legacy::open(meta, header) else {
        return;
    };
    for c in ds.chunks.iter().take(4) {
        let _ = legacy::decode_chunk(chunk, c, &ds);
    }
}

/// SAM text: header and records through the reader, each record printed back.
pub fn sam(data: &[u8]) {
    let Ok(mut reader) = sam::Reader::new(data) else {
        return;
    };
    let header = reader.header().clone();
    print_all(&header, || reader.read_record());
}

/// Prints every record `next` gives as SAM, until the end or an error.
fn print_all(header: &Header, mut next: impl FnMut() -> Result<Option<bams3_core::Record>>) {
    let mut out = Vec::new();
    while let Ok(Some(rec)) = next() {
        out.clear();
        let _ = sam::format_record(&rec, header, &mut out);
        let _ = rec.aux_fields().count();
    }
}

/// A decompressed BAM stream: header and records through the reader, each record printed as
/// SAM. The input is also tried as BGZF.
pub fn bam(data: &[u8]) {
    let mut with_magic = bam::MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    bam_records(bam::Reader::new(&with_magic[..], "fuzz"));
    bam_records(bam::Reader::from_bgzf(
        std::io::Cursor::new(data.to_vec()),
        1,
        "fuzz",
    ));
}

fn bam_records<R: std::io::Read>(reader: Result<bam::Reader<R>>) {
    let Ok(mut reader) = reader else {
        return;
    };
    let header = reader.header().clone();
    print_all(&header, || reader.read_record());
}

/// Region strings, against references whose names contain the characters regions use.
pub fn region(data: &[u8]) {
    static HEADER: OnceLock<Header> = OnceLock::new();
    let header = HEADER.get_or_init(|| {
        Header::from_sam_text(
            "@SQ\tSN:chr1\tLN:1000\n@SQ\tSN:HLA:1\tLN:50\n@SQ\tSN:a-b:1-2\tLN:9\n\
             @SQ\tSN:{x}\tLN:2147483647\n",
        )
        .expect("valid header")
    });
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Region::parse(s, header);
}

/// The C ABI's text inputs: byte 0 picks the function (header text to `bams3_writer_open`, a
/// SAM line to `bams3_writer_add_sam`, record bytes to `bams3_writer_add_bam`, a region to
/// `bams3_reader_query`), the rest is the text.
pub fn ffi_text(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let dir = ffi_dir();
    unsafe {
        match which % 4 {
            0 => {
                let Ok(header) = CString::new(text) else {
                    return;
                };
                if let Some(w) = ffi_writer(&dir, header.as_ptr()) {
                    bams3::writer::bams3_writer_abort(w);
                    bams3::writer::bams3_writer_free(w);
                }
            }
            1 | 2 => {
                let header = CString::new(SAMPLE_HEADER).expect("no NUL");
                let Some(w) = ffi_writer(&dir, header.as_ptr()) else {
                    panic!("the sample header must open a writer");
                };
                if which % 4 == 1 {
                    let p = text.as_ptr() as *const c_char;
                    bams3::writer::bams3_writer_add_sam(w, p, text.len());
                } else {
                    bams3::writer::bams3_writer_add_bam(w, text.as_ptr(), text.len());
                }
                bams3::writer::bams3_writer_abort(w);
                bams3::writer::bams3_writer_free(w);
            }
            _ => {
                let Ok(region) = CString::new(text) else {
                    return;
                };
                let reader = ffi_sample_reader();
                let mut q = std::ptr::null_mut();
                let rc = bams3::reader::bams3_reader_query(
                    reader.0,
                    region.as_ptr(),
                    std::ptr::null(),
                    &mut q,
                );
                if rc == 0 {
                    let mut rec = std::ptr::null();
                    let mut n = 0;
                    while n < 1000 && bams3::query::bams3_query_next(q, &mut rec) == 1 {
                        n += 1;
                    }
                    bams3::query::bams3_query_free(q);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The chunk checksum (CRC-32, IEEE, reflected, as `crc32fast` computes it), written out here
/// so that the regression test needs no dependency the C ABI crate lacks.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            (0..8).fold(i as u32, |c, _| {
                if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
    });
    !bytes.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Makes the stream-table, block and header checksums of a chunk-shaped input match its bytes;
/// false when a stream claims more than [`MAX_FUZZ_LEN`] decoded bytes.
fn fix_chunk_checksums(bytes: &mut [u8]) -> bool {
    if bytes.len() < 16 || bytes[..4] != bams3_core::chunk::MAGIC {
        return true;
    }
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    let n_records = u32::from_le_bytes(bytes[8..12].try_into().expect("4")) as usize;
    let n_streams = u16::from_le_bytes([bytes[12], bytes[13]]) as usize;
    let len = ChunkHeader::encoded_len(n_streams);
    if bytes.len() < len {
        return true;
    }
    for i in 0..n_streams {
        let at = 16 + 32 * i;
        if u64_at(bytes, at + 24) > MAX_FUZZ_LEN {
            return false;
        }
        let range = |b: &[u8]| -> Option<Range<usize>> {
            let start = usize::try_from(u64_at(b, at + 8)).ok()?;
            let end = start.checked_add(usize::try_from(u64_at(b, at + 16)).ok()?)?;
            (end <= b.len()).then_some(start..end)
        };
        let Some(r) = range(bytes) else {
            continue;
        };
        if bytes[at + 1] == CODEC_BLOCKED {
            fix_block_checksums(bytes, r.clone(), n_records, u64_at(bytes, at + 24));
        }
        let crc = crc32(&bytes[r]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32(&bytes[..len - 4]);
    bytes[len - 4..len].copy_from_slice(&crc.to_le_bytes());
    true
}

/// Rewrites a block directory (at `dir` in the chunk) with its blocks' true checksums, when it
/// parses and re-encodes to the same length.
fn fix_block_checksums(bytes: &mut [u8], dir: Range<usize>, n_records: usize, raw_len: u64) {
    let Ok(mut d) = BlockDirectory::parse(&bytes[dir.clone()], n_records, raw_len, "fuzz", "x")
    else {
        return;
    };
    for b in &mut d.blocks {
        let (Ok(s), Ok(n)) = (usize::try_from(b.offset), usize::try_from(b.stored_len)) else {
            continue;
        };
        if let Some(stored) = s.checked_add(n).and_then(|e| bytes.get(s..e)) {
            b.crc32 = crc32(stored);
        }
    }
    let mut out = Vec::new();
    d.write(&mut out);
    if out.len() == dir.len() {
        bytes[dir].copy_from_slice(&out);
    }
}

/// An in-memory store: the dataset targets swap one object of a real dataset for the input.
#[derive(Default)]
struct Memory {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Memory {
    fn object(&self, key: &str) -> Result<Vec<u8>> {
        self.objects
            .lock()
            .expect("not poisoned")
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(key.to_string()))
    }
}

impl Storage for Memory {
    fn root(&self) -> String {
        "memory".into()
    }
    fn get(&self, key: &str) -> Result<Blob> {
        self.object(key).map(Blob::Owned)
    }
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let bytes = self.object(key)?;
        let end = range.end.min(bytes.len() as u64) as usize;
        let start = (range.start as usize).min(end);
        Ok(bytes[start..end].to_vec())
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let mut objects = self.objects.lock().expect("not poisoned");
        objects.insert(key.to_string(), data.to_vec());
        Ok(())
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let objects = self.objects.lock().expect("not poisoned");
        Ok(objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.objects.lock().expect("not poisoned").remove(key);
        Ok(())
    }
    fn head(&self, key: &str) -> Result<Option<u64>> {
        let objects = self.objects.lock().expect("not poisoned");
        Ok(objects.get(key).map(|b| b.len() as u64))
    }
}

/// The references of the sample dataset.
const SAMPLE_HEADER: &str = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:5000000\n\
                             @SQ\tSN:chr2\tLN:100000\n";

/// SAM lines of the sample dataset: enough reads in one bin for blocked streams, a second bin,
/// a second reference, unplaced reads, tags of several types.
fn sample_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..600u32 {
        let (chr, pos) = match i {
            0..=399 => ("chr1", 100 + i * 7),
            400..=499 => ("chr1", 1_500_000 + i),
            500..=579 => ("chr2", 50 + i),
            _ => ("*", 0),
        };
        let (flag, cigar, mapq) = if chr == "*" {
            (4, "*", 0)
        } else {
            (if i % 3 == 0 { 16 } else { 0 }, "20M2I18M", 60 - (i % 50))
        };
        let seq: String = (0..40)
            .map(|k| b"ACGT"[((i + k) % 4) as usize] as char)
            .collect();
        let qual: String = (0..40)
            .map(|k| (b'!' + ((i * 3 + k) % 40) as u8) as char)
            .collect();
        lines.push(format!(
            "r{i}\t{flag}\t{chr}\t{pos}\t{mapq}\t{cigar}\t*\t0\t0\t{seq}\t{qual}\tNM:i:{}\tXZ:Z:t{i}",
            i % 5
        ));
    }
    lines
}

/// A copy of a real dataset (written once by the library's writer) in a fresh memory store.
/// `n` records in mate pairs a few records apart, with tags: what the archive profile's pair
/// and tag codecs need to be used.
fn paired_records(n: usize) -> Vec<bams3_core::Record> {
    let header = Header::from_sam_text(SAMPLE_HEADER).expect("valid header");
    let names = sam::ReferenceNames::new(&header).expect("names");
    let mut lines: Vec<(u32, String)> = Vec::new();
    for j in 0..(n / 2) as u32 {
        let (p, m) = (100 + j * 9, 100 + j * 9 + 30);
        let seq: String = (0..40)
            .map(|k| b"ACGT"[((j * 7 + k) % 4) as usize] as char)
            .collect();
        let qual: String = (0..40)
            .map(|k| (b'!' + ((j + k) % 41) as u8) as char)
            .collect();
        for (flag, at, mate, tlen) in [(99, p, m, 70i64), (147, m, p, -70)] {
            lines.push((
                at,
                format!(
                    "X-{}\t{flag}\tchr1\t{at}\t60\t40M\t=\t{mate}\t{tlen}\t{seq}\t{qual}\tNM:i:{}\ttp:A:P\tXZ:Z:t{j}",
                    j * 7919 % 100_000,
                    j % 3
                ),
            ));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    lines
        .iter()
        .map(|(_, l)| sam::parse_record_with(l.as_bytes(), &names).expect("valid line"))
        .collect()
}

fn sample_dataset() -> Arc<Memory> {
    static OBJECTS: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    let objects = OBJECTS.get_or_init(|| {
        let store = Arc::new(Memory::default());
        let header = Header::from_sam_text(SAMPLE_HEADER).expect("valid header");
        let names = sam::ReferenceNames::new(&header).expect("names");
        let opts = WriteOptions {
            threads: 1,
            ..WriteOptions::default()
        };
        let mut w = DatasetWriter::create(store.clone(), header, opts).expect("writer");
        for line in sample_lines() {
            let rec = sam::parse_record_with(line.as_bytes(), &names).expect("valid line");
            w.push(rec).expect("push");
        }
        w.finish().expect("finish");
        let objects = store.objects.lock().expect("not poisoned").clone();
        objects
    });
    Arc::new(Memory {
        objects: Mutex::new(objects.clone()),
    })
}

/// Drops the index sections from `_metadata.json`, so that opening reads the whole index.
fn strip_sections(store: &Memory) {
    let key = bams3_core::metadata::METADATA_KEY;
    let Ok(meta) = store.object(key) else {
        return;
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&meta) else {
        return;
    };
    if let Some(o) = v.as_object_mut() {
        o.remove("index_sections");
    }
    let _ = store.put(key, &serde_json::to_vec(&v).expect("serialises"));
}

/// Opens the dataset in `store`, reads every record of every reference and the unplaced ones,
/// a region of each reference, and validates it.
fn read_all(store: Arc<Memory>) {
    let Ok(ds) = Dataset::open(store) else {
        return;
    };
    let n_refs = ds.header().references.len().min(8);
    let mut regions: Vec<Region> = (0..n_refs)
        .map(|ref_id| Region::Span {
            ref_id,
            beg: 1000,
            end: 1_600_000,
        })
        .collect();
    regions.push(Region::Unplaced);
    for q in [
        ds.records(RecordFilter::default()),
        ds.query(&regions, RecordFilter::default()),
    ] {
        for (n, r) in q.enumerate() {
            if r.is_err() || n > 100_000 {
                break;
            }
        }
    }
    let _ = bams3_core::validate::validate(&ds);
}

static SCRATCH: OnceLock<std::path::PathBuf> = OnceLock::new();

/// A scratch directory for the C ABI's writers, emptied when the process starts.
fn ffi_dir() -> std::path::PathBuf {
    SCRATCH
        .get_or_init(|| {
            let d = std::env::temp_dir().join(format!("bams3-fuzz-ffi-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("scratch directory");
            d
        })
        .clone()
}

/// Removes the C ABI targets' scratch directory (the sample dataset and any writer's
/// leftovers); the next use makes a new one.
pub fn remove_scratch() {
    if let Some(d) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A writer on a fresh location under `dir`, or `None` when the header is refused.
unsafe fn ffi_writer(
    dir: &std::path::Path,
    header: *const c_char,
) -> Option<*mut bams3::writer::bams3_writer> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let loc = CString::new(dir.join(format!("w{n}")).to_string_lossy().as_bytes()).ok()?;
    let mut opts = std::mem::zeroed();
    bams3::writer::bams3_writer_options_default(&mut opts);
    opts.threads = 1;
    let mut w = std::ptr::null_mut();
    let rc = bams3::writer::bams3_writer_open(loc.as_ptr(), header, &opts, &mut w);
    (rc == 0).then_some(w)
}

/// A reader, through the C ABI, of the sample dataset written to disk once.
struct SharedReader(*mut bams3::reader::bams3_reader);
// The C ABI's readers may be used from any thread.
unsafe impl Send for SharedReader {}
unsafe impl Sync for SharedReader {}

fn ffi_sample_reader() -> &'static SharedReader {
    static READER: OnceLock<SharedReader> = OnceLock::new();
    READER.get_or_init(|| {
        let dir = ffi_dir().join("sample");
        let store = bams3_core::storage::LocalStorage::new(dir.to_string_lossy().as_ref());
        for (key, bytes) in sample_dataset()
            .objects
            .lock()
            .expect("not poisoned")
            .iter()
        {
            store.put(key, bytes).expect("write the sample dataset");
        }
        let loc = CString::new(dir.to_string_lossy().as_bytes()).expect("no NUL");
        let mut r = std::ptr::null_mut();
        let rc = unsafe { bams3::reader::bams3_reader_open(loc.as_ptr(), &mut r) };
        assert_eq!(rc, 0, "the sample dataset must open");
        SharedReader(r)
    })
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Starting inputs for each target, made from real objects: the sample dataset's chunks,
/// index and metadata, the legacy fixtures under `tests/fixtures/legacy` (`root` is the
/// repository), SAM and BAM text of the sample reads, regions. bench/fuzz.sh writes them into
/// an empty corpus; the fuzzer and `cargo fuzz cmin` take it from there.
pub fn seeds(root: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let ds = sample_dataset();
    let objects = ds.objects.lock().expect("not poisoned").clone();
    for (key, bytes) in &objects {
        if key.ends_with(".chunk") {
            out.push(("chunk", bytes.clone()));
            if let Ok(h) = ChunkHeader::read(bytes, key) {
                let len = ChunkHeader::encoded_len(h.streams.len());
                out.push(("chunk_header", bytes[..len].to_vec()));
                for s in &h.streams {
                    let (a, b) = (s.offset as usize, (s.offset + s.stored_len) as usize);
                    let Some(stored) = bytes.get(a..b) else {
                        continue;
                    };
                    let mut seed = vec![s.codec];
                    seed.extend_from_slice(&(s.raw_len as u32).to_le_bytes());
                    seed.push(h.n_records.min(255) as u8);
                    seed.extend_from_slice(stored);
                    out.push(("stream", seed));
                    if s.codec == CODEC_BLOCKED {
                        let mut dir = vec![(h.n_records / 37) as u8];
                        dir.extend_from_slice(stored);
                        out.push(("block_directory", dir));
                    }
                }
            }
        }
    }
    for key in [
        bams3_core::metadata::INDEX_KEY,
        bams3_core::metadata::METADATA_KEY,
    ] {
        let target = if key == bams3_core::metadata::INDEX_KEY {
            "index"
        } else {
            "metadata"
        };
        out.push((target, objects[key].clone()));
    }
    // Archive-profile chunks (codecs 4 to 8: quality contexts, base model, mate pairs, names
    // of pairs, tags by column), for the chunk target to mutate.
    for n in [300usize, 40] {
        let records = paired_records(n);
        let c = bams3_core::chunk::encode_profile(&records, 3, bams3_core::chunk::Profile::Archive)
            .expect("encodes");
        out.push(("chunk", c.bytes));
    }
    let quals: Vec<u8> = sample_lines()
        .iter()
        .flat_map(|l| l.split('\t').nth(10).unwrap_or("").bytes().map(|q| q - 33))
        .take(4000)
        .collect();
    for data in [&quals[..], &quals[..100], b"aaaaaaaaab"] {
        let mut seed = (data.len() as u16).to_le_bytes().to_vec();
        seed.extend_from_slice(&rans::encode(data));
        out.push(("rans", seed));
    }
    let legacy_root = root.join("tests/fixtures/legacy");
    for name in ["v01_go", "v01_poc", "v02_go", "v02_stdin"] {
        let dir = legacy_root.join(name);
        let (Ok(meta), Ok(header)) = (
            std::fs::read(dir.join("_metadata.json")),
            std::fs::read(dir.join("_header.json")),
        ) else {
            continue;
        };
        // Without checksums, mutated chunks reach the decoders (a fuzzer cannot forge SHA-256).
        let meta = serde_json::from_slice::<serde_json::Value>(&meta).map(|mut v| {
            if let Some(chunks) = v.get_mut("chunks").and_then(|c| c.as_array_mut()) {
                for c in chunks {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("checksum");
                    }
                }
            }
            serde_json::to_vec(&v).expect("serialises")
        });
        let Ok(meta) = meta else {
            continue;
        };
        let Ok(ds) = legacy::open(&meta, &header) else {
            continue;
        };
        for c in &ds.chunks {
            if let Ok(chunk) = std::fs::read(dir.join(&c.path)) {
                let mut seed = meta.clone();
                seed.push(0);
                seed.extend_from_slice(&header);
                seed.push(0);
                seed.extend_from_slice(&chunk);
                out.push(("legacy", seed));
            }
        }
    }
    let lines = sample_lines();
    let sam_text = format!("{SAMPLE_HEADER}{}\n", lines[395..405].join("\n"));
    out.push(("sam", sam_text.clone().into_bytes()));
    out.push((
        "sam",
        format!("{SAMPLE_HEADER}{}\n", lines[590]).into_bytes(),
    ));
    let header = Header::from_sam_text(SAMPLE_HEADER).expect("valid header");
    let mut w = bam::Writer::new(Vec::new(), &header, 1, 0).expect("BAM writer");
    let names = sam::ReferenceNames::new(&header).expect("names");
    for l in &lines[395..405] {
        let rec = sam::parse_record_with(l.as_bytes(), &names).expect("valid line");
        w.write_record(&rec).expect("write");
    }
    let bgzf = w.finish().expect("finish");
    // The target takes decompressed BAM without its magic, and BGZF as it is.
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut bam::bgzf_decoder(std::io::Cursor::new(bgzf.clone()), 1),
        &mut plain,
    )
    .expect("decompresses");
    out.push(("bam", plain[4..].to_vec()));
    out.push(("bam", bgzf));
    for r in [
        "chr1",
        "chr1:100-200",
        "HLA:1",
        "{HLA:1}:1-5",
        "a-b:1-2:3-4",
        "*",
        "chr1:1,000-",
    ] {
        out.push(("region", r.as_bytes().to_vec()));
    }
    out.push(("ffi_text", [b"\0", SAMPLE_HEADER.as_bytes()].concat()));
    out.push(("ffi_text", [b"\x01", lines[7].as_bytes()].concat()));
    out.push(("ffi_text", [b"\x03", b"chr1:100-2000".as_slice()].concat()));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_is_the_ieee_checksum() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
