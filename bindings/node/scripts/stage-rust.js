'use strict';
// prepack: stages into rust/ what a from-source install needs, with no path outside the
// package: this crate and bams3-core, a standalone Cargo.toml (an empty [workspace], so cargo
// does not attach it to a workspace in the consumer's tree) and the workspace's Cargo.lock
// pruned to these two crates (install.js builds with --locked).

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const PKG = path.resolve(__dirname, '..');
const ROOT = path.resolve(PKG, '..', '..');
const OUT = path.join(PKG, 'rust');

function workspacePackage() {
  const text = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const section = text.split('[workspace.package]')[1].split(/\n\[/)[0];
  const values = {};
  for (const m of section.matchAll(/^(\w[\w-]*)\s*=\s*(.+)$/gm)) values[m[1]] = m[2].trim();
  return values;
}

// `key.workspace = true` -> the workspace's value.
function inline(manifest, ws) {
  return manifest.replace(/^(\w[\w-]*)\.workspace\s*=\s*true$/gm, (all, key) => {
    if (!(key in ws)) throw new Error(`workspace.package has no ${key}`);
    return `${key} = ${ws[key]}`;
  });
}

function copyDir(from, to) {
  // Skips build output (a `target` directory), not sources whose names merely start so
  // (bams3-core/src/region/targets.rs).
  fs.cpSync(from, to, { recursive: true, filter: (src) => path.basename(src) !== 'target' });
}

fs.rmSync(OUT, { recursive: true, force: true });
fs.mkdirSync(OUT);
const ws = workspacePackage();

copyDir(path.join(PKG, 'src'), path.join(OUT, 'src'));
fs.copyFileSync(path.join(PKG, 'build.rs'), path.join(OUT, 'build.rs'));
let manifest = inline(fs.readFileSync(path.join(PKG, 'Cargo.toml'), 'utf8'), ws)
  .replace('path = "../../bams3-core"', 'path = "bams3-core"');
const release = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8').split('[profile.release]')[1].split(/\n\[/)[0]
  // No debug info: a smaller addon and a faster build for consumers.
  .replace(/^debug\s*=.*\n/m, '');
manifest += `\n# Standalone: not part of any workspace around the installed package.\n[workspace]\n\n[profile.release]${release.trimEnd()}\n`;
fs.writeFileSync(path.join(OUT, 'Cargo.toml'), manifest);

copyDir(path.join(ROOT, 'bams3-core', 'src'), path.join(OUT, 'bams3-core', 'src'));
fs.writeFileSync(path.join(OUT, 'bams3-core', 'Cargo.toml'), inline(fs.readFileSync(path.join(ROOT, 'bams3-core', 'Cargo.toml'), 'utf8'), ws));

// The workspace's lock, pruned: cargo drops the entries no longer reachable and keeps every
// version it had, without the network.
fs.copyFileSync(path.join(ROOT, 'Cargo.lock'), path.join(OUT, 'Cargo.lock'));
execFileSync('cargo', ['metadata', '--offline', '--format-version', '1', '--manifest-path', path.join(OUT, 'Cargo.toml')], { stdio: ['ignore', 'ignore', 'inherit'] });
const lock = fs.readFileSync(path.join(OUT, 'Cargo.lock'), 'utf8');
for (const gone of ['name = "bams3-cli"', 'name = "bams3-ffi"']) {
  if (lock.includes(gone)) throw new Error(`rust/Cargo.lock still lists ${gone}`);
}
console.error(`bams3: staged the Rust sources into ${path.relative(process.cwd(), OUT) || OUT}`);
