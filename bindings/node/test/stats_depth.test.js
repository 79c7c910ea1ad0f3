'use strict';
// stats() against `bams3 stats --json`, depth() against `bams3 depth` with its options.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const bams3 = require('..');
const { realBams, dataset, rng, cli, collect } = require('./helpers');

const OPTIONS = [
  [{}, []],
  [{ all: true }, ['-a']],
  [{ minMapq: 20, deletions: true }, ['-Q', '20', '-J']],
  [{ minBaseq: 13, minLen: 30 }, ['-q', '13', '-l', '30']],
  [{ includeFlags: 0x400, excludeFlags: 0x2 }, ['-g', '1024', '-G', '2']],
];

function cliDepth(args) {
  const out = cli(['depth', ...args]).stdout;
  return out === '' ? [] : out.replace(/\n$/, '').split('\n');
}

for (const bam of realBams()) {
  const name = path.basename(bam);
  test(`stats and depth ${name}`, async (t) => {
    const loc = dataset(bam);
    const ds = await bams3.open(loc);

    await t.test('stats() = bams3 stats --json', async () => {
      assert.deepEqual(await ds.stats(), JSON.parse(cli(['stats', '--json', loc]).stdout));
    });

    // Every position of every reference: the smaller files (the largest has millions of positions).
    if (fs.statSync(bam).size < 5 << 20) await t.test('depth of every reference with reads', async () => {
      const got = (await collect(ds.depth())).map(([p, d, ref]) => `${ref}\t${p}\t${d}`);
      assert.deepEqual(got, cliDepth([loc]));
    });

    const r = rng(`depth ${name}`);
    const refs = ds.references.filter((x) => x.length > 0);
    for (let i = 0; i < (refs.length ? 5 : 0); i++) {
      const ref = r.pick(refs);
      const beg = r.int(1, Math.max(1, ref.length - 1));
      const region = `${ref.name}:${beg}-${Math.min(ref.length, beg + r.int(0, 50000))}`;
      const [opts, args] = OPTIONS[i % OPTIONS.length];
      await t.test(`depth ${region} ${JSON.stringify(opts)}`, async () => {
        const got = (await collect(ds.depth(region, opts))).map(([p, d, refName]) => `${refName}\t${p}\t${d}`);
        assert.deepEqual(got, cliDepth([...args, loc, region]));
      });
    }
  });
}
