import type { BuildSession } from './session.js';

/** How a step's layer is committed: gzip, mtimes clamped to SOURCE_DATE_EPOCH, the output format's media type. */
export function commitOptions(ctx: BuildSession): { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string } {
  const o: { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string } = { compression: 'gzip' };
  if (ctx.opts.sourceDateEpoch !== undefined) o.sourceDateEpoch = ctx.opts.sourceDateEpoch;
  if (ctx.opts.format === 'docker') o.mediaType = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return o;
}
