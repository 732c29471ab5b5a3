/**
 * The package database files of an image, read from its layers in order (whiteouts and opaque
 * directories applied): one streaming pass per layer, only the wanted files' bodies kept, each
 * under a size cap and all under a total cap. Symlinks are never followed (a database reached
 * only through a symlink is not read); unsafe member names are skipped.
 */
import * as path from 'node:path/posix';
import { ByteSource, normalizeEntryName, readTar, type TarEntry } from '@hoist/snapshotter';
import { APK_INSTALLED } from './apk.js';
import { DPKG_STATUS, DPKG_STATUS_DIR } from './dpkg.js';
import { isInstalledPackageJson } from './npm.js';
import { isDistInfoMetadata } from './python.js';

export interface CollectLimits {
  /** Cap on one database file (dpkg status, apk installed). Default 64 MiB. */
  maxDatabaseBytes?: number;
  /** Cap on one small file (package.json, METADATA, os-release). Default 1 MiB. */
  maxFileBytes?: number;
  /** Cap on all kept bytes. Default 256 MiB. */
  maxTotalBytes?: number;
  /** Cap on kept files. Default 200 000. */
  maxFiles?: number;
}

export interface CollectedFiles {
  /** Image path (no leading `/`) → content. */
  files: Map<string, Buffer>;
  /** Files left out because a cap was reached. */
  skipped: string[];
}

const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];

/** Whether a path is a file the scanners read, and under which cap. */
export function wantedFile(p: string): 'database' | 'small' | undefined {
  if (p === DPKG_STATUS || p === APK_INSTALLED) return 'database';
  if (p.startsWith(DPKG_STATUS_DIR) && !p.slice(DPKG_STATUS_DIR.length).includes('/')) return 'small';
  if (OS_RELEASE.includes(p) || isInstalledPackageJson(p) || isDistInfoMetadata(p)) return 'small';
  if (path.basename(p) === 'package-lock.json' && !p.split('/').includes('node_modules')) return 'small';
  return undefined;
}

/** Paths of lower layers at or under `p` (those the current layer wrote stay). */
function lowerUnder(files: Map<string, Buffer>, layer: Map<string, Buffer>, p: string, self: boolean): string[] {
  return [...files.keys()].filter((k) => !layer.has(k) && ((self && k === p) || p === '' || k.startsWith(`${p}/`)));
}

/** A whiteout (of lower layers): `.wh..wh..opq` hides the directory's content, `.wh.NAME` removes NAME. */
function whitedOut(files: Map<string, Buffer>, layer: Map<string, Buffer>, name: string): string[] | undefined {
  const base = path.basename(name);
  if (!base.startsWith('.wh.')) return undefined;
  const dir = path.dirname(name) === '.' ? '' : path.dirname(name);
  if (base === '.wh..wh..opq') return lowerUnder(files, layer, dir, false);
  return lowerUnder(files, layer, dir ? `${dir}/${base.slice(4)}` : base.slice(4), true);
}

async function readBody(e: TarEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of e.body()) parts.push(b);
  return Buffer.concat(parts);
}

class Collector {
  readonly files = new Map<string, Buffer>();
  readonly skipped: string[] = [];
  private total = 0;
  constructor(private readonly limits: Required<CollectLimits>) {}

  async entry(e: TarEntry, layerFiles: Map<string, Buffer>): Promise<void> {
    let name: string;
    try {
      name = normalizeEntryName(e.name);
    } catch {
      return;
    }
    const gone = whitedOut(this.files, layerFiles, name);
    if (gone) {
      for (const k of gone) this.drop(k);
      return;
    }
    const want = wantedFile(name);
    // anything else at a kept path (a directory, a symlink) replaces it
    if (!want || (e.type !== 'file' && e.type !== 'link')) {
      if (this.files.has(name)) this.drop(name);
      return;
    }
    if (e.type === 'link') {
      const target = layerFiles.get(safeName(e.linkname) ?? '') ?? this.files.get(safeName(e.linkname) ?? '');
      if (target) this.keep(name, target);
      else if (this.files.has(name)) this.drop(name);
      return;
    }
    const cap = want === 'database' ? this.limits.maxDatabaseBytes : this.limits.maxFileBytes;
    if (e.size > cap || this.total + e.size > this.limits.maxTotalBytes || this.files.size >= this.limits.maxFiles) {
      this.skipped.push(name);
      if (this.files.has(name)) this.drop(name);
      return;
    }
    const body = await readBody(e);
    this.keep(name, body);
    layerFiles.set(name, body);
  }

  private keep(name: string, body: Buffer): void {
    this.drop(name);
    this.files.set(name, body);
    this.total += body.length;
  }

  private drop(name: string): void {
    const old = this.files.get(name);
    if (old) this.total -= old.length;
    this.files.delete(name);
  }
}

function safeName(n: string): string | undefined {
  try {
    return normalizeEntryName(n);
  } catch {
    return undefined;
  }
}

/** Read the wanted files of an image from its uncompressed layers, lowest first. */
export async function collectFiles(layers: AsyncIterable<AsyncIterable<Buffer>>, limits: CollectLimits = {}): Promise<CollectedFiles> {
  const c = new Collector({ maxDatabaseBytes: 64 * 1024 ** 2, maxFileBytes: 1024 ** 2, maxTotalBytes: 256 * 1024 ** 2, maxFiles: 200_000, ...limits });
  for await (const layer of layers) {
    const src = new ByteSource(layer, Number.MAX_SAFE_INTEGER);
    const layerFiles = new Map<string, Buffer>();
    for await (const e of readTar(src)) await c.entry(e, layerFiles);
    await src.drain();
  }
  return { files: c.files, skipped: c.skipped };
}
