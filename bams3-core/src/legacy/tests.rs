//! Tests against the fixture datasets under `tests/fixtures/legacy/`, whose bytes and expected
//! SAM lines come from `make_fixtures.py` (not from this decoder).

use std::path::PathBuf;

use super::*;
use crate::record::reg2bin;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/legacy")
        .join(name)
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn open_fixture(name: &str) -> LegacyDataset {
    let root = fixture(name);
    open(
        &read(root.join("_metadata.json")),
        &read(root.join("_header.json")),
    )
    .unwrap()
}

fn decode_all(name: &str, ds: &LegacyDataset) -> Vec<(LegacyChunk, Vec<Record>)> {
    ds.chunks
        .iter()
        .map(|c| {
            let bytes = read(fixture(name).join(&c.path));
            (c.clone(), decode_chunk(&bytes, c, ds).unwrap())
        })
        .collect()
}

/// Formats a record as a SAM line, independently of any other code in the crate, so it can be
/// compared with the generator's hand-written `expected.sam`.
fn sam_line(r: &Record, h: &Header) -> String {
    let cigar: String = if r.raw_cigar().is_empty() {
        "*".into()
    } else {
        r.raw_cigar()
            .chunks(4)
            .map(|w| {
                let op = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                format!(
                    "{}{}",
                    op >> 4,
                    char::from(b"MIDNSHP=X"[(op & 0xF) as usize])
                )
            })
            .collect()
    };
    let seq: String = if r.l_seq() == 0 {
        "*".into()
    } else {
        (0..r.l_seq())
            .map(|i| {
                let b = r.packed_seq()[i / 2];
                let code = if i % 2 == 0 { b >> 4 } else { b & 0xF };
                char::from(b"=ACMGRSVTWYHKDBN"[code as usize])
            })
            .collect()
    };
    let qual: String = if r.l_seq() == 0 || r.qual()[0] == 0xFF {
        "*".into()
    } else {
        r.qual().iter().map(|&q| char::from(q + 33)).collect()
    };
    let mut line = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t*\t0\t0\t{}\t{}",
        String::from_utf8_lossy(r.name()),
        r.flag(),
        h.reference_name(r.ref_id()),
        r.pos() + 1,
        r.mapq(),
        cigar,
        seq,
        qual
    );
    for f in r.aux_fields() {
        let f = f.unwrap();
        assert_eq!(f.ty, b'Z');
        line.push_str(&format!(
            "\t{}{}:Z:{}",
            char::from(f.tag[0]),
            char::from(f.tag[1]),
            String::from_utf8_lossy(f.value)
        ));
    }
    line
}

/// Every record matches expected.sam line by line, and the fields SAM text cannot show (mate
/// fields, bin) have their fixed values.
fn check_against_expected(name: &str) -> (LegacyDataset, Vec<(LegacyChunk, Vec<Record>)>) {
    let ds = open_fixture(name);
    let chunks = decode_all(name, &ds);
    let expected = String::from_utf8(read(fixture(name).join("expected.sam"))).unwrap();
    let want_header: String = expected
        .lines()
        .filter(|l| l.starts_with('@'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(ds.header.text, want_header, "{name} header");
    let want: Vec<&str> = expected.lines().filter(|l| !l.starts_with('@')).collect();
    let got: Vec<String> = chunks
        .iter()
        .flat_map(|(_, recs)| recs.iter().map(|r| sam_line(r, &ds.header)))
        .collect();
    assert_eq!(got, want, "{name} records");
    for (chunk, recs) in &chunks {
        assert_eq!(recs.len() as u64, chunk.reads, "{}", chunk.path);
        for r in recs {
            assert_eq!(r.next_ref_id(), -1);
            assert_eq!(r.next_pos(), -1);
            assert_eq!(r.tlen(), 0);
            let end = if r.flag() & 4 != 0 {
                r.pos() as i64 + 1
            } else {
                r.end()
            };
            assert_eq!(r.bin(), reg2bin(r.pos() as i64, end), "bin of {:?}", r);
            // Reads sit in the chunk holding their start (unplaced reads: the first chunk).
            if chunk.ref_id >= 0 && r.pos() >= 0 {
                assert!(chunk.start <= r.pos() as i64 && (r.pos() as i64) < chunk.end);
                assert_eq!(r.ref_id(), chunk.ref_id);
            }
        }
    }
    (ds, chunks)
}

fn names(chunks: &[(LegacyChunk, Vec<Record>)]) -> Vec<String> {
    chunks.iter().map(|(c, _)| c.path.clone()).collect()
}

fn find<'a>(chunks: &'a [(LegacyChunk, Vec<Record>)], name: &str) -> &'a Record {
    chunks
        .iter()
        .flat_map(|(_, r)| r)
        .find(|r| r.name() == name.as_bytes())
        .unwrap()
}

