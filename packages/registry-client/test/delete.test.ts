/**
 * Deleting through the distribution API and listing tags, against a scripted server: DELETE
 * answers 202 (deleted) or 404 (absent), a 405 is UNSUPPORTED with a hint naming the registry's
 * delete setting, and tag lists follow `Link: <…>; rel="next"` pages.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import { RegistryClient, RegistryError } from '@hoist/registry-client';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

async function scripted(): Promise<{ host: string; seen: string[]; stop: () => Promise<void> }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200, { 'content-length': '2' }).end('{}');
    seen.push(`${req.method} ${url}`);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
    };
    if (req.method === 'GET' && url === '/v2/team/app/tags/list?n=1000') return json(200, { name: 'team/app', tags: ['a', 'b'] }, { link: '</v2/team/app/tags/list?n=1000&last=b>; rel="next"' });
    if (req.method === 'GET' && url === '/v2/team/app/tags/list?n=1000&last=b') return json(200, { name: 'team/app', tags: ['c'] });
    if (req.method === 'GET' && url.startsWith('/v2/team/none/tags/list')) return json(404, { errors: [{ code: 'NAME_UNKNOWN' }] });
    if (req.method === 'DELETE' && url === `/v2/team/app/manifests/${D1}`) return void res.writeHead(202, { 'content-length': '0' }).end();
    if (req.method === 'DELETE' && url === `/v2/team/app/manifests/${D2}`) return json(404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    if (req.method === 'DELETE' && url.startsWith('/v2/team/app/blobs/')) return json(405, { errors: [{ code: 'UNSUPPORTED', message: 'The operation is unsupported.' }] });
    json(500, {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('delete and tag list', () => {
  let srv: Awaited<ReturnType<typeof scripted>>;
  let client: RegistryClient;
  beforeAll(async () => {
    srv = await scripted();
    client = new RegistryClient({ retry: { attempts: 1 } });
  });
  afterAll(async () => {
    client.close();
    await srv.stop();
  });

  it('lists tags across pages, and none for a repository that does not exist', async () => {
    expect(await client.listTags(`${srv.host}/team/app:x`)).toEqual(['a', 'b', 'c']);
    expect(await client.listTags(`${srv.host}/team/none:x`)).toEqual([]);
  });

  it('DELETE of a manifest: deleted, or absent on 404', async () => {
    expect(await client.deleteManifest(`${srv.host}/team/app@${D1}`, D1)).toBe('deleted');
    expect(await client.deleteManifest(`${srv.host}/team/app@${D2}`, D2)).toBe('absent');
    expect(srv.seen).toEqual(expect.arrayContaining([`DELETE /v2/team/app/manifests/${D1}`, `DELETE /v2/team/app/manifests/${D2}`]));
  });

  it('a registry that refuses deletes (405) is UNSUPPORTED naming storage.delete.enabled', async () => {
    let err: unknown;
    try {
      await client.deleteBlob(`${srv.host}/team/app:x`, D1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe('UNSUPPORTED');
    expect((err as RegistryError).status).toBe(405);
    expect((err as RegistryError).message).toMatch(/refuses to delete blob sha256:1{64} \(HTTP 405\)\. Deleting is disabled on 127\.0\.0\.1:\d+: enable it \(distribution\/docker-registry: storage\.delete\.enabled: true/);
  });
});
