/** The library's attestation pieces on their own: which base images the provenance lists. */
import type { ImageSource, ResolvedImage } from '@hoist/builder';
import type { Digest } from '@hoist/oci';
import { RecordingImageSource } from '../src/library/attestations.js';

const digest = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;

function fakeSource(): ImageSource & { resolved: number } {
  return {
    resolved: 0,
    async resolve(ref: string): Promise<ResolvedImage> {
      this.resolved++;
      return { ref, descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: ref.includes('alpine') ? digest('a') : digest('b'), size: 1 } } as ResolvedImage;
    },
  };
}

describe('RecordingImageSource', () => {
  it('records each resolved base once per platform as a docker purl with the manifest digest; resolves through the inner source', async () => {
    const inner = fakeSource();
    const rec = new RecordingImageSource(inner);
    const amd = { os: 'linux', architecture: 'amd64' };
    const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const img = await rec.resolve('alpine:3.19', { platform: amd });
    expect(img.descriptor.digest).toBe(digest('a'));
    await rec.resolve('docker.io/library/alpine:3.19', { platform: amd });
    await rec.resolve('registry.example:5000/team/base', { platform: arm });
    expect(inner.resolved).toBe(3);
    expect([...rec.resolved.values()]).toEqual([
      { uri: 'pkg:docker/alpine@3.19?platform=linux%2Famd64', digest: { sha256: 'a'.repeat(64) } },
      { uri: 'pkg:docker/registry.example:5000/team/base@latest?platform=linux%2Farm64%2Fv8', digest: { sha256: 'b'.repeat(64) } },
    ]);
  });

  it('a name that is no image reference (a named context) is not recorded', async () => {
    const rec = new RecordingImageSource(fakeSource());
    await rec.resolve('Not A Ref', { platform: { os: 'linux', architecture: 'amd64' } });
    expect(rec.resolved.size).toBe(0);
  });
});
