'use strict';
// `r.tags` objects across records whose tag sets change from one record to the next (the
// binding builds each object by a function made once per sequence of tag names, reused while
// consecutive records share it): every record's keys, in SAM order, and values.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const bams3 = require('..');
const { cli, scratch } = require('./helpers');

const HEADER = '@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:10000\n';
// Tag columns of consecutive records: the same set repeated, grown, shrunk, reordered, renamed
// at one position, emptied, with strings, arrays and floats among them.
const TAGS = [
  ['NM:i:1', 'AS:i:30', 'XS:i:20'],
  ['NM:i:2', 'AS:i:31', 'XS:i:21'],
  ['NM:i:3', 'AS:i:32', 'XS:i:22', 'MD:Z:3A5'],
  ['NM:i:4', 'AS:i:33'],
  ['AS:i:34', 'NM:i:5'],
  ['AS:i:35', 'XT:A:U'],
  [],
  ['ZB:B:s,-1,2,3', 'fq:f:0.5', 'RG:Z:grp one'],
  ['ZB:B:s,-1,2,3', 'fq:f:0.25', 'RG:Z:grp two'],
  ['NM:i:1', 'AS:i:30', 'XS:i:20'],
  ['NM:i:0'],
];

test('tags keep their names, order and values as the tag set changes between records', async () => {
  const sam = scratch('tags.sam');
  const lines = TAGS.map((t, i) => ['r' + i, '0', 'c1', String(100 + i), '60', '4M', '*', '0', '0', 'ACGT', 'IIII', ...t].join('\t'));
  fs.writeFileSync(sam, HEADER + lines.join('\n') + '\n');
  const out = scratch('tags.bams3');
  cli(['convert', '--quiet', sam, out]);
  const ds = await bams3.open(out);
  const got = [];
  for await (const r of ds.query()) got.push(r);
  assert.equal(got.length, TAGS.length);
  got.forEach((r, i) => {
    assert.equal(r.toSam(), lines[i]);
    const tags = r.tags;
    assert.deepEqual(Object.keys(tags), TAGS[i].map((t) => t.slice(0, 2)), `record ${i}`);
    for (const t of TAGS[i]) {
      const [name, ty, ...rest] = t.split(':');
      const value = rest.join(':');
      if (ty === 'i' || ty === 'f') assert.equal(tags[name], Number(value), `${name} of record ${i}`);
      else if (ty === 'B') assert.deepEqual(Array.from(tags[name]), value.split(',').slice(1).map(Number));
      else assert.equal(tags[name], value);
    }
  });
  // Reading them again in another order gives the same objects (no state left from the last).
  for (let i = got.length - 1; i >= 0; i--) {
    assert.deepEqual(Object.keys(got[i].tags), TAGS[i].map((t) => t.slice(0, 2)), `again, record ${i}`);
  }
});
