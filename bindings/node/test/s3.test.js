'use strict';
// A dataset on a real S3-compatible server on loopback (moto, as the Rust tests use): written
// by the CLI and by convert()/create() from Node, read from Node, against the CLI on the local
// copy.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const bams3 = require('..');
const { realBams, dataset, scratch, cli, cliLines, collect, TMP } = require('./helpers');

const MOTO = process.env.BAMS3_MOTO_SERVER || path.join(os.homedir(), '.cache', 'bams3', 'moto-venv', 'bin', 'moto_server');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function request(port, method, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startMoto() {
  assert.ok(fs.existsSync(MOTO), `${MOTO} is missing: run tests/fetch-data.sh to install moto`);
  const port = await freePort();
  const child = spawn(MOTO, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      await request(port, 'GET', '/');
      return { child, port };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error('moto_server did not start on loopback');
}

test('S3: open, query, count, stats, depth, convert and create through endpointUrl', async (t) => {
  const { child, port } = await startMoto();
  t.after(() => child.kill('SIGKILL'));
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: path.join(TMP, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(TMP, 'no-aws-credentials'), XDG_CACHE_HOME: scratch('cache'),
  };
  delete env.AWS_ENDPOINT_URL;
  delete env.AWS_PROFILE;
  Object.assign(process.env, env);
  assert.equal(await request(port, 'PUT', '/bucket'), 200);

  const bam = realBams().find((b) => path.basename(b) === 'NA12878.chr22.tiny.bam') || realBams()[0];
  const local = dataset(bam);
  cli(['--endpoint-url', endpoint, 'convert', '--quiet', bam, 's3://bucket/cli.bams3'], { env });
  const summary = await bams3.convert(bam, 's3://bucket/node.bams3', { endpointUrl: endpoint });
  assert.ok(summary.records > 0);

  for (const loc of ['s3://bucket/cli.bams3', 's3://bucket/node.bams3']) {
    const ds = await bams3.open(loc, { endpointUrl: endpoint, cacheChunks: true });
    const whole = (await collect(ds.query())).map((r) => r.toSam());
    assert.deepEqual(whole, cliLines([local]));
    const ref = ds.references.find((r) => r.length > 0).name;
    for (const region of [`${ref}:1-20000000`, `${ref}:20000000-30000000`, '*']) {
      assert.deepEqual((await collect(ds.query(region, { minMapq: 20 }))).map((r) => r.toSam()), cliLines(['-q', '20', local, region]));
      assert.equal(await ds.count(region), Number(cli(['query', '-c', local, region]).stdout.trim()));
    }
    const st = await ds.stats();
    const want = JSON.parse(cli(['--endpoint-url', endpoint, 'stats', '--json', loc], { env }).stdout);
    assert.deepEqual(st, want);
    const depth = (await collect(ds.depth())).map(([p, d, r]) => `${r}\t${p}\t${d}`).join('\n');
    assert.equal(depth, cli(['depth', local]).stdout.replace(/\n$/, ''));
  }

  // A writer straight to S3, then the CLI reads it.
  const src = await bams3.open(local);
  const w = await bams3.create('s3://bucket/written.bams3', src.header, { endpointUrl: endpoint });
  for await (const b of src.queryBam()) await w.writeBam(b);
  await w.finish();
  assert.equal(cli(['--endpoint-url', endpoint, 'query', 's3://bucket/written.bams3'], { env }).stdout, cli(['query', local]).stdout);

  // No such dataset: a coded error, as the CLI's message.
  const err = await bams3.open('s3://bucket/none.bams3', { endpointUrl: endpoint }).catch((e) => e);
  assert.equal(err.code, 'BAMS3_ERR_NOT_FOUND');
  const r = cli(['--endpoint-url', endpoint, 'stats', 's3://bucket/none.bams3'], { env, allowFail: true });
  assert.equal(err.message, r.stderr.trim().replace(/^bams3: /, ''));
});
