//! `bams3 convert --resume` (issue 14, parts 1-2): conversions killed with SIGKILL at seeded
//! random moments, locally and on a loopback S3 server (moto), never leave a dataset that opens
//! as complete, and every one resumes to the dataset an uninterrupted conversion writes (same
//! objects, same bytes; only `created` differs). Also: Ctrl+C keeps the work, and every
//! refusal (another input, other options, standard input, a complete dataset of another input)
//! is one clear line.

mod common;
#[path = "common/s3.rs"]
mod s3_server;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use s3_server::{http, Moto};

/// Options of every conversion here: small bins, so there are many chunks and checkpoints;
/// a checkpoint at every bin boundary, so a kill at any moment has one to resume from.
const OPTS: &[&str] = &["--quiet", "--chunk-size", "256K", "--checkpoint-every", "0"];

/// A seeded generator of kill moments (a 64-bit LCG: reproducible, no dependency).
struct Seeds(u64);

impl Seeds {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Every object of a local dataset, by key; `_metadata.json` without its `created` time and
/// its source file name (the one field a conversion's moment and place decide).
fn local_objects(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    normalise(out)
}

fn normalise(mut objects: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    if let Some(m) = objects.get_mut("_metadata.json") {
        let mut v: serde_json::Value = serde_json::from_slice(m).unwrap();
        v.as_object_mut().unwrap().remove("created");
        *m = serde_json::to_vec(&v).unwrap();
    }
    objects
}

fn assert_same(what: &str, got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>) {
    let keys = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    if got.keys().ne(want.keys()) {
        let extra: Vec<_> = keys(got)
            .into_iter()
            .filter(|k| !want.contains_key(k))
            .collect();
        let missing: Vec<_> = keys(want)
            .into_iter()
            .filter(|k| !got.contains_key(k))
            .collect();
        panic!("{what}: objects differ from the uninterrupted conversion: extra {extra:?}, missing {missing:?}");
    }
    for (k, v) in want {
        assert!(
            got[k] == *v,
            "{what}: {k} differs from the uninterrupted conversion"
        );
    }
}

/// Starts `cmd`, waits `after`, then SIGKILLs it; returns whether it had already finished
/// (successfully) by then.
fn kill_after(mut cmd: Command, after: Duration) -> bool {
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bams3");
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "the conversion failed before it was killed"
            );
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = run(cmd);
    check_ok(cmd, &out);
    t.elapsed()
}

/// One place datasets are written: a local directory or a moto bucket.
trait Place {
    fn bams3(&self) -> Command;
    fn uri(&self, name: &str) -> String;
    fn objects(&self, name: &str) -> BTreeMap<String, Vec<u8>>;
}

struct Local(TempDir);

impl Place for Local {
    fn bams3(&self) -> Command {
        bams3()
    }
    fn uri(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
    fn objects(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        local_objects(&self.0.join(name))
    }
}

struct S3 {
    moto: Moto,
    tmp: TempDir,
}

const BUCKET: &str = "resume";

impl S3 {
    fn new() -> S3 {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        S3 {
            moto,
            tmp: TempDir::new("resume-s3"),
        }
    }
}

impl Place for S3 {
    fn bams3(&self) -> Command {
        let mut c = bams3();
        c.arg("--endpoint-url")
            .arg(format!("http://127.0.0.1:{}", self.moto.port))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.tmp.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.tmp.join("no-creds"))
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env("XDG_CACHE_HOME", self.tmp.join("cache"));
        c
    }
    fn uri(&self, name: &str) -> String {
        format!("s3://{BUCKET}/{name}")
    }

    fn objects(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let prefix = format!("{name}/");
        let mut out = BTreeMap::new();
        for key in self.moto.keys(BUCKET, &prefix) {
            let (status, body) =
                http(self.moto.port, "GET", &format!("/{BUCKET}/{key}"), &[]).unwrap();
            assert_eq!(status, 200, "GET {key}");
            out.insert(key[prefix.len()..].to_string(), body);
        }
        normalise(out)
    }
}

fn convert_cmd(place: &dyn Place, input: &Path, out: &str, resume: bool) -> Command {
    let mut c = place.bams3();
    // The input is small: small parts give it a few hundred chunks to be killed among.
    c.arg("convert").args(OPTS).args(["--part-size", "64K"]);
    if resume {
        c.arg("--resume");
    }
    c.arg(input).arg(out);
    c
}

