//! The storage conformance suite: one behavioural test of every guarantee the `Storage` trait
//! documents, run over each back end and wrapper: a local directory, the cache wrapper over it,
//! moto and s3s-fs (real S3-compatible servers on loopback), and the cache wrapper over S3.
//!
//! It lives with the CLI's tests because their harness starts the servers (tests/common/s3.rs).

mod common;
#[path = "common/s3.rs"]
mod s3_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bams3_core::storage::{
    CachePolicy, CachedStore, Fetched, LocalStorage, S3Storage, Storage, StoreOptions,
};
use bams3_core::Error;
use common::TempDir;
use s3_server::{Moto, S3sFs};

/// The credentials every in-process S3 client of this test uses. Set once, before any client
/// exists, in the one test of this file (environment changes race with other threads).
fn set_test_credentials(tmp: &TempDir, key: &str, secret: &str) {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::set_var("AWS_CONFIG_FILE", tmp.join("no-aws-config"));
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        tmp.join("no-aws-credentials"),
    );
    std::env::remove_var("AWS_ENDPOINT_URL");
    std::env::remove_var("AWS_PROFILE");
}

fn s3(endpoint: &str, uri: &str) -> S3Storage {
    let opts = StoreOptions {
        endpoint_url: Some(endpoint.to_string()),
        no_sign_request: false,
    };
    S3Storage::new(uri, &opts).expect("S3 store")
}

fn policy() -> CachePolicy {
    CachePolicy {
        validator: "v".into(),
        whole: vec!["w".into()],
        ranges_of: vec!["r".into()],
        other_ranges: true,
    }
}

