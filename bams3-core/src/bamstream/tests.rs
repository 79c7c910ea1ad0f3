use std::sync::Arc;

use super::*;
use crate::Header;
use crate::dataset::{DatasetWriter, RecordFilter, WriteOptions};
use crate::storage::LocalStorage;

/// A small pseudo-random generator, so the tests need no dependency and are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn header() -> Header {
    Header::from_sam_text(
        "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:3000000\n@SQ\tSN:empty\tLN:500\n@SQ\tSN:chr2\tLN:900000\n",
    )
    .unwrap()
}

/// Sorted records on chr1 and chr2 (some placed unmapped, some long), then unplaced ones.
fn records(n: usize) -> Vec<Record> {
    let h = header();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for (rname, len, refn) in [("chr1", 3_000_000u64, n), ("chr2", 900_000, n / 3)] {
        let mut pos: Vec<u64> = (0..refn).map(|_| 1 + rng.next() % (len - 200)).collect();
        pos.sort_unstable();
        for (i, p) in pos.into_iter().enumerate() {
            let (flag, cigar) = match rng.next() % 10 {
                0 => (4 + 1 + 8, "*".to_string()),
                1 => (16, format!("50M{}N50M", 1 + rng.next() % 5000)),
                2 => (16, "100M".into()),
                _ => (0, "30M2I68M".into()),
            };
            let seq: String = (0..100).map(|k| b"ACGT"[(k + i) % 4] as char).collect();
            let line = format!(
                "r{rname}{i}\t{flag}\t{rname}\t{p}\t{}\t{cigar}\t=\t{p}\t0\t{seq}\t*\tNM:i:{}",
                if flag & 4 != 0 { 0 } else { 60 },
                i % 7
            );
            out.push(crate::sam::parse_record(line.as_bytes(), &h).unwrap());
        }
    }
    for i in 0..n / 10 {
        let line = format!("u{i}\t4\t*\t0\t0\t*\t*\t0\t0\tACGTACGT\tIIIIIIII");
        out.push(crate::sam::parse_record(line.as_bytes(), &h).unwrap());
    }
    out
}

fn write(dir: &std::path::Path, recs: &[Record], part_bytes: usize) -> Arc<Dataset> {
    let _ = std::fs::remove_dir_all(dir);
    let storage = Arc::new(LocalStorage::new(dir));
    let opts = WriteOptions {
        chunk_size: 256 << 10,
        part_bytes,
        memory: (16 << 20) + 20 * part_bytes,
        ..WriteOptions::default()
    };
    let mut w = DatasetWriter::create(storage.clone(), header(), opts).unwrap();
    for r in recs {
        w.push(r.clone()).unwrap();
    }
    w.finish().unwrap();
    Dataset::open(storage).unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bams3-bamstream-{name}-{}", std::process::id()))
}

