'use strict';
// The record iterator's protocol (a hand-written async iterator, not an async generator):
// next() calls made without awaiting the previous one still give every record once, in order;
// return() and throw() end the iteration and release the native query; a query that fails to
// start rejects on the first next().

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const bams3 = require('..');
const { realBams, dataset, cli, cliLines } = require('./helpers');

const bam = realBams().find((b) => path.basename(b) === 'ex1.bam') || realBams()[0];
// Enough records for several batches of 4096.
const big = realBams().find((b) => path.basename(b) === 'na12878-chrM-Y-trunc.bam');

test('next() calls in flight together give the records of `bams3 query` once each, in order', async () => {
  assert.ok(big, 'na12878-chrM-Y-trunc.bam is in the test data');
  const ds = await bams3.open(dataset(big));
  const want = cliLines([dataset(big)]);
  assert.ok(want.length > 8192, `enough records to span batches (${want.length})`);
  const it = ds.query();
  const got = [];
  for (;;) {
    // Eight at once: some of them wait for a batch that another one is fetching.
    const results = await Promise.all(Array.from({ length: 8 }, () => it.next()));
    for (const r of results) if (!r.done) got.push(r.value.toSam());
    if (results.some((r) => r.done)) {
      assert.ok(results.every((r, i) => !r.done || results.slice(i).every((s) => s.done)), 'done only at the end');
      break;
    }
  }
  assert.equal(got.length, want.length);
  assert.deepEqual(got, want);
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('return() and throw() end the iteration and release the query', async () => {
  const ds = await bams3.open(dataset(bam));
  const a = ds.query();
  assert.equal((await a.next()).done, false);
  assert.deepEqual(await a.return(7), { value: 7, done: true });
  assert.equal(a._done, true, 'native query released');
  assert.deepEqual(await a.next(), { value: undefined, done: true });

  const b = ds.query();
  await b.next();
  await assert.rejects(b.throw(new Error('stop')), /stop/);
  assert.equal(b._done, true, 'native query released');
  assert.equal((await b.next()).done, true);

  // A break releases it too, and so does an exception in the loop body.
  const c = ds.query();
  for await (const r of c) { assert.ok(r.name); break; }
  assert.equal(c._done, true);
  const d = ds.query();
  await assert.rejects((async () => { for await (const r of d) throw new Error(r.name); })());
  assert.equal(d._done, true);

  // `await using` (Symbol.asyncDispose) where the runtime has it.
  if (typeof Symbol.asyncDispose === 'symbol') {
    const e = ds.query();
    await e.next();
    await e[Symbol.asyncDispose]();
    assert.equal(e._done, true);
  }
});

test('a query that cannot start rejects its first next() with a code, then is done', async () => {
  const ds = await bams3.open(dataset(bam));
  const it = ds.query('no_such_reference:1-10');
  const err = await it.next().then(() => assert.fail('should reject'), (e) => e);
  assert.equal(err.code, 'BAMS3_ERR_REGION', err.message);
  const it2 = ds.query(['seq1'], { minMapq: 'high' });
  const err2 = await it2.next().then(() => assert.fail('should reject'), (e) => e);
  assert.match(err2.code, /^BAMS3_ERR_/);
});

test('depth() iterates the same way: every position of `bams3 depth` once, and a break releases it', async () => {
  assert.ok(big, 'na12878-chrM-Y-trunc.bam is in the test data');
  const ds = await bams3.open(dataset(big));
  const want = cli(['depth', dataset(big)]).stdout.trim().split('\n');
  // A batch holds positions of one reference: several references mean several batches.
  const refs = new Set(want.map((l) => l.split('\t')[0]));
  assert.ok(refs.size >= 2, `positions on several references (${[...refs]})`);
  const it = ds.depth();
  const got = [];
  for (;;) {
    const results = await Promise.all(Array.from({ length: 4 }, () => it.next()));
    for (const r of results) if (!r.done) got.push(`${r.value[2]}\t${r.value[0]}\t${r.value[1]}`);
    if (results.some((r) => r.done)) break;
  }
  assert.equal(got.length, want.length);
  assert.deepEqual(got, want);
  const d = ds.depth();
  for await (const p of d) { assert.ok(p[1] >= 0); break; }
  assert.equal(d._done, true, 'native depth released');
});
