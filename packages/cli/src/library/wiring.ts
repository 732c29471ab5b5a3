import * as path from 'node:path';
import { BuildError, ProotExecutor, type BuildOptions as BuilderOptions } from '@hoist/builder';
import { parsePlatform, type Platform } from '@hoist/oci';
import { UsageError } from '../errors.js';
import { chooseIsolation, hostIsolationFacts, isolationFlag } from '../isolation.js';
import type { BuildOutputs } from './outputs.js';

/** `platform: 'a,b'`: one or more platforms (buildx's syntax); bad ones are usage errors. */
export function parsePlatforms(value: string | undefined): Platform[] {
  if (value === undefined) return [];
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((s) => s === '')) throw new UsageError(`--platform "${value}": an empty platform in the list; write e.g. linux/amd64,linux/arm64`);
  try {
    return parts.map(parsePlatform);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A multi-platform result is an index: the single-image outputs cannot hold it (as buildx: type=docker, type=tar, --load). */
export function checkMultiPlatform(outputs: BuildOutputs, count: number, load: boolean): void {
  if (count < 2) return;
  const single = outputs.specs.find((s) => s.type === 'docker' || s.type === 'tar');
  const index = `a build for ${count} platforms makes an index`;
  // buildx's own words for the docker exporter (type=docker, --load)
  const noLists = 'docker exporter does not currently support exporting manifest lists';
  if (single?.type === 'docker') throw new UsageError(`--output type=docker: ${noLists} (${index}); use type=oci, type=local (one folder per platform) or type=registry`);
  if (single) throw new UsageError(`--output type=${single.type} holds one image; ${index}: use type=oci, type=local (one folder per platform) or type=registry`);
  if (load) throw new UsageError(`--load: ${noLists} (${index}); load one --platform, or use --push or --output type=oci`);
}

/**
 * The no-privilege mode (issue 10, mode 2): RUN under proot, which shares the pod's network
 * (the default network becomes the host's; --network none cannot be kept) and sets no limits.
 */
export function isolationWiring(
  isolation: string | undefined,
  o: { network: 'default' | 'host' | 'none'; resources: BuilderOptions['resources']; root: string },
): { network: 'default' | 'host' | 'none'; executor?: ProotExecutor } {
  const choice = chooseIsolation(isolationFlag(isolation ? ['--isolation', isolation] : []), hostIsolationFacts());
  if (choice.mode !== 'proot') return { network: o.network };
  const r = o.resources ?? {};
  const missing = [r.memoryBytes !== undefined && '--memory', r.cpus !== undefined && '--cpus', r.pidsLimit !== undefined && '--pids-limit'].filter(Boolean);
  if (o.network === 'none' || missing.length > 0) {
    const what = o.network === 'none' ? '--network none needs a network namespace' : `${missing.join(', ')} need${missing.length > 1 ? '' : 's'} cgroups`;
    throw new BuildError('ISOLATION_UNSUPPORTED', `${what}, which RUN under proot cannot have (${choice.reason}). Fix: build without it, or give hoist user namespaces (--isolation rootless) or root (--isolation oci)`);
  }
  return { network: 'host', executor: new ProotExecutor({ tmpDir: path.join(o.root, 'tmp'), reason: choice.reason }) };
}
