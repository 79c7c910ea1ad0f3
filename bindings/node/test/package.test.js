'use strict';
// `npm pack` gives bams3-<version>.tgz, which installs into an empty project both ways: with
// the prebuilt addon inside it (no cargo on PATH), and built from the Rust sources it carries
// (BAMS3_BUILD_FROM_SOURCE=1); without cargo that build fails with a one-line message.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { realBams, dataset, scratch, cli, run } = require('./helpers');

const PKG = path.resolve(__dirname, '..');
const VERSION = require('../package.json').version;
const NODE_DIR = path.dirname(process.execPath);
// A PATH with node and npm but no cargo (rustup installs it in ~/.cargo/bin).
const NO_CARGO = [NODE_DIR, '/usr/local/bin', '/usr/bin', '/bin'].filter((d) => !fs.existsSync(path.join(d, 'cargo'))).join(':');
const NPM = fs.existsSync(path.join(NODE_DIR, 'npm')) ? path.join(NODE_DIR, 'npm') : 'npm';

let tarball;

function packOnce() {
  if (tarball) return tarball;
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'bams3-pack-'));
  const r = run(NPM, ['pack', '--pack-destination', dest], { env: { ...process.env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  tarball = path.join(dest, `bams3-${VERSION}.tgz`);
  assert.ok(fs.existsSync(tarball), `npm pack made ${fs.readdirSync(dest)}`);
  return tarball;
}

function consumer() {
  const dir = scratch('consumer');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, allowScripts: { bams3: true } }, null, 2));
  return dir;
}

function npmInstall(dir, env) {
  return run(NPM, ['install', '--no-audit', '--no-fund', '--foreground-scripts', packOnce()], { env: { ...process.env, ...env }, encoding: 'utf8', cwd: dir });
}

// Uses the installed package from the consumer's directory against the CLI.
function usesInstalled(dir, env) {
  const bam = realBams().find((b) => path.basename(b) === 'ex1.bam') || realBams()[0];
  const loc = dataset(bam);
  const script = `const b = require('bams3'); (async () => { const ds = await b.open(${JSON.stringify(loc)}); let n = 0; for await (const r of ds.query()) { n++; if (!r.toSam()) throw new Error('empty line'); } console.log(n, await ds.count()); })().catch((e) => { console.error(e.code, e.message); process.exit(1); });`;
  fs.writeFileSync(path.join(dir, 'use.js'), script);
  const r = run(process.execPath, ['use.js'], { env: { ...process.env, ...env }, cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  const n = Number(cli(['query', '-c', loc]).stdout.trim());
  assert.equal(r.stdout.trim(), `${n} ${n}`);
}

function spawnSyncCwd(cmd, args, cwd) {
  const r = require('node:child_process').spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('npm pack: the prebuilt addon, the Rust sources, no optionalDependencies', () => {
  const files = spawnSyncCwd('tar', ['tzf', packOnce()], PKG).split('\n');
  for (const f of ['bams3.js', 'bams3.d.ts', 'index.js', 'index.d.ts', 'install.js', 'bams3.linux-x64-gnu.node', 'rust/Cargo.toml', 'rust/Cargo.lock', 'rust/build.rs', 'rust/src/lib.rs', 'rust/bams3-core/Cargo.toml', 'rust/bams3-core/src/lib.rs', 'package.json', 'README.md']) {
    assert.ok(files.includes(`package/${f}`), `the tarball lacks ${f}`);
  }
  assert.ok(!files.some((f) => f.startsWith('package/test/') || f.includes('/target/') || f.includes('node_modules')), 'no tests or build output');
  const manifest = spawnSyncCwd('tar', ['xzfO', packOnce(), 'package/package.json'], PKG);
  const pkg = JSON.parse(manifest);
  assert.equal(pkg.name, 'bams3');
  assert.equal(pkg.optionalDependencies, undefined);
  assert.equal(pkg.dependencies, undefined);
  const cargo = spawnSyncCwd('tar', ['xzfO', packOnce(), 'package/rust/Cargo.toml'], PKG);
  assert.match(cargo, /^\[workspace\]$/m);
  assert.doesNotMatch(cargo, /\.\.\/|workspace = true/);
  const lock = spawnSyncCwd('tar', ['xzfO', packOnce(), 'package/rust/Cargo.lock'], PKG);
  assert.match(lock, /name = "bams3-node"/);
  assert.doesNotMatch(lock, /name = "bams3-cli"|name = "bams3-ffi"/);
});

test('installs with the prebuilt addon, no cargo needed', () => {
  const dir = consumer();
  const r = npmInstall(dir, { PATH: NO_CARGO, BAMS3_BUILD_FROM_SOURCE: '' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /building it from source|Compiling/);
  usesInstalled(dir, { PATH: NO_CARGO });
});

test('BAMS3_BUILD_FROM_SOURCE=1 without cargo: a one-line message', () => {
  const dir = consumer();
  const r = npmInstall(dir, { PATH: NO_CARGO, BAMS3_BUILD_FROM_SOURCE: '1' });
  assert.notEqual(r.status, 0);
  const msg = (r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('bams3: '));
  assert.equal(msg.length, 1, r.stdout + r.stderr);
  assert.match(msg[0], /needs cargo, which was not found/);
});

test('BAMS3_BUILD_FROM_SOURCE=1: built from the sources in the tarball', { timeout: 30 * 60 * 1000 }, () => {
  const dir = consumer();
  // A persistent target directory: the registry crates are built once per machine, not per run.
  const target = process.env.BAMS3_NODE_SOURCE_TARGET || path.join(os.homedir(), '.cache', 'bams3', 'node-from-source-target');
  const t0 = Date.now();
  const r = npmInstall(dir, { BAMS3_BUILD_FROM_SOURCE: '1', CARGO_TARGET_DIR: target, CARGO_BUILD_JOBS: '2' });
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /Compiling bams3-node/);
  assert.match(r.stdout + r.stderr, /bams3: built bams3\.linux-x64-gnu\.node from source/);
  console.log(`# from-source install took ${secs} s (CARGO_TARGET_DIR=${target})`);
  usesInstalled(dir, {});
});