#[test]
fn v02_go_binary_zstd() {
    let (ds, chunks) = check_against_expected("v02_go");
    assert_eq!(ds.version, "0.2.0");
    assert!(!ds.one_based);
    assert_eq!(ds.compression, "zstd");
    // The metadata lists them unmapped, chr2, chr1/1M, chr1/0.
    assert_eq!(
        names(&chunks),
        [
            "data/chr1/000000000-001048576.chunk",
            "data/chr1/001048576-002097152.chunk",
            "data/chr2/000000000-001048576.chunk",
            "data/unmapped.chunk"
        ]
    );
    assert_eq!(
        (ds.chunks[1].ref_id, ds.chunks[1].start, ds.chunks[1].end),
        (0, 1048576, 2097152)
    );
    assert_eq!(ds.chunks[3].ref_id, -1);
    // Boundary-spanning read: stored once, in the chunk of its start, 2S4M1I3M.
    let g002 = find(&chunks, "g002");
    assert_eq!(
        (g002.ref_id(), g002.pos(), g002.end()),
        (0, 1048571, 1048578)
    );
    assert_eq!(g002.n_cigar_op(), 4);
    assert_eq!(g002.packed_seq(), [0x12, 0x48, 0xF2, 0x48, 0x12]); // R -> N
    assert_eq!(g002.qual(), b"ABCDEFGHIJ".map(|q| q - 33));
    let tags: Vec<_> = g002.aux_fields().map(|f| f.unwrap()).collect();
    assert_eq!(tags[0].tag, *b"XH");
    assert_eq!(tags[0].value, b"31414533");
    assert_eq!(tags[1].value, b"c:[1 2 3]");
    // Missing qualities (stored as spaces) are BAM's 0xFF.
    assert_eq!(find(&chunks, "g003").qual(), [0xFF; 6]);
    let g009 = find(&chunks, "g009");
    assert_eq!((g009.ref_id(), g009.pos(), g009.flag()), (-1, -1, 141));
    assert_eq!(g009.packed_seq(), [0x12, 0x40]); // odd length: last low nibble 0
    assert_eq!(g009.bin(), 4680);
    assert!(ds.losses.iter().any(|l| l.contains("mate")));
    assert!(ds.losses.iter().any(|l| l.contains("reconstructed")));
}

#[test]
fn v02_stdin_one_based_no_cigar_duplicates() {
    let (ds, chunks) = check_against_expected("v02_stdin");
    assert!(ds.one_based);
    assert_eq!(ds.compression, "none");
    // Five entries, one path listed twice: the last entry (2 reads) describes the file.
    assert_eq!(ds.chunks.len(), 4);
    assert_eq!(ds.chunks[0].reads, 2);
    // 1-based [0, 1048576) and [1048576, 2097152) become 0-based [0, 1048575), [1048575, ...).
    assert_eq!((ds.chunks[0].start, ds.chunks[0].end), (0, 1048575));
    assert_eq!((ds.chunks[1].start, ds.chunks[1].end), (1048575, 2097151));
    assert_eq!((ds.chunks[3].start, ds.chunks[3].end), (0, 0));
    assert_eq!(find(&chunks, "s001").pos(), 0);
    assert_eq!(find(&chunks, "s003").pos(), 1048575);
    for (_, recs) in &chunks {
        assert!(recs.iter().all(|r| r.n_cigar_op() == 0));
    }
    // QUAL `*` on 5 bases (1 byte written): qualities missing, tag intact.
    let s002 = find(&chunks, "s002");
    assert_eq!(s002.qual(), [0xFF; 5]);
    assert_eq!(s002.aux_fields().next().unwrap().unwrap().value, b"c,1,2,3");
    // Same, as the last record of its chunk.
    assert_eq!(find(&chunks, "s004").qual(), [0xFF; 5]);
    // SEQ `*`: no bases; POS 0 becomes -1.
    let s006 = find(&chunks, "s006");
    assert_eq!((s006.l_seq(), s006.pos()), (0, -1));
    assert_eq!(find(&chunks, "s007").pos(), 4);
    assert!(ds.losses.iter().any(|l| l.contains("1-based")));
    assert!(ds.losses.iter().any(|l| l.contains("no CIGARs")));
    assert!(ds.losses.iter().any(|l| l.contains("1 duplicate chunk")));
}

