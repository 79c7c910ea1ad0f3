'use strict';
// The `bams3` package: promises and async iterators over the native addon (index.js, generated
// by napi-rs). Records cross from Rust in batches — one Buffer of BAM records and one of SAM
// lines per ~4096 records — and each Record decodes only the fields that are read.

const native = require('./index.js');

const CG_IN_SAM = '\tCG:B:';

// Tag names by their two bytes (b0 << 8 | b1), made once each; an array, because indexing it
// is cheaper than a Map lookup, and a tag is looked up for every record.
const TAG_NAMES = new Array(65536).fill(null);
function tagName(b0, b1) {
  const k = (b0 << 8) | b1;
  let n = TAG_NAMES[k];
  if (n === null) {
    n = String.fromCharCode(b0, b1);
    TAG_NAMES[k] = n;
  }
  return n;
}

function codedError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

// Runs `fn` (which returns a native promise) so that a synchronous throw — napi-rs checks
// argument types before any work starts — becomes a rejected promise with a code too.
function call(fn) {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    if (!e.code || !String(e.code).startsWith('BAMS3_ERR_')) e.code = 'BAMS3_ERR_INVALID';
    return Promise.reject(e);
  }
}

// A promise that is awaited later: mark it handled now, so that a rejection while the consumer
// is busy is not reported as unhandled. Awaiting it still throws.
function ahead(p) {
  p.catch(() => {});
  return p;
}

function regionList(regions) {
  if (regions === undefined || regions === null) return [];
  if (typeof regions === 'string') return [regions];
  if (Array.isArray(regions) && regions.every((r) => typeof r === 'string')) return regions;
  throw codedError('BAMS3_ERR_INVALID', 'regions must be a string, an array of strings or undefined');
}

function objectOrUndefined(o, what) {
  if (o === undefined || o === null) return undefined;
  if (typeof o !== 'object') throw codedError('BAMS3_ERR_INVALID', `${what} must be an object`);
  return o;
}

const TYPED = {
  c: [Int8Array, 1], C: [Uint8Array, 1], s: [Int16Array, 2], S: [Uint16Array, 2],
  i: [Int32Array, 4], I: [Uint32Array, 4], f: [Float32Array, 4],
};

// A record's tags object is built by a function made once per sequence of tag names, whose
// object literal V8 creates with its final shape in one step: adding ten properties one by one
// with keyed stores cost ten times as much (150 against 15 ns a record, node microbenchmark).
// Consecutive records nearly always have the tags of the one before, so the names are compared
// with the previous record's (interned strings: identity checks) before any lookup.
const SHAPES = new Map();
const MAX_SHAPES = 4096; // beyond this (odd data), build objects the slow way rather than grow
const tagNames = [];
const tagValues = [];
let shapeCount = -1;
let shape = null;

function keyedShape(names) {
  return (v) => {
    const tags = {};
    for (let i = 0; i < names.length; i++) tags[names[i]] = v[i];
    return tags;
  };
}

function shapeOf(names) {
  const key = names.join(',');
  let make = SHAPES.get(key);
  if (make !== undefined) return make;
  try {
    // Tag names are two bytes: JSON quoting keeps any of them a plain property name.
    // eslint-disable-next-line no-new-func
    make = new Function('v', `return {${names.map((n, i) => `${JSON.stringify(n)}: v[${i}]`).join(', ')}};`);
  } catch (e) {
    make = keyedShape(names); // code generation from strings disallowed in this process
  }
  if (SHAPES.size < MAX_SHAPES) SHAPES.set(key, make);
  return make;
}

