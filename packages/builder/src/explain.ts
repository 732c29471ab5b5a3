import type { CacheRecord, CacheStore } from './cache.js';
import type { InputDigests } from './cache-inputs.js';

/** The words for one input whose digest differs (values are never kept, so never shown). */
function inputChange(k: string, was: string | undefined, now: string | undefined): string {
  const how = was === undefined ? 'added' : now === undefined ? 'removed' : 'changed';
  if (k.startsWith('arg:')) return `build arg ${k.slice(4)} ${how}`;
  if (k.startsWith('env:')) return `environment variable ${k.slice(4)} ${how}`;
  const kind = (d: string | undefined): string => d?.slice(0, d.indexOf(':')) ?? '';
  switch (k) {
    case 'sources':
      return 'the content of the sources changed (files, modes or names; mtimes do not count)';
    case 'args':
      return 'the command changed';
    case 'from':
      if (kind(was) !== kind(now)) return `the source it copies from changed (was ${kind(was) || 'nothing'}, now ${kind(now) || 'nothing'})`;
      return kind(now) === 'stage' ? 'the stage it copies from changed' : kind(now) === 'image' ? 'the image it copies from changed' : 'the source it copies from changed';
    case 'fromStages':
      return 'a stage it mounts changed';
    case 'contextMounts':
      return 'the content of the context it mounts changed';
    case 'imageMounts':
      return 'an image it mounts changed';
    default:
      return `${k} ${how}`;
  }
}

/** What differs between a cached step's input digests and this step's, in words. */
export function diffInputs(was: InputDigests, now: InputDigests): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(was), ...Object.keys(now)])) {
    if (was[k] !== now[k]) out.push(inputChange(k, was[k], now[k]));
  }
  return out;
}

/**
 * Why a step missed the cache: compared with the nearest cached step of the same kind on the
 * same parent (fewest differing inputs, local or imported), which inputs changed; or that
 * nothing was ever cached on this parent (an earlier step, or the base image, changed).
 */
export async function explainMiss(
  cache: CacheStore,
  parent: string,
  digests: InputDigests,
  disabled: boolean,
  imported: Array<Pick<CacheRecord, 'key' | 'created' | 'inputDigests'>> = [],
): Promise<string> {
  if (disabled) return 'cache miss: the cache is disabled for this stage (--no-cache / --no-cache-filter)';
  const idx = { children: (await cache.children?.(parent)) ?? [] };
  const op = digests.op ?? '';
  // the nearest candidate: of the steps of the same kind cached on this parent (locally or in an
  // imported cache), the one whose inputs differ in the fewest fields; records without input
  // digests (written before cache format 2) cannot be compared
  let best = undefined as { diff: string[]; created: string; where: string } | undefined;
  const consider = (rec: Pick<CacheRecord, 'created' | 'inputDigests'>, where: string): void => {
    if (!rec.inputDigests || rec.inputDigests.op !== op) return;
    const diff = diffInputs(rec.inputDigests, digests);
    if (!best || diff.length < best.diff.length) best = { diff, created: rec.created, where };
  };
  for (const rec of imported) consider(rec, "the imported cache's step");
  for (const c of idx.children.filter((x) => x.op === op)) {
    const rec = await cache.get(c.key);
    if (rec) consider(rec, 'the step cached');
  }
  if (best) {
    if (best.diff.length === 0) return 'cache miss: the cached record has no layer in the store any more';
    return `cache miss: ${best.diff.join('; ')} (compared with ${best.where} of ${best.created})`;
  }
  if (idx.children.length > 0) return `cache miss: a different instruction (${idx.children[0]!.op}) was cached at this point before`;
  return 'cache miss: nothing was cached on top of the previous step: an earlier step or the base image changed';
}
