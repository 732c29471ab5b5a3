/**
 * What `--check` knows of base images: only those already in the store (it pulls nothing).
 * Their env and shell feed UndefinedVar and JSONArgsRecommended, their platform
 * InvalidBaseImagePlatform, as in a build; an image not in the store stays unknown.
 */
import { existsSync } from 'node:fs';
import { formatReference, parseReference, type Platform } from '@hoist/oci';
import { outline, type BaseImageInfo, type Dockerfile, type Outline } from '@hoist/parser';
import { openStore, storeRoot } from '../store.js';

export interface LocalBases {
  infos: Record<string, BaseImageInfo>;
  /** `os/arch[/variant]` of each base found, by reference as written in the outline. */
  platforms: Map<string, string>;
  refs: Outline['baseRefs'];
}

function platformOf(s: string): Platform {
  const [os = 'linux', architecture = 'amd64', variant] = s.split('/');
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export async function localBases(root: string | undefined, df: Dockerfile, opts: { buildArgs: Record<string, string>; platform: string }): Promise<LocalBases> {
  const out: LocalBases = { infos: {}, platforms: new Map(), refs: outline(df, opts).baseRefs };
  if (out.refs.length === 0 || !existsSync(storeRoot(root))) return out;
  const { store } = await openStore(root);
  for (const ref of new Set(out.refs.map((b) => b.ref))) {
    let full: string;
    try {
      full = formatReference(parseReference(ref));
    } catch {
      continue; // the build reports a bad reference
    }
    const desc = await store.resolve(full);
    if (!desc) continue;
    const img = await store.load(desc, platformOf(opts.platform)).catch(() => undefined);
    if (!img) continue;
    const c = img.config.value;
    const info: BaseImageInfo = {};
    if (c.config?.Env) info.env = c.config.Env;
    if (c.config?.Shell) info.shell = c.config.Shell;
    out.infos[ref] = info;
    out.platforms.set(ref, `${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ''}`);
  }
  return out;
}
