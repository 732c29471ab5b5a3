/** Platforms in a build: the target's, each stage's (`FROM --platform=…`), and whether they can run here. */
import { formatPlatform, hostPlatform, parsePlatform, type ImageConfig, type Platform } from '@hoist/oci';
import type { Plan, Stage } from '@hoist/parser';
import { BuildError } from './errors.js';
import { emulationFor, type EmulationHost } from './sandbox/emulation.js';

/** The platform a stage builds for: its `FROM --platform=` (expanded), else the build's target. */
export function stagePlatform(stage: Stage, target: Platform): Platform {
  return stage.platform !== undefined ? parsePlatform(stage.platform) : target;
}

/** The platform an image config says it is for. */
export function configPlatform(c: Pick<ImageConfig, 'os' | 'architecture' | 'variant'>): Platform {
  return { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
}

/** The key of a resolved base image: the same reference may be needed for two platforms. */
export function baseKey(ref: string, platform: Platform): string {
  return `${formatPlatform(platform)} ${ref}`;
}

/** The reference of a `baseKey`. */
export function refOfKey(key: string): string {
  return key.slice(key.indexOf(' ') + 1);
}

/**
 * Fail before anything is built when a stage the target needs has RUN steps for a platform
 * that cannot run here (no emulator, unknown architecture): never a wrong-architecture image.
 * Stages without RUN need no emulation (their files are copied, as buildx does).
 */
export function checkPlatformsRunnable(plan: Plan, o: { stages: number[]; target: Platform; host?: EmulationHost }): void {
  for (const i of o.stages) {
    const stage = plan.stages[i]!;
    const run = stage.steps.find((s) => s.instruction.kind === 'run');
    if (!run) continue;
    try {
      emulationFor(stagePlatform(stage, o.target), o.host);
    } catch (e) {
      if (!(e instanceof BuildError)) throw e;
      throw new BuildError(e.code, e.message, { cause: e, location: { stage: stage.name ?? String(i), step: run.original, file: plan.file, line: run.line, instruction: run.original } });
    }
  }
}

export { formatPlatform, hostPlatform };
