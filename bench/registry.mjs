#!/usr/bin/env node
// Registry benchmark (issue 5): push and pull of a 500 MiB image (several layers of random,
// incompressible data) to/from a loopback docker-registry, hoist vs `skopeo copy`, in one run;
// and a re-push of the unchanged image (must take < 1 s).
// Each measurement is a fresh process (`node bench/registry.mjs --child …`), as the CLI would be,
// against a fresh registry. BENCH_RUNS (default 3) runs, medians reported.
//   node bench/registry.mjs            (needs `npx tsc -b packages/registry-client packages/testkit`)
import { randomFillSync, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sh, median, table, fmt } from './lib.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(path.join(repo, 'packages', p, 'dist', 'index.js')).href;
const { encodeHeader } = await import(dist('snapshotter'));
const MiB = 1024 * 1024;
const LAYERS = (process.env.BENCH_REGISTRY_LAYERS ?? '200,150,100,50').split(',').map((n) => Number(n) * MiB);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REF = 'bench.local/registry/app:1';

/** A layer: one file of random bytes in a tar, gzipped (level 0: random data would not shrink anyway). */
function layerStream(size, seed) {
  const header = encodeHeader({ name: `data-${seed}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 });
  const diff = createHash('sha256');
  async function* gen() {
    diff.update(header);
    yield header;
    let left = size;
    while (left > 0) {
      const n = Math.min(left, MiB);
      const b = randomFillSync(Buffer.allocUnsafe(n));
      diff.update(b);
      yield b;
      left -= n;
    }
    const tail = Buffer.alloc(((512 - (size % 512)) % 512) + 1024);
    diff.update(tail);
    yield tail;
  }
  const gz = createGzip({ level: 0 });
  Readable.from(gen()).pipe(gz);
  return { stream: gz, diffId: () => `sha256:${diff.digest('hex')}` };
}

async function makeImage(root) {
  const oci = await import(dist('oci'));
  const store = await oci.ImageStore.open(root);
  let img = oci.emptyImage({ os: 'linux', architecture: 'amd64' });
  for (const [i, size] of LAYERS.entries()) {
    const { stream, diffId } = layerStream(size, i);
    const put = await store.blobs.put(stream);
    img = oci.appendLayer(img, { mediaType: oci.MediaType.OciLayerGzip, digest: put.digest, size: put.size }, diffId(), { created_by: `layer ${i}` });
  }
  const w = await oci.writeImage(store.blobs, img);
  await store.tag(REF, w.descriptor);
  return { store, descriptor: w.descriptor, bytes: w.manifest.layers.reduce((n, l) => n + l.size, 0) };
}

/** In a child process: one push or pull with the library, as `hoist push|pull` would do it. */
async function child(op, storeDir, ref) {
  const { RegistryClient } = await import(dist('registry-client'));
  const { ImageStore } = await import(dist('oci'));
  const { LayerChecker } = await import(dist('snapshotter'));
  const store = await ImageStore.open(storeDir);
  const client = new RegistryClient();
  // layers verified against the config, as `hoist push` and `hoist pull` do
  const checks = new LayerChecker(store.blobs);
  if (op === 'push') {
    const desc = await store.resolve(REF);
    await client.push(store, desc, ref, { checks });
  } else {
    const desc = await client.pull(ref, store, { checks });
    await store.tag(ref, desc);
  }
  client.close();
}

async function time(cmd, args) {
  await sh('sync', []); // start each measurement without the previous one's dirty pages
  return (await sh(cmd, args)).ms;
}

const hoist = (op, store, ref) => time(process.execPath, [fileURLToPath(import.meta.url), '--child', op, store, ref]);
const skopeo = (src, dst) => time('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', src, dst]);

export async function main() {
  const { startRegistry } = await import(dist('testkit'));
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'hoist-bench-registry-'));
  try {
    const t0 = Date.now();
    const img = await makeImage(path.join(work, 'src'));
    console.log(`\nimage: ${LAYERS.length} layers, ${(img.bytes / MiB).toFixed(0)} MiB compressed (made in ${fmt(Date.now() - t0)})`);
    const r = { hoist: { push: [], repush: [], pull: [] }, skopeo: { push: [], repush: [], pull: [] } };
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 ? ['skopeo', 'hoist'] : ['hoist', 'skopeo'];
      for (const tool of order) {
        const reg = await startRegistry();
        try {
          const ref = `${reg.host}/bench/app:1`;
          const dst = path.join(work, `${tool}-pull-${i}`);
          if (tool === 'hoist') {
            r.hoist.push.push(await hoist('push', img.store.root, ref));
            r.hoist.repush.push(await hoist('push', img.store.root, ref));
            r.hoist.pull.push(await hoist('pull', dst, ref));
          } else {
            const src = `oci:${img.store.root}:${REF}`;
            r.skopeo.push.push(await skopeo(src, `docker://${ref}`));
            r.skopeo.repush.push(await skopeo(src, `docker://${ref}`));
            r.skopeo.pull.push(await skopeo(`docker://${ref}`, `oci:${dst}:app`));
          }
          await fsp.rm(dst, { recursive: true, force: true });
        } finally {
          await reg.stop();
        }
      }
    }
    const rows = [];
    const verdicts = [];
    for (const op of ['push', 'repush', 'pull']) {
      const h = median(r.hoist[op]);
      const s = median(r.skopeo[op]);
      const mbps = op === 'repush' ? '' : `${(img.bytes / MiB / (h / 1000)).toFixed(0)} MiB/s`;
      rows.push([op === 'repush' ? 're-push (unchanged)' : op, fmt(h), fmt(s), (h / s).toFixed(2), mbps]);
      if (op !== 'repush') verdicts.push(`${op} ratio ${(h / s).toFixed(2)} ${h / s <= 1.0 ? '<= 1.0 ok' : '> 1.0 MISSED'}`);
      else verdicts.push(`re-push ${fmt(h)} ${h < 1000 ? '< 1 s ok' : '>= 1 s MISSED'}`);
    }
    table(`registry: ${(img.bytes / MiB).toFixed(0)} MiB image, loopback docker-registry, median of ${RUNS}`, ['operation', 'hoist', 'skopeo copy', 'hoist/skopeo', 'hoist throughput'], rows);
    console.log(`\n${verdicts.join('; ')}`);
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], process.argv[5]);
} else if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
}