function decodeTags(bam, dv, start, end, line) {
  let n = 0;
  let p = start;
  while (p + 3 <= end) {
    const name = tagName(bam[p], bam[p + 1]);
    const ty = bam[p + 2];
    p += 3;
    let v;
    switch (ty) {
      case 0x41: v = String.fromCharCode(bam[p]); p += 1; break; // A
      case 0x63: v = dv.getInt8(p); p += 1; break; // c
      case 0x43: v = bam[p]; p += 1; break; // C
      case 0x73: v = dv.getInt16(p, true); p += 2; break; // s
      case 0x53: v = dv.getUint16(p, true); p += 2; break; // S
      case 0x69: v = dv.getInt32(p, true); p += 4; break; // i
      case 0x49: v = dv.getUint32(p, true); p += 4; break; // I
      case 0x66: v = dv.getFloat32(p, true); p += 4; break; // f
      case 0x5a: // Z
      case 0x48: { // H
        const q = bam.indexOf(0, p);
        const e = q < 0 || q > end ? end : q;
        v = bam.toString('utf8', p, e);
        p = e + 1;
        break;
      }
      case 0x42: { // B
        const sub = String.fromCharCode(bam[p]);
        const n = dv.getUint32(p + 1, true);
        const [Ctor, size] = TYPED[sub] || [];
        if (!Ctor) throw codedError('BAMS3_ERR_CORRUPT', `tag ${name}: unknown B subtype '${sub}'`);
        const from = bam.byteOffset + p + 5;
        v = new Ctor(bam.buffer.slice(from, from + n * size));
        p += 5 + n * size;
        // A long CIGAR's CG tag is shown as the CIGAR itself, as htslib (and toSam()) do.
        if (name === 'CG' && !line.includes(CG_IN_SAM)) continue;
        break;
      }
      default:
        throw codedError('BAMS3_ERR_CORRUPT', `tag ${name}: unknown type '${String.fromCharCode(ty)}'`);
    }
    if (tagNames[n] !== name) {
      tagNames[n] = name;
      shapeCount = -1; // at once, so that a throw below leaves no stale shape behind
    }
    tagValues[n] = v;
    n++;
  }
  if (n !== shapeCount) {
    shape = shapeOf(tagNames.slice(0, n));
    shapeCount = n;
  }
  return shape(tagValues);
}

/** One alignment record. Fields are decoded when read. */
class Record {
  constructor(batch, i, at) {
    this._b = batch;
    this._i = i;
    this._at = at; // offset of the record's block_size in batch.bam
    // Where the SAM line's 1st, 5th, 6th, 9th, 10th and 11th tabs are (-1: not located yet).
    // Plain fields, not a typed array: one allocation fewer per record.
    this._t1 = -1;
    this._t5 = 0;
    this._t6 = 0;
    this._t9 = 0;
    this._t10 = 0;
    this._t11 = 0;
  }

  // The SAM line, with the tabs around QNAME, CIGAR, SEQ and QUAL located (once). A line
  // from bams3 always has its eleven mandatory columns; only the tab after QUAL is missing
  // when there are no tags.
  _line() {
    const line = this._b.lines[this._i];
    if (this._t1 >= 0) return line;
    const t1 = line.indexOf('\t');
    let p = line.indexOf('\t', t1 + 1);
    p = line.indexOf('\t', p + 1);
    p = line.indexOf('\t', p + 1);
    const t5 = line.indexOf('\t', p + 1);
    const t6 = line.indexOf('\t', t5 + 1);
    p = line.indexOf('\t', t6 + 1);
    p = line.indexOf('\t', p + 1);
    const t9 = line.indexOf('\t', p + 1);
    const t10 = line.indexOf('\t', t9 + 1);
    const t11 = line.indexOf('\t', t10 + 1);
    this._t1 = t1;
    this._t5 = t5;
    this._t6 = t6;
    this._t9 = t9;
    this._t10 = t10;
    this._t11 = t11 < 0 ? line.length : t11;
    return line;
  }

  _ref(id) { return id < 0 ? '*' : this._b.refNames[id]; }

  // From the SAM line, not the BAM bytes: a substring is cheaper than a Buffer decode.
  get name() {
    const line = this._b.lines[this._i];
    return line.substring(0, this._t1 < 0 ? line.indexOf('\t') : this._t1);
  }
  get flag() { return this._b.dv.getUint16(this._at + 18, true); }
  get refName() { return this._ref(this._b.dv.getInt32(this._at + 4, true)); }
  get pos() { return this._b.dv.getInt32(this._at + 8, true) + 1; }
  get mapq() { return this._b.bam[this._at + 13]; }
  get cigar() {
    const line = this._line();
    return line.substring(this._t5 + 1, this._t6);
  }
  get nextRefName() { return this._ref(this._b.dv.getInt32(this._at + 24, true)); }
  get nextPos() { return this._b.dv.getInt32(this._at + 28, true) + 1; }
  get tlen() { return this._b.dv.getInt32(this._at + 32, true); }
  get seq() {
    const line = this._line();
    return line.substring(this._t9 + 1, this._t10);
  }
  get qual() {
    const line = this._line();
    return line.substring(this._t10 + 1, this._t11);
  }
  get tags() {
    const { bam, dv } = this._b;
    const a = this._at;
    const lName = bam[a + 12];
    const nCigar = dv.getUint16(a + 16, true);
    const lSeq = dv.getInt32(a + 20, true);
    const start = a + 36 + lName + 4 * nCigar + ((lSeq + 1) >> 1) + lSeq;
    const end = a + 4 + dv.getUint32(a, true);
    return decodeTags(bam, dv, start, end, this._b.lines[this._i]);
  }

