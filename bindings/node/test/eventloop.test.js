'use strict';
// The event loop keeps running while a whole dataset is read: a 5 ms setInterval keeps
// ticking, and no gap between ticks is long.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const bams3 = require('..');
const { realBams, dataset } = require('./helpers');

test('setInterval keeps ticking during a whole-dataset query', async () => {
  const bam = realBams().reduce((a, b) => (fs.statSync(a).size >= fs.statSync(b).size ? a : b));
  const ds = await bams3.open(dataset(bam));
  const ticks = [];
  const timer = setInterval(() => ticks.push(performance.now()), 5);
  const t0 = performance.now();
  let n = 0;
  let bases = 0;
  for (let pass = 0; pass < 3; pass++) {
    for await (const r of ds.query()) {
      n++;
      bases += r.seq.length;
    }
  }
  const t1 = performance.now();
  clearInterval(timer);
  assert.ok(n > 100000 && bases > 0);
  const stamps = [t0, ...ticks, t1];
  let gap = 0;
  for (let i = 1; i < stamps.length; i++) gap = Math.max(gap, stamps[i] - stamps[i - 1]);
  const ms = t1 - t0;
  assert.ok(ticks.length >= ms / 5 / 4, `${ticks.length} ticks in ${ms.toFixed(0)} ms`);
  assert.ok(gap < 150, `longest gap between ticks ${gap.toFixed(1)} ms (over ${ms.toFixed(0)} ms, ${n} records)`);
});
