/**
 * BuildKit's build checks during a build: the parser's lint over the stages the target needs,
 * plus `InvalidBaseImagePlatform` for each resolved base image. Warnings go to progress as
 * BuildKit prints them (`Rule: message (line N)`); with `# check=error=true` a failed check
 * fails the build before any step runs, with BuildKit's message.
 */
import { baseImagePlatformWarning, lint, violationMessage, type BaseImageInfo, type CheckWarning, type Dockerfile, type Outline } from '@hoist/parser';
import { BuildError } from './errors.js';
import type { BuildEvent, ResolvedImage } from './types.js';

export interface CheckInputs {
  df: Dockerfile;
  buildArgs: Record<string, string>;
  platform: string;
  stages: number[];
  dockerignore?: string;
  baseImages: Record<string, BaseImageInfo>;
  baseRefs: Outline['baseRefs'];
  resolved: ReadonlyArray<readonly [string, ResolvedImage]>;
}

function imagePlatform(img: ResolvedImage): string {
  const c = img.config.value;
  return `${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ''}`;
}

export function runBuildChecks(c: CheckInputs, emit: (ev: BuildEvent) => void): void {
  const res = lint(c.df, { buildArgs: c.buildArgs, platform: c.platform, stages: c.stages, baseImages: c.baseImages, ...(c.dockerignore !== undefined ? { dockerignore: c.dockerignore } : {}) });
  const warnings: CheckWarning[] = [...res.warnings];
  const images = new Map(c.resolved);
  for (const b of c.baseRefs) {
    const img = images.get(b.ref);
    if (!img || !c.stages.includes(b.stage)) continue;
    const node = c.df.stages[b.stage]!.node;
    const w = baseImagePlatformWarning(c.df, res.config, { image: b.ref, expected: b.platform ?? c.platform, actual: imagePlatform(img), line: node.startLine, endLine: node.endLine });
    if (w) warnings.push(w);
  }
  for (const w of warnings) emit({ type: 'warning', message: `${w.rule}: ${w.message}`, line: w.line, rule: w.rule, ...(w.url ? { url: w.url } : {}) });
  // as BuildKit: the warnings stay visible above the error, which names the rules
  const error = violationMessage(res.config, warnings);
  if (error !== undefined) throw new BuildError('LINT_VIOLATION', error);
}
