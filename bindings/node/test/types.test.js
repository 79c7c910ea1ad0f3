'use strict';
// `tsc --strict --noEmit` on a TypeScript file that uses the whole API, and the committed
// index.js / index.d.ts equal what `napi build` generates (test.sh generates them afresh into
// $BAMS3_NODE_GENERATED).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { run } = require('./helpers');

const PKG = path.resolve(__dirname, '..');

test('tsc --strict --noEmit on test/types/usage.ts', () => {
  const tsc = path.join(PKG, 'node_modules', '.bin', 'tsc');
  assert.ok(fs.existsSync(tsc), 'typescript is not installed: npm install in bindings/node');
  const r = run(tsc, ['-p', path.join(__dirname, 'types', 'tsconfig.json')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the committed loader and index.d.ts are what napi build generates', () => {
  const gen = process.env.BAMS3_NODE_GENERATED;
  assert.ok(gen, 'BAMS3_NODE_GENERATED is not set: run bindings/node/test.sh');
  for (const f of ['index.js', 'index.d.ts']) {
    const fresh = fs.readFileSync(path.join(gen, f), 'utf8');
    const committed = fs.readFileSync(path.join(PKG, f), 'utf8');
    assert.ok(fresh === committed, `${f} is stale: run \`npm run build\` in bindings/node and commit it`);
  }
});
