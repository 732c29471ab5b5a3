/** What the dispatch checks track through a stage, as BuildKit's dispatch state holds it. */
import type { BaseImageInfo } from '../plan-types.js';
import { DEFAULT_PATH } from '../state.js';
import type { At } from './report.js';

export interface CheckState {
  /** Variables visible to expansion; `undefined` when the base image's env is unknown. */
  env: Map<string, string> | undefined;
  /** ARG names declared in this stage (defined for UndefinedVar even without a value). */
  declared: Set<string>;
  /** The image config has a SHELL (from the base image or a SHELL instruction). */
  shellSet: boolean;
  /** An absolute-or-not WORKDIR was set in this build (base images do not count). */
  workdirSet: boolean;
  /** Line of the last CMD / ENTRYPOINT / HEALTHCHECK in this stage. */
  once: Map<string, At>;
}

export function stateFromBase(info: BaseImageInfo | undefined, scratch: boolean): CheckState {
  let env: Map<string, string> | undefined;
  if (scratch) env = new Map([['PATH', DEFAULT_PATH]]);
  else if (info?.env) {
    env = new Map();
    for (const kv of info.env) {
      const eq = kv.indexOf('=');
      env.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
    }
  }
  return { env, declared: new Set(), shellSet: (info?.shell?.length ?? 0) > 0, workdirSet: false, once: new Map() };
}

export function stateFromParent(p: CheckState): CheckState {
  return { env: p.env ? new Map(p.env) : undefined, declared: new Set(), shellSet: p.shellSet, workdirSet: p.workdirSet, once: new Map() };
}
