'use strict';
// Records from Node against `bams3 query` on datasets converted from the real test BAMs:
// >= 20 seeded random regions per file with filters, '*', several regions at once, the whole
// dataset; the fields of every record against the columns of its SAM line; count and
// queryBam against `bams3 query -c` / `-b`.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const zlib = require('node:zlib');
const bams3 = require('..');
const { realBams, dataset, rng, cliLines, cli, collect } = require('./helpers');

const REGIONS_PER_FILE = 20;
const FILTERS = [
  [{}, []],
  [{ minMapq: 20 }, ['-q', '20']],
  [{ requireFlags: 0x2 }, ['-f', '0x2']],
  [{ excludeFlags: 0x904 }, ['-F', '0x904']],
  [{ minMapq: 10, requireFlags: 0x1, excludeFlags: 0x400 }, ['-q', '10', '-f', '1', '-F', '1024']],
];

function cliFilter(f) {
  return FILTERS.find(([o]) => JSON.stringify(o) === JSON.stringify(f))[1];
}

// Regions around placed records, in every form samtools takes.
function randomQueries(name, lines, refs) {
  const r = rng(name);
  const placed = [];
  for (const l of lines) {
    const c = l.split('\t', 4);
    if (c[2] !== '*' && c[3] !== '0') placed.push([c[2], Number(c[3])]);
  }
  const qs = [];
  for (let i = 0; i < REGIONS_PER_FILE; i++) {
    const filter = r.pick(FILTERS)[0];
    let region;
    if (placed.length === 0 || i % 7 === 6) {
      region = refs.length ? r.pick(refs).name : '*';
    } else {
      const [ref, pos] = r.pick(placed);
      const beg = Math.max(1, pos - r.int(0, 3000));
      region = i % 5 === 4 ? `${ref}:${beg}` : `${ref}:${beg}-${beg + r.int(0, 20000)}`;
    }
    qs.push({ regions: [region], filter });
  }
  // Several regions at once (overlapping, out of order) and the unplaced reads.
  const several = [];
  for (let i = 0; i < 3; i++) several.push(qs[r.int(0, qs.length - 1)].regions[0]);
  qs.push({ regions: several, filter: {} });
  qs.push({ regions: ['*'], filter: {} });
  qs.push({ regions: [...several, '*'], filter: { excludeFlags: 0x904 } });
  return qs;
}

// Checks a record's fields against the columns of its own SAM line (from the CLI's formatter).
function checkFields(rec, line) {
  const c = line.split('\t');
  assert.equal(rec.name, c[0]);
  assert.equal(rec.flag, Number(c[1]));
  assert.equal(rec.refName, c[2]);
  assert.equal(rec.pos, Number(c[3]));
  assert.equal(rec.mapq, Number(c[4]));
  assert.equal(rec.cigar, c[5]);
  assert.equal(rec.nextRefName, c[6] === '=' ? c[2] : c[6]);
  assert.equal(rec.nextPos, Number(c[7]));
  assert.equal(rec.tlen, Number(c[8]));
  assert.equal(rec.seq, c[9]);
  assert.equal(rec.qual, c[10]);
  const tags = rec.tags;
  const seen = [];
  for (const t of c.slice(11)) {
    const [name, ty, ...rest] = t.split(':');
    const value = rest.join(':');
    const v = tags[name];
    seen.push(name);
    switch (ty) {
      case 'i': assert.ok(Number.isInteger(v), `${name} is an integer`); assert.equal(v, Number(value)); break;
      case 'f': assert.equal(typeof v, 'number'); assert.ok(Math.abs(v - Number(value)) <= 1e-5 * Math.max(1, Math.abs(v)), `${name} ${v} ~ ${value}`); break;
      case 'A': case 'Z': case 'H': assert.equal(v, value); break;
      case 'B': {
        const [sub, ...vals] = value.split(',');
        const ctor = { c: Int8Array, C: Uint8Array, s: Int16Array, S: Uint16Array, i: Int32Array, I: Uint32Array, f: Float32Array }[sub];
        assert.ok(v instanceof ctor, `${name} is a ${ctor.name}`);
        assert.equal(v.length, vals.length);
        vals.forEach((x, i) => assert.ok(Math.abs(v[i] - Number(x)) <= 1e-5 * Math.max(1, Math.abs(v[i])), `${name}[${i}]`));
        break;
      }
      default: assert.fail(`unexpected tag type ${ty}`);
    }
  }
  assert.deepEqual(Object.keys(tags).sort(), [...new Set(seen)].sort());
}

// The record bytes (each with block_size) of a BAM file written by `bams3 query -b`.
function bamRecords(bgzf) {
  const raw = zlib.gunzipSync(bgzf);
  let p = 4;
  const lText = raw.readInt32LE(p); p += 4 + lText;
  const nRef = raw.readInt32LE(p); p += 4;
  for (let i = 0; i < nRef; i++) { const l = raw.readInt32LE(p); p += 4 + l + 4; }
  return raw.subarray(p);
}

for (const bam of realBams()) {
  const name = path.basename(bam);
  test(`query ${name}`, async (t) => {
    const loc = dataset(bam);
    const ds = await bams3.open(loc);
    const whole = cliLines([loc]);

    await t.test('whole dataset: toSam() and every field', async () => {
      const recs = await collect(ds.query());
      assert.equal(recs.length, whole.length);
      recs.forEach((r, i) => {
        assert.equal(r.toSam(), whole[i]);
        checkFields(r, whole[i]);
      });
      assert.equal(await ds.count(), whole.length);
    });

    await t.test('header and references', () => {
      assert.equal(ds.header, cli(['query', '-H', loc]).stdout);
      const sq = ds.header.split('\n').filter((l) => l.startsWith('@SQ'));
      assert.deepEqual(ds.references.map((r) => `${r.name}:${r.length}`), sq.map((l) => {
        const f = Object.fromEntries(l.split('\t').slice(1).map((x) => [x.slice(0, 2), x.slice(3)]));
        return `${f.SN}:${f.LN}`;
      }));
    });

    for (const q of randomQueries(name, whole, ds.references)) {
      await t.test(`${q.regions.join(' ')} ${JSON.stringify(q.filter)}`, async () => {
        const args = [...cliFilter(q.filter), loc, ...q.regions];
        const want = cliLines(args);
        const got = (await collect(ds.query(q.regions.length === 1 ? q.regions[0] : q.regions, q.filter))).map((r) => r.toSam());
        assert.deepEqual(got, want);
        assert.equal(await ds.count(q.regions, q.filter), Number(cli(['query', '-c', ...args]).stdout.trim()));
        const bamOut = Buffer.concat(await collect(ds.queryBam(q.regions, q.filter)));
        assert.ok(bamOut.equals(bamRecords(cli(['query', '-b', ...args], { encoding: 'buffer' }).stdout)), 'queryBam = bams3 query -b');
      });
    }
  });
}
