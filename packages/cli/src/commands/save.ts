import { familiarReference, parsePlatform, parseReference } from '@hoist/oci';
import { resolveImages, saveImages } from '@hoist/exporter';
import { UsageError } from '../errors.js';
import { openStore } from '../store.js';
import { exportErrors } from './outputs.js';

export interface SaveFlags {
  output?: string;
  format: string;
  platform?: string;
  root?: string;
}

/** `hoist save REF... [-o FILE]`: a docker-archive (default) or an OCI layout tar, to a file or stdout. */
export async function saveCommand(refs: string[], f: SaveFlags, signal: AbortSignal): Promise<number> {
  if (f.format !== 'docker' && f.format !== 'oci') throw new UsageError(`--format must be docker or oci, not "${f.format}"`);
  const dest = f.output ?? '-';
  if (dest === '-' && process.stdout.isTTY) {
    throw new UsageError('refusing to write an archive to a terminal: give -o FILE or redirect stdout (hoist save app:1 > app.tar)');
  }
  const { store } = await openStore(f.root);
  return exportErrors(async () => {
    const images = await resolveImages(store, refs, f.platform ? { platform: parsePlatform(f.platform) } : {});
    const where = await saveImages(images, { format: f.format as 'docker' | 'oci', dest, signal });
    for (const img of images) {
      const names = img.refs.map((r) => familiarReference(parseReference(r)));
      process.stderr.write(`saved ${names.length > 0 ? names.join(', ') : img.descriptor.digest} (${img.descriptor.digest})\n`);
    }
    process.stderr.write(`wrote ${f.format === 'docker' ? 'docker-archive' : 'oci-archive'} ${where === '-' ? 'to stdout' : where}\n`);
    return 0;
  });
}
