import { spawn } from 'node:child_process';
import { Duplex, Readable } from 'node:stream';
import { OciError, decompressLayer, type Decompressed } from '@hoist/oci';
import { SnapshotError } from './errors.js';

/**
 * Decompress a layer blob, detecting gzip / zstd / none from its first bytes (oci's
 * decompressLayer); a malformed stream or a missing `zstd` binary fails as a SnapshotError with
 * the same code (LAYER_INVALID, LAYER_UNSUPPORTED), as the snapshotter's callers expect.
 */
export async function decompress(src: AsyncIterable<Buffer> | Readable): Promise<Decompressed> {
  const d = await decompressLayer(src);
  return { kind: d.kind, stream: asSnapshotErrors(d.stream), cancel: () => d.cancel() };
}

async function* asSnapshotErrors(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* stream;
  } catch (e) {
    if (e instanceof OciError && (e.code === 'LAYER_INVALID' || e.code === 'LAYER_UNSUPPORTED')) throw new SnapshotError(e.code, e.message, { cause: e });
    throw e;
  }
}

/** A stream compressing with the `zstd` binary (output does not depend on the thread count). */
export function zstdCompressor(level = 3): Duplex {
  const child = spawn('zstd', ['-c', '-q', '--no-progress', `-${level}`, '-T0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let spawnError: Error | undefined;
  const exited = new Promise<number>((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      resolve(-1);
    });
    child.on('close', (c) => resolve(c ?? -1));
  });
  const out = Readable.from(
    (async function* () {
      for await (const c of child.stdout) yield c as Buffer;
      const code = await exited;
      if (code !== 0) {
        throw new SnapshotError(spawnError ? 'LAYER_UNSUPPORTED' : 'HELPER_FAILED', spawnError ? `zstd compression needs the \`zstd\` binary: ${spawnError.message}` : `zstd exited with ${code}`);
      }
    })(),
  );
  const d = Duplex.from({ writable: child.stdin, readable: out });
  d.on('close', () => child.kill());
  return d;
}
