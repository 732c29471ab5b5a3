import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { sniffCompression } from './compression.js';
import { OciError } from './errors.js';
import type { Compression } from './media-types.js';

/** A decompressed layer: its compression, the tar bytes, and a way to stop early. */
export interface Decompressed {
  kind: Compression;
  stream: AsyncIterable<Buffer>;
  cancel(): void;
}

/**
 * Decompress a layer blob, detecting gzip / zstd / none from its first bytes. gzip uses
 * node:zlib; zstd uses the `zstd` binary (Debian package `zstd`) because Node 20's zlib has no
 * zstd and there is no maintained pure-JS implementation fast enough for layers.
 */
export async function decompressLayer(src: AsyncIterable<Buffer> | Readable): Promise<Decompressed> {
  const it = (src as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head = head.length === 0 ? Buffer.from(r.value) : Buffer.concat([head, r.value]);
  }
  const rest = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
    { objectMode: false },
  );
  const cancel = (): void => {
    rest.destroy();
    if (src instanceof Readable) src.destroy();
  };
  const kind = sniffCompression(head);
  if (kind === 'gzip') {
    const gun = createGunzip({ chunkSize: 128 * 1024 });
    pipeline(rest, gun).catch(() => undefined); // errors surface on `gun`
    return { kind, stream: gun, cancel: () => (cancel(), gun.destroy()) };
  }
  if (kind === 'zstd') {
    const child = spawn('zstd', ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => {
      child.on('error', () => resolve(-1));
      child.on('close', (c) => resolve(c ?? -1));
    });
    pipeline(rest, child.stdin).catch(() => undefined);
    const out = (async function* () {
      for await (const c of child.stdout) yield c as Buffer;
      const code = await exited;
      if (code !== 0) {
        throw new OciError(code === -1 ? 'LAYER_UNSUPPORTED' : 'LAYER_INVALID', code === -1 ? 'zstd layers need the `zstd` binary (Debian package zstd)' : `zstd: ${stderr.trim()}`);
      }
    })();
    return { kind, stream: out, cancel: () => (cancel(), child.kill()) };
  }
  return { kind, stream: rest, cancel };
}