  /** The line `bams3 query` prints for this record, without the newline. */
  toSam() { return this._b.lines[this._i]; }

  /** The record's BAM encoding, with its block_size prefix (a copy). */
  toBam() {
    const n = 4 + this._b.dv.getUint32(this._at, true);
    return Buffer.from(this._b.bam.subarray(this._at, this._at + n));
  }

  toJSON() {
    const { name, flag, refName, pos, mapq, cigar, nextRefName, nextPos, tlen, seq, qual } = this;
    const tags = {};
    for (const [k, v] of Object.entries(this.tags)) tags[k] = ArrayBuffer.isView(v) ? Array.from(v) : v;
    return { name, flag, refName, pos, mapq, cigar, nextRefName, nextPos, tlen, seq, qual, tags };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return Object.assign(Object.create({ constructor: Record }), this.toJSON());
  }
}

// The items of a native query's batches (records, depth positions or BAM buffers): a hand-written async
// iterator rather than an async generator, whose every `yield` costs extra promise ticks
// (measured: 0.5 s against 1.0-1.3 s to hand out 4.4M records). The next batch is requested
// while the caller works through the current one, and the native query is released as soon as
// the loop ends, however it ends (for-await calls `return()` on `break` and on an exception).
// Subclasses say how a batch is taken up (`_load`, returning its number of items) and how its
// next item is made (`_take`).
class BatchIterator {
  constructor(start) {
    this._start = start;
    this._native = null;
    this._pending = null;
    this._batch = null;
    this._i = 0;
    this._count = 0;
    this._done = false;
    this._refilling = null; // a refill in progress: later next() calls wait for it
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  next() {
    if (this._refilling !== null) return this._refilling.then(() => this.next());
    if (this._i < this._count) return Promise.resolve({ value: this._take(), done: false });
    const p = this._refill();
    this._refilling = p.then(() => { this._refilling = null; }, () => { this._refilling = null; });
    return p;
  }

  async _refill() {
    if (this._done) return { value: undefined, done: true };
    if (this._native === null) {
      try {
        this._native = this._start();
      } catch (e) {
        this._done = true;
        return call(() => { throw e; });
      }
      this._pending = ahead(this._native.next());
    }
    try {
      for (;;) {
        const b = await this._pending;
        if (b === null || b === undefined) {
          await this._finish();
          return { value: undefined, done: true };
        }
        this._pending = ahead(this._native.next());
        const count = this._load(b);
        if (count === 0) continue;
        this._i = 0;
        this._count = count;
        return { value: this._take(), done: false };
      }
    } catch (e) {
      await this._finish();
      throw e;
    }
  }

  async _finish() {
    if (this._done) return;
    this._done = true;
    this._batch = null;
    this._count = 0;
    this._i = 0;
    if (this._native !== null) await this._native.close();
  }

  /** Ends the iteration and releases the native query (what `break` in a for-await does). */
  async return(value) {
    if (this._refilling !== null) await this._refilling;
    await this._finish();
    return { value, done: true };
  }

  /** Ends the iteration, releases the native query and rejects with `error`. */
  async throw(error) {
    await this.return();
    throw error;
  }
}

// `await using it = ds.query(...)` releases the query too, where the runtime has the symbol.
if (typeof Symbol.asyncDispose === 'symbol') {
  BatchIterator.prototype[Symbol.asyncDispose] = function dispose() {
    return this.return().then(() => {});
  };
}

/** The records of `query()`. */
class Records extends BatchIterator {
  constructor(start, refNames) {
    super(start);
    this._refNames = refNames;
    this._at = 0;
  }

  _load(b) {
    const bam = b.bam;
    this._batch = {
      bam,
      dv: new DataView(bam.buffer, bam.byteOffset, bam.byteLength),
      lines: b.sam.split('\n'),
      refNames: this._refNames,
    };
    this._at = 0;
    return b.count;
  }

  _take() {
    const b = this._batch;
    const r = new Record(b, this._i, this._at);
    this._at += 4 + b.dv.getUint32(this._at, true);
    this._i++;
    return r;
  }
}

/** The `[pos, depth, refName]` positions of `depth()`. */
class Depths extends BatchIterator {
  _load(b) {
    this._batch = b;
    return b.pos.length;
  }

