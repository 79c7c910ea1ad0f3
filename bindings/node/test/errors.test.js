'use strict';
// Every error code from real bad inputs: a rejected promise whose `code` is the C ABI's name
// and whose message is the line the CLI prints (without its "bams3: " prefix).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const bams3 = require('..');
const { realBams, dataset, scratch, cli, collect } = require('./helpers');

const bam = realBams().find((b) => path.basename(b) === 'ex1.bam') || realBams()[0];

function cliMessage(args) {
  const r = cli(args, { allowFail: true });
  assert.notEqual(r.status, 0, `bams3 ${args.join(' ')} should fail`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  return lines[0].replace(/^bams3: /, '');
}

async function rejectsLikeCli(promise, code, args) {
  const err = await promise.then(() => assert.fail('should reject'), (e) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.code, code, err.message);
  if (args) assert.equal(err.message, cliMessage(args));
  return err;
}

function copyDataset(tag) {
  const dst = scratch(`${tag}.bams3`);
  fs.cpSync(dataset(bam), dst, { recursive: true });
  return dst;
}

function chunkFiles(dir) {
  return fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.chunk')).map((f) => path.join(dir, f));
}

test('BAMS3_ERR_NOT_FOUND: no dataset there', async () => {
  const loc = scratch('missing.bams3');
  await rejectsLikeCli(bams3.open(loc), 'BAMS3_ERR_NOT_FOUND', ['stats', loc]);
});

test('BAMS3_ERR_INCOMPLETE: no _metadata.json', async () => {
  const loc = copyDataset('incomplete');
  fs.rmSync(path.join(loc, '_metadata.json'));
  await rejectsLikeCli(bams3.open(loc), 'BAMS3_ERR_INCOMPLETE', ['stats', loc]);
});

test('BAMS3_ERR_REGION: unknown reference, bad coordinates', async () => {
  const loc = dataset(bam);
  const ds = await bams3.open(loc);
  for (const region of ['chrNotThere:1-100', 'seq1:200-100x']) {
    await rejectsLikeCli(collect(ds.query(region)), 'BAMS3_ERR_REGION', ['query', loc, region]);
    await rejectsLikeCli(ds.count(region), 'BAMS3_ERR_REGION', ['query', '-c', loc, region]);
    await rejectsLikeCli(collect(ds.queryBam([region])), 'BAMS3_ERR_REGION', ['query', '-b', loc, region]);
  }
  await rejectsLikeCli(collect(ds.depth('*')), 'BAMS3_ERR_REGION', ['depth', loc, '*']);
});

test('BAMS3_ERR_CORRUPT: a damaged chunk, a bad SAM line, bad BAM bytes', async () => {
  const loc = copyDataset('corrupt');
  const chunk = chunkFiles(loc)[0];
  const b = fs.readFileSync(chunk);
  for (let i = Math.floor(b.length / 2); i < Math.min(b.length, Math.floor(b.length / 2) + 64); i++) b[i] ^= 0x5a;
  fs.writeFileSync(chunk, b);
  const ds = await bams3.open(loc);
  await rejectsLikeCli(collect(ds.query()), 'BAMS3_ERR_CORRUPT', ['query', loc]);

  const w = await bams3.create(scratch('bad-input.bams3'), ds.header);
  await rejectsLikeCli(w.write('r1\tnot-a-flag\tseq1\t1\t60\t4M\t*\t0\t0\tACGT\t????'), 'BAMS3_ERR_CORRUPT');
  await rejectsLikeCli(w.write('r1\t0\tnoSuchRef\t1\t60\t4M\t*\t0\t0\tACGT\t????'), 'BAMS3_ERR_CORRUPT');
  await rejectsLikeCli(w.writeBam(Buffer.from([40, 0, 0, 0, 1, 2, 3])), 'BAMS3_ERR_CORRUPT');
  const short = Buffer.alloc(4 + 20);
  short.writeUInt32LE(20, 0);
  await rejectsLikeCli(w.writeBam(short), 'BAMS3_ERR_CORRUPT');
  // The writer stays usable after a rejected record.
  await w.write('r1\t0\tseq1\t1\t60\t4M\t*\t0\t0\tACGT\t????');
  assert.equal((await w.finish()).records, 1);
});

test('BAMS3_ERR_IO: a chunk that cannot be read', async () => {
  const loc = copyDataset('io');
  const chunk = chunkFiles(loc)[0];
  fs.rmSync(chunk);
  fs.mkdirSync(chunk);
  const ds = await bams3.open(loc);
  await rejectsLikeCli(collect(ds.query()), 'BAMS3_ERR_IO', ['query', loc]);
});

test('BAMS3_ERR_EXISTS: writing over a dataset', async () => {
  const loc = dataset(bam);
  const header = (await bams3.open(loc)).header;
  await rejectsLikeCli(bams3.create(loc, header), 'BAMS3_ERR_EXISTS', ['convert', bam, loc]);
  await rejectsLikeCli(bams3.convert(bam, loc), 'BAMS3_ERR_EXISTS', ['convert', bam, loc]);
});

test('BAMS3_ERR_INVALID: bad options and arguments', async () => {
  const loc = dataset(bam);
  const ds = await bams3.open(loc);
  await rejectsLikeCli(bams3.convert(bam, scratch('x.bams3'), { level: 99 }), 'BAMS3_ERR_INVALID', ['convert', '-l', '99', bam, scratch('y.bams3')]);
  await rejectsLikeCli(bams3.create(scratch('z.bams3'), ds.header, { chunkSize: 1000 }), 'BAMS3_ERR_INVALID');
  await rejectsLikeCli(ds.count('seq1', { minMapq: 300 }), 'BAMS3_ERR_INVALID');
  await rejectsLikeCli(collect(ds.query(42)), 'BAMS3_ERR_INVALID');
  await rejectsLikeCli(bams3.open(42), 'BAMS3_ERR_INVALID');
  await rejectsLikeCli(bams3.open('gs://bucket/x'), 'BAMS3_ERR_INVALID', ['stats', 'gs://bucket/x']);
});

test('BAMS3_ERR_MISUSE: a finished writer, a closed dataset', async () => {
  const loc = dataset(bam);
  const ds = await bams3.open(loc);
  const w = await bams3.create(scratch('done.bams3'), ds.header);
  await w.finish();
  await rejectsLikeCli(w.write('r1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\t????'), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(w.writeBam(Buffer.alloc(0)), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(w.finish(), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(w.abort(), 'BAMS3_ERR_MISUSE');
  ds.close();
  await rejectsLikeCli(ds.stats(), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(ds.count(), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(collect(ds.query()), 'BAMS3_ERR_MISUSE');
  await rejectsLikeCli(collect(ds.depth()), 'BAMS3_ERR_MISUSE');
});

test('breaking out of a loop, or throwing in it, releases the query', async () => {
  const ds = await bams3.open(dataset(bam));
  let n = 0;
  for await (const r of ds.query()) { if (++n === 5) break; assert.ok(r.name); }
  assert.equal(n, 5);
  await assert.rejects((async () => { for await (const r of ds.query()) throw new Error(`inside ${r.name}`); })(), /inside/);
  for await (const d of ds.depth()) { assert.ok(d[1] >= 0); break; }
  // The dataset still answers afterwards.
  assert.ok((await ds.count()) > 0);
});