/// Every documented guarantee, on `s`; `name` says which store failed.
fn conformance(name: &str, s: &dyn Storage) {
    let ctx = |what: &str| format!("{name}: {what}");

    // Writes, then reads through the same handle before any flush (background uploads).
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..8 {
        s.put(&format!("data/obj{i}"), &body[..1000 * (i + 1)])
            .unwrap_or_else(|e| panic!("{}: {e}", ctx("put")));
    }
    s.put("data/big", &body).unwrap();
    for i in 0..8 {
        let got = s.get(&format!("data/obj{i}")).unwrap();
        assert_eq!(
            &*got,
            &body[..1000 * (i + 1)],
            "{}",
            ctx("read after write")
        );
    }
    s.flush()
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("flush")));

    // Whole objects and exact ranges.
    assert_eq!(&*s.get("data/big").unwrap(), &body[..], "{}", ctx("get"));
    assert_eq!(
        s.get_range("data/big", 10..20).unwrap(),
        &body[10..20],
        "{}",
        ctx("range")
    );
    assert_eq!(
        s.get_range("data/big", 99_990..100_000).unwrap(),
        &body[99_990..],
        "{}",
        ctx("range ending at the end")
    );
    assert!(s
        .get_range("data/big", 100_000..100_000)
        .unwrap()
        .is_empty());
    let ranges = [
        5000..6000,
        0..10,
        50_000..99_000,
        5500..5600,
        7..7,
        6001..6002,
    ];
    let got = s.get_ranges("data/big", &ranges).unwrap();
    assert_eq!(got.len(), ranges.len(), "{}", ctx("get_ranges count"));
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(
            g,
            &body[r.start as usize..r.end as usize],
            "{}",
            ctx("get_ranges {r:?}")
        );
    }

    // A range past the end fails at once: retrying cannot make the object longer.
    for r in [99_990..100_001, 200_000..200_010] {
        let start = Instant::now();
        let e = s.get_range("data/big", r.clone());
        assert!(
            e.is_err(),
            "{}",
            ctx(&format!("range {r:?} past the end succeeded"))
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{}",
            ctx(&format!(
                "range {r:?} past the end was retried: {:?}",
                start.elapsed()
            ))
        );
        assert!(s.get_ranges("data/big", &[0..10, r]).is_err());
    }

    // Empty objects.
    s.put("data/empty", b"").unwrap();
    s.flush().unwrap();
    assert!(
        s.get("data/empty").unwrap().is_empty(),
        "{}",
        ctx("empty get")
    );
    assert_eq!(
        s.head("data/empty").unwrap(),
        Some(0),
        "{}",
        ctx("empty head")
    );
    assert!(s.get_range("data/empty", 0..0).unwrap().is_empty());
    assert!(
        s.get_range("data/empty", 0..1).is_err(),
        "{}",
        ctx("range of an empty object")
    );

    // Missing keys.
    assert!(
        matches!(s.get("data/missing"), Err(Error::NotFound(_))),
        "{}",
        ctx("get of a missing key")
    );
    assert!(s.get_range("data/missing", 0..4).is_err());
    assert_eq!(
        s.head("data/missing").unwrap(),
        None,
        "{}",
        ctx("head of a missing key")
    );
    s.delete("data/missing")
        .unwrap_or_else(|e| panic!("{}: {e}", ctx("delete of a missing key")));

    // Prefixes are key prefixes, not folders.
    for k in ["p/chr1/a", "p/chr10/b", "p/chx", "q"] {
        s.put(k, k.as_bytes()).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(
        s.list("p/chr1").unwrap(),
        ["p/chr1/a", "p/chr10/b"],
        "{}",
        ctx("list")
    );
    assert_eq!(
        s.list("p/chr1/").unwrap(),
        ["p/chr1/a"],
        "{}",
        ctx("list of a folder")
    );
    assert_eq!(s.list("p/").unwrap().len(), 3);
    assert!(s.any_under("p/chr").unwrap(), "{}", ctx("any_under"));
    assert!(
        !s.any_under("p/nothing").unwrap(),
        "{}",
        ctx("any_under of nothing")
    );
    assert!(s.list("p/nothing").unwrap().is_empty());

    // Deletes.
    s.delete("p/chx").unwrap();
    assert_eq!(s.head("p/chx").unwrap(), None, "{}", ctx("deleted object"));
    assert_eq!(s.list("p/").unwrap(), ["p/chr1/a", "p/chr10/b"]);

    // Keys that could escape the root are refused by every method.
    for bad in ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a\\b"] {
        assert!(s.put(bad, b"x").is_err(), "{}", ctx(&format!("put {bad}")));
        assert!(s.get(bad).is_err(), "{}", ctx(&format!("get {bad}")));
        assert!(s.delete(bad).is_err(), "{}", ctx(&format!("delete {bad}")));
        assert!(s.head(bad).is_err(), "{}", ctx(&format!("head {bad}")));
    }

    // Versions: a store that has them says when an object is unchanged.
    s.put("v", b"one").unwrap();
    s.flush().unwrap();
    match s.get_if_changed("v", None).unwrap() {
        Fetched::Object { bytes, version } => {
            assert_eq!(&*bytes, b"one");
            if let Some(v) = version {
                // NotModified saves the body; a server that ignores `If-None-Match` (s3s-fs)
                // may send it again, but then unchanged, under the same version.
                match s.get_if_changed("v", Some(&v)).unwrap() {
                    Fetched::NotModified => {}
                    Fetched::Object { bytes, version } => {
                        assert_eq!(&*bytes, b"one", "{}", ctx("unchanged object"));
                        assert_eq!(
                            version.as_deref(),
                            Some(v.as_str()),
                            "{}",
                            ctx("its version")
                        );
                    }
                }
                s.put("v", b"two").unwrap();
                s.flush().unwrap();
                match s.get_if_changed("v", Some(&v)).unwrap() {
                    Fetched::Object { bytes, .. } => assert_eq!(&*bytes, b"two"),
                    Fetched::NotModified => panic!("{}", ctx("a changed object was not modified")),
                }
            }
        }
        Fetched::NotModified => panic!("{}", ctx("NotModified without a version")),
    }
    assert!(s.read_ahead() >= 1);
}

/// The cache wrapper: entries are used while the validator is unchanged and dropped with it.
fn cache_behaviour(name: &str, inner: Arc<dyn Storage>, cache: &std::path::Path) {
    inner.put("v", b"version 1").unwrap();
    inner.put("w", b"whole 1").unwrap();
    inner.put("r", b"0123456789").unwrap();
    inner.put("chunk", b"abcdefghij").unwrap();
    inner.flush().unwrap();
    let open = || CachedStore::new(inner.clone(), policy(), Some(cache.to_path_buf()));
    let c = open();
    assert_eq!(&*c.get("v").unwrap(), b"version 1");
    assert_eq!(&*c.get("w").unwrap(), b"whole 1");
    assert_eq!(c.get_range("r", 2..5).unwrap(), b"234");
    assert_eq!(
        c.get_ranges("chunk", &[1..3, 5..6]).unwrap(),
        [b"bc".to_vec(), b"f".to_vec()]
    );
    // The validator unchanged: a second handle serves the same bytes (from the cache when the
    // store has versions), even for objects changed behind its back.
    inner.put("w", b"whole 2").unwrap();
    inner.flush().unwrap();
    let c = open();
    assert_eq!(&*c.get("v").unwrap(), b"version 1", "{name}");
    let versioned = matches!(
        inner.get_if_changed("v", None).unwrap(),
        Fetched::Object {
            version: Some(_),
            ..
        }
    );
    let want_w: &[u8] = if versioned { b"whole 1" } else { b"whole 2" };
    assert_eq!(
        &*c.get("w").unwrap(),
        want_w,
        "{name}: whole object under an unchanged validator"
    );
    // A new validator version invalidates everything cached under the old one.
    inner.put("v", b"version 2").unwrap();
    inner.put("r", b"abcdefghij").unwrap();
    inner.flush().unwrap();
    let c = open();
    assert_eq!(&*c.get("v").unwrap(), b"version 2", "{name}");
    assert_eq!(
        &*c.get("w").unwrap(),
        b"whole 2",
        "{name}: stale whole object"
    );
    assert_eq!(
        c.get_range("r", 2..5).unwrap(),
        b"cde",
        "{name}: stale range"
    );
    // Writes and misses pass through.
    assert!(matches!(c.get("nope"), Err(Error::NotFound(_))));
    assert!(c.get_range("r", 5..50).is_err());
}

