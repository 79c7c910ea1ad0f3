'use strict';
// Shared by the tests: the CLI oracle (target/release/bams3), the real test BAMs, datasets
// converted from them (once per run, shared by the test files), and a seeded random source.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BAMS3 = process.env.BAMS3_BIN || path.join(ROOT, 'target', 'release', 'bams3');
const DATA = process.env.BAMS3_TEST_DATA || path.join(os.homedir(), '.cache', 'bams3', 'test-data');
// test.sh sets BAMS3_NODE_TMP so that every test file shares the converted datasets.
const TMP = process.env.BAMS3_NODE_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'bams3-node-'));

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 30, encoding: opts.encoding ?? 'utf8', env: opts.env ?? process.env, input: opts.input, cwd: opts.cwd });
  if (r.error) throw r.error;
  return r;
}

/** Runs the CLI; throws with its stderr unless it exits 0 (or `allowFail`). */
function cli(args, opts = {}) {
  const r = run(BAMS3, args, opts);
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`bams3 ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return r;
}

/** The real BAMs of the MANIFEST (fails when the test data is missing). */
function realBams() {
  const manifest = path.join(DATA, 'MANIFEST');
  if (!fs.existsSync(manifest)) throw new Error(`${manifest} is missing: run tests/fetch-data.sh`);
  return fs.readFileSync(manifest, 'utf8').split('\n').filter(Boolean).map((n) => path.join(DATA, n));
}

/** A dataset converted from `bam` by the CLI, made once per run. */
function dataset(bam, tag = 'default', extra = []) {
  const out = path.join(TMP, `${path.basename(bam, '.bam')}.${tag}.bams3`);
  if (!fs.existsSync(path.join(out, '_metadata.json'))) {
    const work = `${out}.tmp${process.pid}`;
    fs.rmSync(work, { recursive: true, force: true });
    cli(['convert', '--quiet', ...extra, bam, work]);
    try {
      fs.renameSync(work, out);
    } catch (e) {
      // Another test file made it first.
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  return out;
}

/** A fresh path under the shared temporary directory. */
function scratch(name) {
  return path.join(fs.mkdtempSync(path.join(TMP, 'w-')), name);
}

/** Seeded PRNG (mulberry32) from a string (FNV-1a), so every file gets its own fixed regions. */
function rng(name) {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(name)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  let a = h;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), pick: (a) => a[Math.floor(next() * a.length)] };
}

/** SAM lines of a CLI query (without the newlines). */
function cliLines(args) {
  const out = cli(['query', ...args]).stdout;
  return out === '' ? [] : out.replace(/\n$/, '').split('\n');
}

async function collect(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

module.exports = { ROOT, BAMS3, DATA, TMP, run, cli, realBams, dataset, scratch, rng, cliLines, collect };