  _take() {
    const { pos, depth, refName } = this._batch;
    const i = this._i++;
    return [pos[i], depth[i], refName];
  }
}

/** The Buffers of `queryBam()`: one per batch. */
class BamBuffers extends BatchIterator {
  _load(b) {
    this._batch = b.bam;
    return 1;
  }

  _take() {
    this._i++;
    return this._batch;
  }
}

/** An open dataset (see `open`). */
class Dataset {
  constructor(n) {
    this._n = n;
    /** The SAM header text. */
    this.header = n.header();
    /** The references: [{ name, length }]. */
    this.references = n.references();
    this._refNames = this.references.map((r) => r.name);
  }

  /** The object `bams3 stats --json` prints. */
  stats() {
    return call(() => this._n.stats()).then(JSON.parse);
  }

  /** The number `bams3 query -c` prints for these regions (none: the whole dataset). */
  count(regions, filter) {
    return call(() => this._n.count(regionList(regions), objectOrUndefined(filter, 'filter')));
  }

  /** Records overlapping the regions (none: every record), as `bams3 query` prints them. */
  query(regions, filter) {
    return new Records(() => this._n.query(regionList(regions), objectOrUndefined(filter, 'filter'), false),
      this._refNames);
  }

  /** The same records as Buffers of BAM records (each with its block_size), many per Buffer. */
  queryBam(regions, filter) {
    return new BamBuffers(() => this._n.query(regionList(regions), objectOrUndefined(filter, 'filter'), true));
  }

  /** `[pos, depth, refName]` for each position, as `bams3 depth` prints them. */
  depth(regions, options) {
    return new Depths(() => this._n.depth(regionList(regions), objectOrUndefined(options, 'options')));
  }

  /** Later calls reject with BAMS3_ERR_MISUSE. */
  close() {
    this._n.close();
  }
}

/** Opens a committed dataset: a directory or s3://bucket/prefix. */
function open(location, options) {
  return call(() => native.openDataset(location, objectOrUndefined(options, 'options'))).then((n) => new Dataset(n));
}

/** A dataset being written (see `create`). Calls run in the order they are made. */
class Writer {
  constructor(n) {
    this._n = n;
    this._tail = Promise.resolve();
  }

  _then(fn) {
    const p = this._tail.then(() => call(fn));
    this._tail = p.catch(() => {});
    return p;
  }

  /** Adds one SAM line or an array of them. */
  write(lines) {
    return this._then(() => {
      if (typeof lines === 'string') lines = lines.split('\n').filter((l, i, a) => l !== '' || i < a.length - 1);
      if (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string')) {
        throw codedError('BAMS3_ERR_INVALID', 'write() takes a SAM line or an array of SAM lines');
      }
      return this._n.writeSam(lines);
    });
  }

  /** Adds BAM records, each with its block_size prefix (what queryBam() yields). */
  writeBam(buffer) {
    return this._then(() => {
      if (!(buffer instanceof Uint8Array)) throw codedError('BAMS3_ERR_INVALID', 'writeBam() takes a Buffer');
      return this._n.writeBam(Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength));
    });
  }

  /** Commits the dataset (`_metadata.json` last). */
  finish() {
    return this._then(() => this._n.finish());
  }

  /** Removes what was written. */
  abort() {
    return this._then(() => this._n.abort());
  }
}

/** Starts a new dataset at `location` (a path that must not exist, or s3://bucket/prefix). */
function create(location, headerText, options) {
  return call(() => native.createWriter(location, headerText, objectOrUndefined(options, 'options'))).then((n) => new Writer(n));
}

/** Converts a BAM or SAM file (or s3://bucket/key) into a new dataset, as `bams3 convert`. */
async function convert(input, output, options) {
  const opts = { ...objectOrUndefined(options, 'options') };
  const onProgress = opts.onProgress;
  delete opts.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw codedError('BAMS3_ERR_INVALID', 'onProgress must be a function');
  }
  const c = await call(() => native.startConvert(input, output, opts));
  for (;;) {
    const step = await c.step();
    if (onProgress) {
      try {
        onProgress(step.records);
      } catch (e) {
        if (!step.done) await c.abort();
        throw e;
      }
    }
    if (step.done) return step.summary;
  }
}

module.exports = { open, create, convert, Dataset, Writer, Record };