#[test]
fn v01_go_json_zstd() {
    let (ds, chunks) = check_against_expected("v01_go");
    assert_eq!(ds.version, "0.1.0");
    assert_eq!(
        names(&chunks),
        [
            "data/chr1/000000000-001048576.chunk",
            "data/chr2/001048576-002097152.chunk",
            "data/unmapped.chunk"
        ]
    );
    // ref 0 / pos 0 / mapq 0 were omitted from both key sets.
    let j001 = find(&chunks, "j001");
    assert_eq!((j001.ref_id(), j001.pos(), j001.mapq()), (0, 0, 0));
    let j002 = find(&chunks, "j002");
    assert_eq!(
        (j002.pos(), j002.mapq(), j002.end()),
        (1048570, 60, 1048579)
    );
    let tags: Vec<_> = j002.aux_fields().map(|f| f.unwrap().value).collect();
    assert_eq!(tags, [&b"-3"[..], b"x<y>&z"]);
    assert_eq!(find(&chunks, "j003").qual(), [0xFF; 6]);
    let j005 = find(&chunks, "j005");
    assert_eq!((j005.l_seq(), j005.ref_id(), j005.pos()), (0, -1, -1));
}

#[test]
fn v01_poc_python() {
    let (ds, chunks) = check_against_expected("v01_poc");
    assert_eq!(ds.version, "0.1.0-poc");
    assert!(!ds.is_go());
    assert_eq!(ds.header.references[0].length, 3000000);
    assert_eq!(ds.chunks[1].start, 1000000);
    let p001 = find(&chunks, "p001");
    assert_eq!((p001.pos(), p001.end()), (999990, 1000010));
    assert_eq!(find(&chunks, "p002").qual(), [0xFF; 5]);
    let p006 = find(&chunks, "p006");
    assert_eq!((p006.ref_id(), p006.pos(), p006.l_seq()), (1, -1, 0));
    assert!(ds.losses.iter().any(|l| l.contains("no tags")));
}

#[test]
fn poc_checksums_are_not_verified() {
    // Python checksums hash re-serialized records; a file hash mismatch is expected.
    let ds = open_fixture("v01_poc");
    let c = &ds.chunks[0];
    let bytes = read(fixture("v01_poc").join(&c.path));
    assert!(decode_chunk(&bytes, c, &ds).is_ok());
}

#[test]
fn flipped_byte_is_a_checksum_error() {
    for name in ["v02_go", "v02_stdin", "v01_go"] {
        let ds = open_fixture(name);
        for c in &ds.chunks {
            let mut bytes = read(fixture(name).join(&c.path));
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            let err = decode_chunk(&bytes, c, &ds).unwrap_err().to_string();
            assert!(
                err.contains("checksum mismatch"),
                "{name} {}: {err}",
                c.path
            );
        }
    }
}