/// The whole stream, read at odd offsets in odd sizes, as htslib's buffer does.
fn read_all(s: &mut BamStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    let mut rng = Rng(7);
    loop {
        let want = 1 + (rng.next() % buf.len() as u64) as usize;
        let n = s.read(out.len() as u64, &mut buf[..want]).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The data of BGZF blocks.
fn inflate(bgzf: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut noodles_bgzf::io::Reader::new(bgzf), &mut out).unwrap();
    out
}

fn decode(stream: &[u8]) -> (Header, Vec<Record>) {
    let mut r =
        crate::bam::Reader::from_bgzf(std::io::Cursor::new(stream.to_vec()), 1, "stream").unwrap();
    let mut recs = Vec::new();
    while let Some(rec) = r.read_record().unwrap() {
        recs.push(rec);
    }
    (r.header().clone(), recs)
}

#[test]
fn sorted_dataset_streams_as_its_records_with_a_predicted_layout() {
    let dir = tmp("sorted");
    let recs = records(12_000);
    let ds = write(&dir, &recs, 128 << 10);
    let layout = layout_of(&ds).unwrap();
    assert!(layout.units.len() > 20, "many parts and chunks");
    // Without the stored objects the layout comes from the index (whole chunks); with them,
    // from the table, whose units are the chunks' pieces. Both give the records.
    let stored = std::fs::read(dir.join(objects::LAYOUT_KEY)).unwrap();
    let _ = std::fs::remove_file(dir.join(objects::LAYOUT_KEY));
    let mut s = BamStream::new(ds.clone()).unwrap();
    assert!(!s.uses_stored_layout());
    assert_eq!(s.units(), layout.units.len());
    let from_index = read_all(&mut s);
    assert_eq!(decode(&from_index).1, recs);
    objects::write_for(&ds).unwrap();
    assert_eq!(
        std::fs::read(dir.join(objects::LAYOUT_KEY)).unwrap(),
        stored,
        "the writer's pieces (from its records) are the ones read back from the chunks"
    );
    objects::check(&ds).unwrap();
    let mut s = BamStream::new(ds.clone()).unwrap();
    assert!(s.uses_stored_layout());
    let big = ds
        .index()
        .unwrap()
        .references
        .iter()
        .flat_map(|r| &r.chunks)
        .filter(|e| e.count > pieces::PIECE_RECORDS as u64)
        .count();
    assert!(big > 3, "chunks worth cutting: {big}");
    assert!(s.units() >= layout.units.len() + big, "pieces in the table");
    let bytes = read_all(&mut s);
    assert_eq!(bytes.len() as u64, s.len());
    assert!(bytes.ends_with(&crate::bam::BGZF_EOF));
    let (h, got) = decode(&bytes);
    assert_eq!(h, header());
    assert_eq!(got, recs);
    // Reads at arbitrary offsets agree with the sequential bytes (random access).
    let mut rng = Rng(99);
    let mut buf = vec![0u8; 1000];
    for _ in 0..200 {
        let at = rng.next() % s.len();
        let n = s.read(at, &mut buf).unwrap();
        assert!(n > 0);
        assert_eq!(&buf[..n], &bytes[at as usize..at as usize + n]);
    }
    assert_eq!(s.read(s.len(), &mut buf).unwrap(), 0);
    // Every unit, piece or chunk, starts where a block starts and holds whole records: a
    // fresh stream read from a unit's offset on decodes as its records.
    let mut n = 0usize;
    for i in 0..s.units() {
        let u = s.unit_info(i).unwrap();
        assert_eq!(
            &bytes[u.offset as usize..u.offset as usize + 4],
            &[0x1f, 0x8b, 8, 4]
        );
        let mut fresh = BamStream::new(ds.clone()).unwrap();
        let mut got = Vec::new();
        let mut at = u.offset;
        while at < u.end() {
            let k = fresh.read(at, &mut buf).unwrap();
            got.extend_from_slice(&buf[..k]);
            at += k as u64;
        }
        let raw = inflate(&got);
        assert_eq!(raw.len() as u64, u.raw, "unit {i}");
        let mut at = 0;
        let mut k = 0;
        while at < raw.len() {
            let len = u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) as usize;
            assert_eq!(
                &raw[at + 4..at + 4 + len],
                recs[n + k].as_bytes(),
                "unit {i}"
            );
            at += 4 + len;
            k += 1;
        }
        assert_eq!(k as u64, u.count);
        n += k;
    }
    assert_eq!(n, recs.len());
    // Pieces read out of order, as several regions' queries read them.
    let mut s = BamStream::new(ds.clone()).unwrap();
    let mut order: Vec<usize> = (0..s.units()).collect();
    let mut rng = Rng(11);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    for i in order {
        let u = s.unit_info(i).unwrap();
        let k = s.read(u.offset, &mut buf).unwrap();
        assert_eq!(&buf[..k], &bytes[u.offset as usize..u.offset as usize + k]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_layout_table_of_version_1_is_still_read_and_validated() {
    let dir = tmp("v1");
    let recs = records(2000);
    let ds = write(&dir, &recs, 64 << 10);
    // What a writer before pieces stored: whole chunks, 80-byte units.
    let layout = layout_of(&ds).unwrap();
    let csi = csi::build(&layout);
    let v1 = objects::encode_layout_as(&layout, &csi, 1);
    std::fs::write(dir.join(objects::LAYOUT_KEY), &v1).unwrap();
    std::fs::write(dir.join(objects::CSI_KEY), &csi).unwrap();
    objects::check(&ds).unwrap();
    let mut s = BamStream::new(ds.clone()).unwrap();
    assert!(s.uses_stored_layout());
    assert_eq!(s.units(), layout.units.len());
    assert_eq!(decode(&read_all(&mut s)).1, recs);
    // A damaged unit record is caught.
    let mut bad = v1.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    std::fs::write(dir.join(objects::LAYOUT_KEY), &bad).unwrap();
    assert!(objects::check(&ds).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsorted_dataset_streams_in_query_order() {
    let dir = tmp("unsorted");
    let mut recs = records(2000);
    let mut rng = Rng(5);
    for i in (1..recs.len()).rev() {
        recs.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let ds = write(&dir, &recs, 4 << 10);
    assert!(!ds.metadata().sorted_input);
    assert!(
        layout_of(&ds).unwrap().units.iter().any(|u| u.n_chunks > 1),
        "merged bins"
    );
    let mut s = BamStream::new(ds.clone()).unwrap();
    let (_, got) = decode(&read_all(&mut s));
    let want: Vec<Record> = ds
        .records(RecordFilter::default())
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got.len(), recs.len());
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn le32(b: &[u8], at: &mut usize) -> i32 {
    let v = i32::from_le_bytes(b[*at..*at + 4].try_into().unwrap());
    *at += 4;
    v
}
fn le64(b: &[u8], at: &mut usize) -> u64 {
    let v = u64::from_le_bytes(b[*at..*at + 8].try_into().unwrap());
    *at += 8;
    v
}

#[test]
fn csi_covers_every_unit_and_counts_as_idxstats() {
    let dir = tmp("csi");
    let recs = records(1500);
    let ds = write(&dir, &recs, 8 << 10);
    let layout = layout_of(&ds).unwrap();
    let raw = csi::build_raw(&layout);
    // The file form is BGZF around the same bytes.
    assert_eq!(inflate(&csi::build(&layout)), raw);
    let mut at = 4;
    assert_eq!(&raw[..4], b"CSI\x01");
    assert_eq!(le32(&raw, &mut at), 14);
    let n_lvls = le32(&raw, &mut at);
    assert_eq!(n_lvls, 5);
    assert_eq!(le32(&raw, &mut at), 0);
    assert_eq!(le32(&raw, &mut at), 3);
    let meta = ((1u32 << (3 * n_lvls + 3)) - 1) / 7 + 1;
    let mut starts = Vec::new();
    for r in 0..3 {
        let n_bin = le32(&raw, &mut at);
        let mut stats = None;
        for _ in 0..n_bin {
            let bin = le32(&raw, &mut at) as u32;
            let _loff = le64(&raw, &mut at);
            let n_chunk = le32(&raw, &mut at);
            let chunks: Vec<(u64, u64)> = (0..n_chunk)
                .map(|_| (le64(&raw, &mut at), le64(&raw, &mut at)))
                .collect();
            if bin == meta {
                stats = Some(chunks[1]);
            } else {
                starts.extend(chunks.iter().map(|c| (c.0 >> 16, c.1 >> 16)));
            }
        }
        let mapped = recs
            .iter()
            .filter(|x| x.ref_id() == r && x.flag() & 4 == 0)
            .count() as u64;
        let unmapped = recs
            .iter()
            .filter(|x| x.ref_id() == r && x.flag() & 4 != 0)
            .count() as u64;
        match stats {
            Some(s) => assert_eq!(s, (mapped, unmapped), "reference {r}"),
            None => assert_eq!(mapped + unmapped, 0, "reference {r}"),
        }
    }
    let no_coor = le64(&raw, &mut at);
    assert_eq!(at, raw.len());
    assert_eq!(
        no_coor,
        recs.iter().filter(|x| x.ref_id() < 0).count() as u64
    );
    // The index's chunks are runs of whole placed units (neighbours in one bin merged), and
    // every placed unit is in exactly one of them.
    starts.sort_unstable();
    let placed: Vec<(u64, u64)> = layout
        .units
        .iter()
        .filter(|u| u.reference >= 0)
        .map(|u| (u.offset, u.end()))
        .collect();
    let mut covered = Vec::new();
    for (a, b) in &starts {
        let i = placed
            .iter()
            .position(|u| u.0 == *a)
            .expect("starts at a unit");
        let j = placed
            .iter()
            .position(|u| u.1 == *b)
            .expect("ends at a unit");
        covered.extend(i..=j);
    }
    covered.sort_unstable();
    assert_eq!(covered, (0..placed.len()).collect::<Vec<_>>());
    assert!(starts.len() < placed.len(), "some neighbours merged");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_raw_size_in_the_index_is_an_error_not_a_broken_stream() {
    let dir = tmp("rawsize");
    let ds = write(&dir, &records(300), 8 << 10);
    let mut layout = layout_of(&ds).unwrap();
    layout.units[0].raw += 1;
    let e = unit_bytes(&ds, &layout.units[0]).unwrap_err().to_string();
    assert!(e.contains("raw_bytes"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_layout_table_pages_back_to_the_same_units() {
    let dir = tmp("paged");
    let _ = std::fs::remove_dir_all(&dir);
    let storage: Arc<dyn crate::storage::Storage> = Arc::new(LocalStorage::new(&dir));
    let mut layout = Layout {
        header: vec![1; 100],
        units: Vec::new(),
        ref_lengths: vec![1 << 30],
    };
    let mut offset = framed_len(100);
    for i in 0..2500u32 {
        let raw = 1 + (i as u64 * 7919) % 200_000;
        layout.units.push(Unit {
            reference: (i / 1000) as i32 - 1,
            bin_start: i as i64 * 1000,
            bin_end: i as i64 * 1000 + 1000,
            part: (i % 3 != 0).then_some(i % 5),
            first_chunk: i,
            n_chunks: 1 + i % 4,
            first_pos: i as i64 * 1000 + 3,
            max_end: i as i64 * 1000 + 5000,
            count: i as u64,
            unmapped: i as u64 / 2,
            raw,
            offset,
            first_record: u64::from(i % 7) * 256,
        });
        offset += framed_len(raw);
    }
    storage
        .put(
            objects::LAYOUT_KEY,
            &objects::encode_layout(&layout, b"csi"),
        )
        .unwrap();
    let paged = PagedLayout::open(storage.clone(), 100).unwrap().unwrap();
    assert_eq!(paged.len(), 2500);
    assert_eq!(paged.total_len(), layout.total_len());
    assert_eq!(paged.header_end(), layout.header_end());
    let mut rng = Rng(3);
    for _ in 0..500 {
        let at = rng.next() % layout.total_len();
        let want = layout.unit_at(at).map(|i| (i, layout.units[i].clone()));
        assert_eq!(paged.unit_at(at).unwrap(), want, "offset {at}");
    }
    assert_eq!(paged.get(2499).unwrap(), layout.units[2499]);
    assert!(
        PagedLayout::open(storage.clone(), 99).is_err(),
        "another header"
    );
    // A damaged page is caught by its checksum.
    let mut bytes = objects::encode_layout(&layout, b"csi");
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    storage.put(objects::LAYOUT_KEY, &bytes).unwrap();
    let paged = PagedLayout::open(storage, 100).unwrap().unwrap();
    assert!(paged.get(2499).is_err());
    assert!(paged.get(0).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
