// Uses the whole public API under `tsc --strict --noEmit` (see types.test.js).
import * as bams3 from 'bams3';
import type { Bams3Error, Record, Summary, TagValue } from 'bams3';

async function main(): Promise<void> {
  const ds: bams3.Dataset = await bams3.open('s3://bucket/sample.bams3', {
    endpointUrl: 'http://127.0.0.1:9000',
    noSignRequest: true,
    cacheChunks: true,
  });
  const header: string = ds.header;
  const names: string[] = ds.references.map((r) => `${r.name}:${r.length.toFixed(0)}`);
  const stats = await ds.stats();
  const filter: bams3.Filter = { minMapq: 20, requireFlags: 0x2, excludeFlags: 0x904 };
  for await (const r of ds.query('chr1:1000-2000', filter)) {
    const rec: Record = r;
    const fields: [string, number, string, number, number, string, string, number, number, string, string] = [
      rec.name, rec.flag, rec.refName, rec.pos, rec.mapq, rec.cigar, rec.nextRefName, rec.nextPos, rec.tlen, rec.seq, rec.qual,
    ];
    const nm: TagValue | undefined = rec.tags.NM;
    if (typeof nm === 'number') console.log(nm + 1);
    if (nm instanceof Int16Array) console.log(nm.length);
    const line: string = rec.toSam();
    const bytes: Buffer = rec.toBam();
    console.log(fields, line, bytes.length, JSON.stringify(rec));
  }
  for await (const r of ds.query(['chr1:1-100', 'chr2', '*'])) console.log(r.pos);
  for await (const r of ds.query()) console.log(r.name);
  const n: number = await ds.count('chr1:1-1000', filter);
  const all: number = await ds.count();
  for await (const b of ds.queryBam('chr1', filter)) console.log(b.readUInt32LE(0));
  for await (const [pos, depth, ref] of ds.depth('chr1:1-100000', { all: true, minMapq: 10, deletions: true })) {
    console.log(pos + depth, ref.length);
  }
  ds.close();

  const w: bams3.Writer = await bams3.create('out.bams3', header, { chunkSize: 1 << 20, level: 3, threads: 2, memory: 256 << 20 });
  await w.write('r1\t0\tchr1\t100\t60\t4M\t*\t0\t0\tACGT\t????');
  await w.write(['r2\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\t????']);
  await w.writeBam(Buffer.alloc(0));
  const s: Summary = await w.finish();
  const w2 = await bams3.create('out2.bams3', header);
  await w2.abort();

  const c: Summary = await bams3.convert('in.bam', 's3://bucket/out.bams3', {
    level: 3, threads: 2, memory: 512 << 20, endpointUrl: 'http://127.0.0.1:9000',
    onProgress: (records: number) => console.log(records),
  });
  console.log(names, stats, n, all, s.records, c.storedBytes);
}

main().catch((e: unknown) => {
  const err = e as Bams3Error;
  if (err.code === 'BAMS3_ERR_NOT_FOUND') console.error(err.message);
});