#[test]
fn truncated_chunks_are_errors_not_panics() {
    for name in ["v02_go", "v02_stdin", "v01_go", "v01_poc"] {
        let ds = open_fixture(name);
        for c in &ds.chunks {
            let bytes = read(fixture(name).join(&c.path));
            // Without the checksum every cut must still be caught by the decoder itself.
            let unchecked = LegacyChunk {
                checksum: None,
                ..c.clone()
            };
            for cut in 0..bytes.len() {
                assert!(
                    decode_chunk(&bytes[..cut], &unchecked, &ds).is_err(),
                    "{name} {} cut at {cut}",
                    c.path
                );
            }
        }
    }
}

/// Decompressed binary chunks, re-cut at every byte, and with every byte flipped: never a
/// panic (flips may still decode when they hit a base or quality byte).
#[test]
fn damaged_binary_never_panics() {
    let ds = open_fixture("v02_stdin");
    for c in &ds.chunks {
        let unchecked = LegacyChunk {
            checksum: None,
            ..c.clone()
        };
        let bytes = read(fixture("v02_stdin").join(&c.path));
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                let _ = decode_chunk(&b, &unchecked, &ds);
            }
            assert!(decode_chunk(&bytes[..i], &unchecked, &ds).is_err());
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_chunk(&extra, &unchecked, &ds).is_err());
    }
}

fn poc_ds() -> LegacyDataset {
    open_fixture("v01_poc")
}

fn json_chunk(text: &str) -> Result<Vec<Record>> {
    let ds = poc_ds();
    let c = LegacyChunk {
        checksum: None,
        ..ds.chunks[0].clone()
    };
    decode_chunk(text.as_bytes(), &c, &ds)
}

#[test]
fn bad_json_is_an_error() {
    for bad in [
        "",
        "{}",
        "[",
        "[{\"name\": \"x\", \"flag\": \"zero\"}]",
        "[{\"name\": \"x\", \"flag\": 70000}]",
        "[{\"name\": \"x\", \"ref\": 7}]",
        "[{\"name\": \"x\", \"mapq\": 256}]",
        "[{\"name\": \"x\", \"cigar\": \"3Q\"}]",
        "[{\"name\": \"x\", \"seq\": \"ACGT\", \"qual\": \"II\"}]",
        "[{\"name\": \"x\", \"tags\": {\"XYZ\": \"1\"}}]",
        "[{\"name\": \"x\", \"tags\": {\"XY\": [1]}}]",
        "[{\"name\": \"x\", \"cigar_ops\": [{\"Type\": 9, \"Length\": 3}]}]",
    ] {
        assert!(json_chunk(bad).is_err(), "{bad}");
    }
}

#[test]
fn early_go_legacy_keys_and_merge_rule() {
    // Early bams3-go: legacy keys only, tags present; numbers in tags as a Python writer might.
    let recs = json_chunk(
        r#"[{"name":"e1","flag":0,"ref":1,"pos":7,"mapq":3,"cigar":"2M","seq":"ac","qual":"II","tags":{"ZZ":"b","AA":5}},
            {"name":"e2","flag":0,"reference_id":0,"ref":1,"position":0,"pos":9,"cigar":"1M","sequence":"A","seq":"C","quality":"I"}]"#,
    )
    .unwrap();
    assert_eq!((recs[0].ref_id(), recs[0].pos(), recs[0].mapq()), (1, 7, 3));
    assert_eq!(recs[0].packed_seq(), [0x12]);
    // Stored order, not alphabetical.
    let tags: Vec<_> = recs[0].aux_fields().map(|f| f.unwrap()).collect();
    assert_eq!((tags[0].tag, tags[0].value), (*b"ZZ", &b"b"[..]));
    assert_eq!((tags[1].tag, tags[1].value), (*b"AA", &b"5"[..]));
    // New key zero -> legacy key used; new key non-empty -> it wins.
    assert_eq!((recs[1].ref_id(), recs[1].pos()), (1, 9));
    assert_eq!(recs[1].packed_seq(), [0x10]);
}

