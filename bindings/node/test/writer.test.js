'use strict';
// The writer and convert() against `bams3 convert` of the same input: the datasets must give
// the same `bams3 query -h` output and stats (but for the source and creation fields).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const bams3 = require('..');
const { realBams, dataset, scratch, cli, run, collect } = require('./helpers');

function samOf(bam) {
  const r = run('samtools', ['view', '-h', bam]);
  if (r.status !== 0) throw new Error(`samtools view ${bam}: ${r.stderr}`);
  return r.stdout;
}

function sameDataset(a, b) {
  assert.equal(cli(['query', '-h', a]).stdout, cli(['query', '-h', b]).stdout);
  const strip = (s) => {
    const j = JSON.parse(s);
    delete j.dataset; delete j.created; delete j.created_by; delete j.source;
    return j;
  };
  assert.deepEqual(strip(cli(['stats', '--json', a]).stdout), strip(cli(['stats', '--json', b]).stdout));
  cli(['validate', b]);
}

const bams = realBams();
const small = bams.filter((b) => fs.statSync(b).size < 2 << 20);

for (const bam of small) {
  test(`writer ${path.basename(bam)}: SAM lines = bams3 convert`, async () => {
    const sam = samOf(bam);
    const samFile = scratch('in.sam');
    fs.writeFileSync(samFile, sam);
    const want = scratch('cli.bams3');
    cli(['convert', '--quiet', '--chunk-size', '256K', samFile, want]);

    const lines = sam.split('\n').filter((l) => l !== '');
    const header = lines.filter((l) => l.startsWith('@')).map((l) => `${l}\n`).join('');
    const body = lines.filter((l) => !l.startsWith('@'));
    const out = scratch('node.bams3');
    const w = await bams3.create(out, header, { chunkSize: 262144, level: 3, threads: 2, memory: 256 << 20 });
    // One line, then arrays of several sizes, not awaited one by one: calls keep their order.
    const pending = [];
    if (body.length) pending.push(w.write(body[0]));
    for (let i = 1; i < body.length; i += 1000) pending.push(w.write(body.slice(i, i + 1000)));
    await Promise.all(pending);
    const summary = await w.finish();
    assert.equal(summary.records, body.length);
    assert.ok(fs.existsSync(path.join(out, '_metadata.json')));
    sameDataset(want, out);
  });
}

test('writeBam() of queryBam() buffers gives the same dataset', async () => {
  const bam = small[0];
  const src = dataset(bam);
  const ds = await bams3.open(src);
  const out = scratch('copy.bams3');
  const w = await bams3.create(out, ds.header);
  for await (const b of ds.queryBam()) await w.writeBam(b);
  await w.finish();
  assert.equal(cli(['query', '-h', out]).stdout, cli(['query', '-h', src]).stdout);
});

test('abort() leaves no _metadata.json', async () => {
  const ds = await bams3.open(dataset(small[0]));
  const out = scratch('aborted.bams3');
  const w = await bams3.create(out, ds.header);
  for await (const r of ds.query()) await w.write(r.toSam());
  await w.abort();
  assert.ok(!fs.existsSync(path.join(out, '_metadata.json')));
  const again = cli(['query', out], { allowFail: true });
  assert.notEqual(again.status, 0);
  await assert.rejects(w.write(ds.header.split('\n')[0]), { code: 'BAMS3_ERR_MISUSE' });
  await assert.rejects(w.finish(), { code: 'BAMS3_ERR_MISUSE' });
});

for (const bam of bams) {
  test(`convert() ${path.basename(bam)} = bams3 convert, with progress`, async () => {
    const out = scratch('converted.bams3');
    const seen = [];
    const summary = await bams3.convert(bam, out, { level: 3, threads: 2, memory: 256 << 20, onProgress: (n) => seen.push(n) });
    assert.ok(seen.length >= 1);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1]);
    assert.equal(seen[seen.length - 1], summary.records);
    sameDataset(dataset(bam), out);
  });
}

test('convert() stops when onProgress throws, leaving no dataset', async () => {
  const big = bams.reduce((a, b) => (fs.statSync(a).size >= fs.statSync(b).size ? a : b));
  const out = scratch('stopped.bams3');
  await assert.rejects(bams3.convert(big, out, { onProgress: () => { throw new Error('stop'); } }), /stop/);
  assert.ok(!fs.existsSync(path.join(out, '_metadata.json')));
});
