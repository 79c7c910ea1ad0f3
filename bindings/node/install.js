'use strict';
// npm install hook: keep the prebuilt addon when it loads; otherwise (or with
// BAMS3_BUILD_FROM_SOURCE=1) build it from the Rust sources in rust/ with cargo.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const HERE = __dirname;

function platformName() {
  const { platform, arch } = process;
  if (platform !== 'linux') return `${platform}-${arch}`;
  const glibc = process.report && process.report.getReport().header.glibcVersionRuntime;
  return `${platform}-${arch}-${glibc ? 'gnu' : 'musl'}`;
}

function libraryName() {
  if (process.platform === 'win32') return 'bams3_node.dll';
  if (process.platform === 'darwin') return 'libbams3_node.dylib';
  return 'libbams3_node.so';
}

// Loads the addon in a child process, so a failed dlopen here leaves nothing behind.
function loadError() {
  const r = spawnSync(process.execPath, ['-e', "require('./index.js').openDataset"], { cwd: HERE, encoding: 'utf8' });
  if (r.status === 0) return null;
  const lines = (r.stderr || '').split('\n').filter((l) => /Error/.test(l));
  return lines[0] || `exit status ${r.status}`;
}

function fail(message) {
  console.error(`bams3: ${message}`);
  process.exit(1);
}

function main() {
  // A checkout of the repository (not an installed tarball): `npm run build` makes the addon.
  if (fs.existsSync(path.join(HERE, 'src', 'lib.rs'))) return;
  const forced = process.env.BAMS3_BUILD_FROM_SOURCE === '1';
  if (!forced) {
    const why = loadError();
    if (why === null) return;
    console.error(`bams3: the prebuilt addon does not load here (${why}); building it from source`);
  }
  const manifest = path.join(HERE, 'rust', 'Cargo.toml');
  if (!fs.existsSync(manifest)) fail('this package has no Rust sources (rust/Cargo.toml) to build from');
  const cargo = process.env.CARGO || 'cargo';
  const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    fail('building from source needs cargo, which was not found: install Rust 1.94.1 or newer (https://rustup.rs) and install bams3 again');
  }
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(HERE, 'rust', 'target');
  const build = spawnSync(cargo, ['build', '--release', '--locked', '--manifest-path', manifest], {
    stdio: 'inherit',
    env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  });
  if (build.error || build.status !== 0) fail(`cargo build failed (${build.error ? build.error.message : `exit status ${build.status}`})`);
  const built = path.join(targetDir, 'release', libraryName());
  const dest = path.join(HERE, `bams3.${platformName()}.node`);
  fs.copyFileSync(built, dest);
  if (!process.env.CARGO_TARGET_DIR) fs.rmSync(targetDir, { recursive: true, force: true });
  const why = loadError();
  if (why !== null) fail(`the addon built from source does not load: ${why}`);
  console.error(`bams3: built ${path.basename(dest)} from source`);
}

main();