#[test]
fn metadata_variants() {
    let header = br#"{"HD":{"VN":"1.6"},"SQ":[{"LN":"10","SN":"c1"}],"CO":null}"#;
    let ds = open(
        br#"{"format":"bams3","version":"0.2.0","chunks":null,"compression":{"algorithm":"zstd"}}"#,
        header,
    )
    .unwrap();
    assert!(ds.chunks.is_empty());
    assert_eq!(ds.header.text, "@HD\tVN:1.6\n@SQ\tSN:c1\tLN:10\n");
    for bad_meta in [
        &br#"{"version":"0.3.0"}"#[..],
        br#"{"format":"other","version":"0.2.0"}"#,
        br#"not json"#,
        br#"{"version":"0.2.0","chunks":[{"path":"data/c9/x.chunk","reference":"c9"}]}"#,
        br#"{"version":"0.2.0","chunks":[{"path":"../x.chunk","reference":"c1"}]}"#,
        br#"{"version":"0.2.0","chunks":[{"path":"/etc/x","reference":"c1"}]}"#,
        br#"{"version":"0.2.0","chunks":[{"path":"a","reference":"c1","start":"0"}]}"#,
    ] {
        assert!(open(bad_meta, header).is_err());
    }
    let meta = br#"{"version":"0.1.0"}"#;
    for bad_header in [
        &br#"[]"#[..],
        br#"{"SQ":[{"SN":"c1"}]}"#,
        br#"{"SQ":[{"SN":"c1","LN":"x"}]}"#,
        br#"{"SQ":{"SN":"c1"}}"#,
        br#"{"CO":["a\nb"]}"#,
        br#"{"RG":[{"ID":"a\tb"}]}"#,
    ] {
        assert!(open(meta, bad_header).is_err());
    }
}

#[test]
fn oversized_or_broken_zstd_is_an_error() {
    let ds = poc_ds();
    let c = ds.chunks[0].clone();
    let mut junk = ZSTD_MAGIC.to_vec();
    junk.extend_from_slice(&[0xFF; 32]);
    assert!(decode_chunk(&junk, &c, &ds).is_err());
}

#[test]
fn unknown_binary_version_is_an_error() {
    let ds = open_fixture("v02_stdin");
    let c = LegacyChunk {
        checksum: None,
        ..ds.chunks[0].clone()
    };
    let mut bytes = read(fixture("v02_stdin").join(&c.path));
    bytes[5] = 3;
    let err = decode_chunk(&bytes, &c, &ds).unwrap_err().to_string();
    assert!(err.contains("version"), "{err}");
}

/// Independent check with noodles: the records, wrapped in an uncompressed BAM stream, are
/// valid BAM, and noodles' SAM writer prints exactly `expected.sam`.
#[test]
fn noodles_reads_records_as_expected_sam() {
    use noodles_sam::alignment::io::Write as _;
    for name in ["v02_go", "v02_stdin", "v01_go", "v01_poc"] {
        let ds = open_fixture(name);
        let mut bam = b"BAM\x01".to_vec();
        bam.extend_from_slice(&(ds.header.text.len() as i32).to_le_bytes());
        bam.extend_from_slice(ds.header.text.as_bytes());
        bam.extend_from_slice(&(ds.header.references.len() as i32).to_le_bytes());
        for r in &ds.header.references {
            bam.extend_from_slice(&(r.name.len() as i32 + 1).to_le_bytes());
            bam.extend_from_slice(r.name.as_bytes());
            bam.push(0);
            bam.extend_from_slice(&(r.length as i32).to_le_bytes());
        }
        for (_, recs) in decode_all(name, &ds) {
            for r in recs {
                bam.extend_from_slice(&(r.as_bytes().len() as u32).to_le_bytes());
                bam.extend_from_slice(r.as_bytes());
            }
        }
        let mut reader = noodles_bam::io::Reader::from(&bam[..]);
        let header = reader.read_header().unwrap();
        let mut writer = noodles_sam::io::Writer::new(Vec::new());
        writer.write_header(&header).unwrap();
        for rec in reader.records() {
            let rec = rec.unwrap();
            writer.write_alignment_record(&header, &rec).unwrap();
        }
        let got = String::from_utf8(writer.into_inner()).unwrap();
        let expected = String::from_utf8(read(fixture(name).join("expected.sam"))).unwrap();
        let body = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('@'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(body(&got), body(&expected), "{name}");
    }
}