/// `kills` conversions of `input` killed at seeded random moments, each resumed (some killed
/// again while resuming) and compared with an uninterrupted conversion.
fn crash_and_resume(place: &dyn Place, input: &Path, kills: u64, seed: u64) {
    let reference = place.uri("reference.bams3");
    let took = timed(&mut convert_cmd(place, input, &reference, false));
    let want = place.objects("reference.bams3");
    assert!(
        !want.contains_key("_journal/start.json"),
        "the commit left its journal"
    );
    let mut seeds = Seeds(seed);
    // Moments from just after the start to just before the end of an uninterrupted run.
    let window = (took.as_millis() as u64 * 9 / 10).max(20);
    let mut interrupted = 0;
    for i in 0..kills {
        let name = format!("killed-{i}.bams3");
        let out = place.uri(&name);
        let at = Duration::from_millis(10 + seeds.next_below(window));
        let finished = kill_after(convert_cmd(place, input, &out, false), at);
        let left = place.objects(&name);
        if left.contains_key("_metadata.json") {
            // Killed after its commit (or finished): complete, and a resume has nothing to do.
            let mut resume = place.bams3();
            resume
                .args([
                    "convert",
                    "--resume",
                    "--chunk-size",
                    "256K",
                    "--part-size",
                    "64K",
                ])
                .arg(input)
                .arg(&out);
            let o = run(&mut resume);
            check_ok(&resume, &o);
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("nothing to do"),
                "kill {i} at {at:?} after the commit: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        } else if !finished && !left.is_empty() {
            interrupted += 1;
            // A dataset without _metadata.json never opens as complete.
            let mut stats = place.bams3();
            stats.arg("stats").arg(&out);
            fails_with(&mut stats, &["incomplete dataset", "--resume"]);
            // Convert without --resume names both ways out.
            let mut again = convert_cmd(place, input, &out, false);
            fails_with(&mut again, &["--resume", "bams3 rm"]);
            // Every fourth is killed once more while it resumes.
            if i % 4 == 3 {
                let at = Duration::from_millis(20 + seeds.next_below(window));
                kill_after(convert_cmd(place, input, &out, true), at);
            }
        }
        let mut resume = convert_cmd(place, input, &out, true);
        let o = run(&mut resume);
        check_ok(&resume, &o);
        assert_same(&format!("kill {i} at {at:?}"), &place.objects(&name), &want);
    }
    // The moments must land inside conversions, or the test proves nothing.
    assert!(
        interrupted * 2 >= kills,
        "only {interrupted} of {kills} kills interrupted a conversion"
    );
}

#[test]
fn local_conversions_killed_at_random_moments_resume_to_the_same_dataset() {
    let place = Local(TempDir::new("resume-local"));
    crash_and_resume(&place, &real_bam("na12878-chrM-Y-trunc.bam"), 20, 14);
}

#[test]
fn s3_conversions_killed_at_random_moments_resume_to_the_same_dataset() {
    let place = S3::new();
    crash_and_resume(&place, &real_bam("na12878-chrM-Y-trunc.bam"), 20, 41);
}