#[test]
fn every_back_end_keeps_the_storage_contract() {
    let tmp = TempDir::new("storage-conformance");
    set_test_credentials(&tmp, "conformance", "conformance-secret");

    // Local directory, and the cache wrapper over it.
    let local = LocalStorage::new(tmp.join("local"));
    conformance("local", &local);
    let wrapped = CachedStore::new(
        LocalStorage::new(tmp.join("local-cached")),
        policy(),
        Some(tmp.join("cache-local")),
    );
    conformance("cache over local", &wrapped);
    cache_behaviour(
        "cache over local",
        Arc::new(LocalStorage::new(tmp.join("local-cb"))),
        &tmp.join("cache-lcb"),
    );

    // A local root that is a file: writes fail at once, with the path.
    std::fs::write(tmp.join("a-file"), b"x").unwrap();
    let bad = LocalStorage::new(tmp.join("a-file"));
    assert!(bad.put("k", b"x").is_err());

    // moto: a prefix, and a bucket root.
    let moto = Moto::start();
    moto.create_bucket("conf");
    let url = format!("http://127.0.0.1:{}", moto.port);
    conformance("moto", &s3(&url, "s3://conf/some/prefix"));
    conformance("moto bucket root", &s3(&url, "s3://conf"));
    conformance(
        "cache over moto",
        &CachedStore::new(
            s3(&url, "s3://conf/cached"),
            policy(),
            Some(tmp.join("cache-moto")),
        ),
    );
    cache_behaviour(
        "cache over moto",
        Arc::new(s3(&url, "s3://conf/cb")),
        &tmp.join("cache-mcb"),
    );

    // An upload that fails in the background surfaces at flush (a missing bucket).
    let missing = s3(&url, "s3://no-such-bucket/x");
    missing.put("k", b"x").expect("the upload is queued");
    let e = missing
        .flush()
        .expect_err("flush reports the failed upload");
    assert!(e.to_string().contains("no-such-bucket"), "{e}");
    assert!(
        missing.put("k2", b"x").is_err(),
        "later calls report it too"
    );

    // s3s-fs, which checks signatures.
    let fs = S3sFs::start(&tmp.join("s3s-root"), "conformance", "conformance-secret");
    fs.create_bucket("conf");
    conformance("s3s-fs", &s3(&fs.url(), "s3://conf/p"));
}

#[cfg(unix)]
#[test]
fn a_local_store_never_goes_through_a_symbolic_link() {
    let tmp = TempDir::new("storage-links");
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x"), b"keep").unwrap();
    let root = tmp.join("ds");
    let s = LocalStorage::new(&root);
    s.put("data/real/a", b"a").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("data/link")).unwrap();
    for prefix in ["", "data/", "data/link/"] {
        let e = s.list(prefix).expect_err("a listing meets the link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
    assert!(s.put("data/link/y", b"y").is_err());
    assert!(s.delete("data/link/x").is_err());
    assert!(!outside.join("y").exists());
    assert!(outside.join("x").exists());
    // A root that is itself a link is where the user put the dataset: it works.
    std::os::unix::fs::symlink(root.join("data/real"), tmp.join("alias")).unwrap();
    let alias = LocalStorage::new(tmp.join("alias"));
    assert_eq!(alias.list("").unwrap(), ["a"]);
    alias.put("b", b"b").unwrap();
    assert_eq!(&*s.get("data/real/b").unwrap(), b"b");
}
