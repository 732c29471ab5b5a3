import type { Instruction } from '@hoist/parser';

/**
 * Whether a step makes a layer and shows in the progress (RUN, COPY/ADD, a WORKDIR other than
 * `/`); the other instructions only change the config, as BuildKit shows them: not at all.
 */
export function isLayerStep(ins: Instruction): boolean {
  return ins.kind === 'run' || ins.kind === 'copy' || (ins.kind === 'workdir' && ins.path !== '/');
}