/// A conversion of `input` into `out` stopped part-way (SIGINT once a checkpoint exists).
fn interrupted(input: &Path, out: &Path) -> String {
    let mut child = bams3()
        .arg("convert")
        .args(OPTS)
        .arg(input)
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let journal = out.join("_journal");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Ctrl+C once the first checkpoint is stored.
    while !journal.join("000000000002.json").exists() {
        assert!(Instant::now() < deadline, "no checkpoint within a minute");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before Ctrl+C"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "an interrupted conversion must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ctrl_c_keeps_the_work_and_resume_refuses_what_does_not_match() {
    let tmp = TempDir::new("resume-refusals");
    let bam = real_bam("human_mouse_smaller.bam");
    let reference = tmp.join("reference.bams3");
    timed(bams3().arg("convert").args(OPTS).arg(&bam).arg(&reference));
    let want = local_objects(&reference);

    let out = tmp.join("out.bams3");
    let err = interrupted(&bam, &out);
    assert!(
        err.contains("is incomplete: continue with `bams3 convert --resume"),
        "Ctrl+C did not say how to continue: {err}"
    );
    assert!(out.join("_journal/start.json").exists() && !out.join("_metadata.json").exists());

    // Another input, the same input changed, other options: one line each, nothing touched.
    let before = local_objects(&out);
    let resume = |input: &Path, extra: &[&str]| {
        let mut c = bams3();
        c.arg("convert")
            .args(OPTS)
            .args(extra)
            .arg("--resume")
            .arg(input)
            .arg(&out);
        c
    };
    let msg = fails_with(
        &mut resume(&real_bam("ex1.bam"), &[]),
        &["not the input this conversion started from"],
    );
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
    let touched = tmp.join("touched.bam");
    std::fs::copy(&bam, &touched).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&touched)
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    fails_with(&mut resume(&touched, &[]), &["modified"]);
    fails_with(
        &mut resume(&bam, &["--part-size", "1M"]),
        &["--chunk-size 262144", "same options"],
    );
    fails_with(&mut resume(&bam, &["-l", "5"]), &["same options"]);
    assert_same("after refusals", &local_objects(&out), &before);
    let mut stdin = bams3();
    stdin.args(["convert", "--resume", "-"]).arg(&out);
    fails_with(&mut stdin, &["standard input"]);

    // The right input and options finish it; again is a no-op that says so.
    let mut c = resume(&bam, &[]);
    let o = run(&mut c);
    check_ok(&c, &o);
    assert_same("resumed after Ctrl+C", &local_objects(&out), &want);
    let mut again = bams3();
    again.args(["convert", "--resume"]).arg(&bam).arg(&out);
    let o = run(&mut again);
    check_ok(&again, &o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_same("no-op resume", &local_objects(&out), &want);
    // A complete dataset of another input is refused.
    let mut other = bams3();
    other
        .args(["convert", "--resume"])
        .arg(real_bam("ex1.bam"))
        .arg(&out);
    fails_with(
        &mut other,
        &["already a complete dataset", "human_mouse_smaller"],
    );

    // --resume onto nothing just converts.
    let fresh = tmp.join("fresh.bams3");
    let mut c = bams3();
    c.arg("convert")
        .args(OPTS)
        .arg("--resume")
        .arg(&bam)
        .arg(&fresh);
    timed(&mut c);
    assert_same("--resume onto nothing", &local_objects(&fresh), &want);
}

#[test]
fn inputs_without_a_resume_point_convert_as_before_and_leave_no_journal() {
    let tmp = TempDir::new("resume-others");
    // Unsorted BAM: its bins stay open to the end, so its journal says to restart; once
    // committed, nothing of the journal is left, and the records are those of the input.
    for name in ["ex1_unsort.bam", "ex1.bam"] {
        let bam = real_bam(name);
        let out = tmp.join(format!("{name}.bams3"));
        timed(bams3().arg("convert").args(OPTS).arg(&bam).arg(&out));
        assert!(
            !out.join("_journal").exists(),
            "{name}: journal left after the commit"
        );
        let bam_out = tmp.join(format!("{name}.out.bam"));
        timed(bams3().arg("export").arg(&out).arg(&bam_out));
        assert!(
            compare_roundtrip(&bam, &bam_out).is_none(),
            "{name}: records differ"
        );
    }
    // SAM from standard input: no journal is possible, the conversion is as before.
    let sam = ok(samtools().args(["view", "-h"]).arg(real_bam("ex1.bam")));
    let out = tmp.join("stdin.bams3");
    let mut c = bams3();
    c.arg("convert").args(OPTS).arg("-").arg(&out);
    let o = run_with_stdin(&mut c, &sam);
    check_ok(&c, &o);
    assert!(!out.join("_journal").exists());
    // And an incomplete dataset without a journal is refused by --resume, naming `bams3 rm`.
    let partial = tmp.join("partial.bams3");
    std::fs::create_dir_all(partial.join("data")).unwrap();
    std::fs::write(partial.join("data/x.chunk"), b"junk").unwrap();
    let mut c = bams3();
    c.args(["convert", "--resume"])
        .arg(real_bam("ex1.bam"))
        .arg(&partial);
    fails_with(&mut c, &["without a journal", "bams3 rm"]);
}
