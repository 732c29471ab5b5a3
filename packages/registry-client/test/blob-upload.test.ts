/**
 * BlobUpload, the transfer object of uploads, against a scripted registry session (no network):
 * a chunked upload whose second chunk is cut off asks where the upload stands and resumes from
 * the registry's offset; the requests are asserted in order, with the bytes each chunk carried.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { sha256, type Descriptor } from '@hoist/oci';
import { BlobUpload } from '../src/blob-upload.js';
import { RegistryError } from '../src/errors.js';
import { DEFAULT_RETRY } from '../src/retry.js';
import type { ClientContext } from '../src/context.js';
import type { HttpResponse } from '../src/http.js';
import type { RegistrySession, SessionRequest } from '../src/transport.js';
import { tmpDir } from './helpers.js';

const BLOB = Buffer.from('0123456789');
const desc: Descriptor = { mediaType: 'application/octet-stream', digest: sha256(BLOB), size: BLOB.length };

function answer(status: number, headers: Record<string, string> = {}): HttpResponse {
  const body = Object.assign(Readable.from([]), { headers: {} }) as unknown as HttpResponse['body'];
  return { status, headers, body, url: new URL('http://reg.test/v2/') };
}

async function bodyText(r: SessionRequest): Promise<string> {
  const b = r.body;
  if (!b || Buffer.isBuffer(b)) return b?.toString() ?? '';
  const chunks: Buffer[] = [];
  for await (const c of b.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('BlobUpload', () => {
  it('a chunked upload cut off mid-way resumes from the offset the registry reports', async () => {
    const dir = await tmpDir('hoist-upload-');
    const file = path.join(dir, 'blob');
    await fsp.writeFile(file, BLOB);
    const log: string[] = [];
    let patches = 0;
    const session = {
      request: async (r: SessionRequest): Promise<HttpResponse> => {
        const range = r.headers?.['content-range'];
        const sent = await bodyText(r);
        log.push(`${r.method} ${String(r.url).replace('http://reg.test', '')}${range ? ` ${range} ${sent}` : ''}`);
        if (r.method === 'PATCH' && ++patches === 2) throw new RegistryError('NETWORK', 'connection reset', { registry: 'reg.test', temporary: true });
        if (r.method === 'PATCH') return answer(202, { location: '/up/1', range: `0-${range!.split('-')[1]}` });
        if (r.method === 'GET') return answer(204, { location: '/up/1', range: '0-3' });
        return answer(201, { 'docker-content-digest': desc.digest });
      },
      fail: async (): Promise<never> => {
        throw new Error('unexpected failure');
      },
    } as unknown as RegistrySession;
    const ctx = { retry: { ...DEFAULT_RETRY, baseMs: 1, maxMs: 1 } } as ClientContext;
    const progress: Array<[number, boolean]> = [];
    const up = new BlobUpload({ ctx, session, repo: { registry: 'reg.test', repository: 'app' }, desc, scopes: [], report: (n, resumed) => progress.push([n, !!resumed]) });
    await up.chunked({ location: 'http://reg.test/up/0', minChunk: 0 }, file, 4);
    expect(log).toEqual([
      'PATCH /up/0 0-3 0123',
      'PATCH /up/1 4-7 4567',
      'GET /up/1',
      'PATCH /up/1 4-7 4567',
      'PATCH /up/1 8-9 89',
      `PUT /up/1?digest=${encodeURIComponent(desc.digest)}`,
    ]);
    expect(progress).toContainEqual([4, true]);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
