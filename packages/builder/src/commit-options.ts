import type { BuildSession } from './session.js';

/**
 * How a step's layer is committed: gzip, mtimes clamped to SOURCE_DATE_EPOCH, the output
 * format's media type; its blob stored off the step's path (the session's records and the
 * build's image wait for it: see BuildSession.record and build()).
 */
export function commitOptions(ctx: BuildSession): { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string; blobLater: true } {
  const o: { compression: 'gzip'; sourceDateEpoch?: number; mediaType?: string; blobLater: true } = { compression: 'gzip', blobLater: true };
  if (ctx.opts.sourceDateEpoch !== undefined) o.sourceDateEpoch = ctx.opts.sourceDateEpoch;
  if (ctx.opts.format === 'docker') o.mediaType = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return o;
}
