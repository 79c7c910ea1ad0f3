//! What a samtools user reaches for in the first hour: progress on a terminal (a bar with ETA
//! in a pseudo-terminal, nothing drawn into pipes), `bams3 view` as `query`, `s3://` named in
//! every help text that takes a dataset, shell completions that parse, a man page that renders.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// Runs `shell_cmd` in a pseudo-terminal (util-linux `script`), stdout and stderr on the tty;
/// returns what the terminal showed.
fn in_pty(shell_cmd: &str) -> (Output, String) {
    let out = Command::new("script")
        .args(["-qfec", shell_cmd, "/dev/null"])
        .env("COLUMNS", "100")
        .output()
        .expect("script (util-linux) is needed to run commands in a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The bar's parts: a percentage, an ETA and human rates of records and bytes.
fn has_bar(tty: &str) -> bool {
    tty.contains("% ") && tty.contains("ETA ") && tty.contains("records/s")
}

#[test]
fn convert_and_export_draw_a_bar_with_eta_on_a_terminal() {
    let bam = real_bam("human_mouse_smaller.bam");
    let tmp = TempDir::new("progress-tty");
    let ds = tmp.join("ds.bams3");
    let cmd = format!(
        "{} convert {} {}",
        bams3_bin(),
        sh_quote(&bam),
        sh_quote(&ds)
    );
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` in a pty failed:\n{tty}");
    assert!(
        has_bar(&tty) && tty.contains("MB/s"),
        "`{cmd}` on a terminal drew no bar with %, ETA, records/s and MB/s:\n{}",
        tty.chars().take(2000).collect::<String>()
    );
    assert!(
        tty.contains("bams3: converted 248661 records"),
        "summary line missing"
    );

    let out_bam = tmp.join("out.bam");
    let cmd = format!(
        "{} export {} {}",
        bams3_bin(),
        sh_quote(&ds),
        sh_quote(&out_bam)
    );
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` in a pty failed:\n{tty}");
    assert!(has_bar(&tty), "`{cmd}` on a terminal drew no bar:\n{tty}");
    assert!(compare_roundtrip(&bam, &out_bam).is_none());

    // --quiet on a terminal: nothing drawn, no summary.
    let quiet = tmp.join("quiet.bams3");
    let cmd = format!(
        "{} convert --quiet {} {}",
        bams3_bin(),
        sh_quote(&bam),
        sh_quote(&quiet)
    );
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` failed:\n{tty}");
    assert!(
        tty.trim().is_empty(),
        "`{cmd}` drew on the terminal:\n{tty}"
    );
}

#[test]
fn standard_input_gets_a_spinner_with_counts() {
    let bam = real_bam("human_mouse_smaller.bam");
    let tmp = TempDir::new("progress-stdin");
    let ds = tmp.join("ds.bams3");
    let cmd = format!(
        "{} convert - {} < {}",
        bams3_bin(),
        sh_quote(&ds),
        sh_quote(&bam)
    );
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` failed:\n{tty}");
    assert!(
        tty.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
            && tty.contains("k records/s")
            && !tty.contains("ETA"),
        "`{cmd}`: expected a spinner with counts (no size, so no ETA):\n{}",
        tty.chars().take(2000).collect::<String>()
    );
}

#[test]
fn nothing_is_drawn_into_pipes() {
    let bam = real_bam("human_mouse_smaller.bam");
    let tmp = TempDir::new("progress-pipe");
    let ds = tmp.join("ds.bams3");
    let mut cmd = bams3();
    cmd.arg("convert").arg(&bam).arg(&ds);
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\r') && !err.contains('\x1b') && err.lines().count() == 1,
        "`{}` wrote more than its summary line into a pipe: {err:?}",
        describe(&cmd)
    );
    assert!(
        err.starts_with("bams3: converted 248661 records"),
        "{err:?}"
    );
    let mut cmd = bams3();
    cmd.arg("export").arg(&ds).arg(tmp.join("out.bam"));
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    assert!(
        out.stderr.is_empty(),
        "export wrote to a pipe: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn view_is_query() {
    let bam = real_bam("ex1.bam");
    let tmp = TempDir::new("view");
    let ds = tmp.join("ds.bams3");
    convert(&bam, &ds, &[]);
    for args in [
        vec!["seq1:100-400"],
        vec!["-c", "seq2"],
        vec!["-h", "-q", "30", "seq1"],
    ] {
        let q = ok(bams3().arg("query").arg(&ds).args(&args));
        let v = ok(bams3().arg("view").arg(&ds).args(&args));
        assert_eq!(q, v, "bams3 view {args:?} differs from bams3 query");
        assert!(!q.is_empty());
    }
}

/// Subcommands taking a dataset (or writing one) and the help text that must name `s3://`.
const DATASET_COMMANDS: &[&str] = &[
    "convert",
    "query",
    "view",
    "depth",
    "stats",
    "flagstat",
    "idxstats",
    "export",
    "validate",
    "upgrade",
    "rm",
    "htslib-index",
];

#[test]
fn every_dataset_argument_says_s3_is_accepted() {
    for c in DATASET_COMMANDS {
        let help = String::from_utf8_lossy(&ok(bams3().args([c, "--help"]))).into_owned();
        assert!(
            help.contains("s3://"),
            "`bams3 {c} --help` does not say s3:// works:\n{help}"
        );
    }
    let tmp = TempDir::new("no-dataset");
    let mut cmd = bams3();
    cmd.arg("stats").arg(tmp.join("missing"));
    fails_with(&mut cmd, &["no BAMS3 dataset", "s3://"]);
}

fn subcommands() -> Vec<String> {
    // From `bams3 --help`: the lines of the Commands section.
    let help = String::from_utf8_lossy(&ok(bams3().arg("--help"))).into_owned();
    let mut names = Vec::new();
    let mut inside = false;
    for l in help.lines() {
        if l.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if l.trim().is_empty() {
                break;
            }
            let name = l.split_whitespace().next().unwrap().trim_end_matches(',');
            if name != "help" {
                names.push(name.to_string());
            }
        }
    }
    assert!(
        names.len() >= 12,
        "few subcommands parsed from --help: {names:?}"
    );
    names
}

#[test]
fn completions_parse_and_name_every_command() {
    let tmp = TempDir::new("completions");
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(bams3().args(["completions", shell]));
        let text = String::from_utf8_lossy(&script);
        for n in &names {
            assert!(text.contains(n.as_str()), "{shell} completions lack '{n}'");
        }
        let file = tmp.join(format!("bams3.{shell}"));
        std::fs::write(&file, &script).unwrap();
        if shell == "bash" {
            let out = run(Command::new("bash").arg("-n").arg(&file));
            assert!(
                out.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Sourced, it registers the completion function.
            let out = run(Command::new("bash")
                .arg("-c")
                .arg(format!("source {} && complete -p bams3", sh_quote(&file))));
            assert!(out.status.success(), "sourcing the bash completions failed");
        }
    }
    // An unknown shell is a usage error naming it (clap's message, with the valid ones).
    let out = run(bams3().args(["completions", "tcsh"]));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}

#[test]
fn man_pages_render_with_every_command() {
    let tmp = TempDir::new("man");
    let names = subcommands();
    let page = tmp.join("bams3.1");
    std::fs::write(&page, ok(bams3().arg("man"))).unwrap();
    // man -l renders the page as a user reads it (MANPAGER cat: no pager).
    let out = run(Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100"));
    assert!(
        out.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NAME") && text.contains("SYNOPSIS"));
    for n in &names {
        assert!(text.contains(n.as_str()), "bams3(1) does not list '{n}'");
        let sub = tmp.join(format!("bams3-{n}.1"));
        std::fs::write(&sub, ok(bams3().args(["man", n]))).unwrap();
        let out = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&sub));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff on bams3-{n}(1): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fails_with(bams3().args(["man", "nosuch"]), &["nosuch"]);
}

#[test]
fn validate_draws_a_bar_on_a_terminal_and_nothing_into_pipes() {
    let bam = real_bam("human_mouse_smaller.bam");
    let tmp = TempDir::new("progress-validate");
    let ds = tmp.join("ds.bams3");
    convert(&bam, &ds, &["--quiet"]);
    let cmd = format!("{} validate {}", bams3_bin(), sh_quote(&ds));
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` in a pty failed:\n{tty}");
    assert!(
        has_bar(&tty),
        "`{cmd}` on a terminal drew no bar with %, ETA and records/s:\n{}",
        tty.chars().take(2000).collect::<String>()
    );
    assert!(tty.contains("248661 records"), "OK line missing:\n{tty}");
    let (out, tty) = in_pty(&format!("{cmd} --quiet"));
    assert!(out.status.success());
    assert!(!has_bar(&tty), "`{cmd} --quiet` drew a bar:\n{tty}");

    let mut cmd = bams3();
    cmd.arg("validate").arg(&ds);
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    assert!(
        out.stderr.is_empty(),
        "validate wrote to a pipe: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().count() == 1 && stdout.contains(": OK (") && !stdout.contains('\r'),
        "validate's summary line changed: {stdout:?}"
    );
}

#[test]
fn sharded_conversion_draws_a_bar_on_a_terminal_and_nothing_into_pipes() {
    let tmp = TempDir::new("progress-shard");
    // A shard needs an indexed input: a copy indexed here, so the test data stays untouched.
    let bam = tmp.join("in.bam");
    std::fs::copy(real_bam("human_mouse_smaller.bam"), &bam).unwrap();
    let mut index = Command::new("samtools");
    index.arg("index").arg(&bam);
    let out = run(&mut index);
    check_ok(&index, &out);

    let ds = tmp.join("tty.bams3");
    let cmd = format!(
        "{} convert --shard 1/1 {} {}",
        bams3_bin(),
        sh_quote(&bam),
        sh_quote(&ds)
    );
    let (out, tty) = in_pty(&cmd);
    assert!(out.status.success(), "`{cmd}` in a pty failed:\n{tty}");
    assert!(
        has_bar(&tty) && tty.contains("MB/s"),
        "`{cmd}` on a terminal drew no bar with %, ETA, records/s and MB/s:\n{}",
        tty.chars().take(2000).collect::<String>()
    );
    assert!(
        tty.contains("bams3: shard 1/1: converted 248661 records"),
        "summary line missing:\n{tty}"
    );
    let (out, tty) = in_pty(&format!("{cmd} --quiet"));
    assert!(out.status.success(), "`{cmd} --quiet` failed:\n{tty}");
    assert!(tty.trim().is_empty(), "`{cmd} --quiet` drew:\n{tty}");

    let mut cmd = bams3();
    cmd.args(["convert", "--shard", "1/1"])
        .arg(&bam)
        .arg(tmp.join("pipe.bams3"));
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\r') && !err.contains('\x1b') && err.lines().count() == 1,
        "`{}` wrote more than its summary line into a pipe: {err:?}",
        describe(&cmd)
    );
    assert!(
        err.starts_with("bams3: shard 1/1: converted 248661 records"),
        "{err:?}"
    );
    // The bar changed nothing: the shard finalizes into the dataset a plain convert gives.
    let mut cmd = bams3();
    cmd.args(["finalize", "--quiet"])
        .arg(tmp.join("pipe.bams3"));
    let out = run(&mut cmd);
    check_ok(&cmd, &out);
    let plain = tmp.join("plain.bams3");
    convert(&bam, &plain, &["--quiet"]);
    let a = ok(bams3().arg("query").arg(tmp.join("pipe.bams3")));
    let b = ok(bams3().arg("query").arg(&plain));
    assert!(a == b && !a.is_empty(), "sharded and plain datasets differ");
}
