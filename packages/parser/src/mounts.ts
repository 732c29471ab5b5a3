/** `RUN --mount=...` values: CSV fields of key[=value], validated per mount type. */
import type { RunMount } from './plan-types.js';

export class MountError extends Error {
  constructor(
    message: string,
    /** What to do instead, when there is something more specific than the reference. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Splits one CSV record (RFC 4180 quoting, as Go's encoding/csv reads it). */
export function csvFields(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new MountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
        const ch = text[i]!;
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += ch;
        i++;
      }
      if (i < n && text[i] !== ',') throw new MountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      const comma = text.indexOf(',', i);
      const end = comma < 0 ? n : comma;
      field = text.slice(i, end);
      if (field.includes('"')) throw new MountError('failed to parse csv mounts: bare " in non-quoted-field');
      i = end;
    }
    out.push(field);
    if (i >= n) return out;
    i++; // comma
  }
}

const KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw', 'id', 'sharing', 'required', 'mode', 'uid', 'gid', 'size', 'env'];

function parseBool(key: string, v: string): boolean {
  const l = v.toLowerCase();
  if (['1', 't', 'true'].includes(l)) return true;
  if (['0', 'f', 'false'].includes(l)) return false;
  throw new MountError(`invalid value for ${key}: ${v}`);
}

function parseUint(key: string, v: string, radix: 8 | 10): number {
  const re = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = re.test(v) ? parseInt(v, radix) : NaN;
  if (!Number.isFinite(n) || n > 0xffffffff) throw new MountError(`invalid value ${v} for ${key}`);
  return n;
}

/** Go's `units.RAMInBytes`: `64m`, `1g`, `512kb`, plain bytes. */
export function ramInBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new MountError(`invalid size: '${v}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase() as '' | 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * As BuildKit: `from=` names a stage or image as written (a `$` anywhere but at the end is
 * refused on purpose), so the stage graph is known before any variable is.
 */
function rejectVariable(raw: string): void {
  const i = raw.indexOf('$');
  if (i >= 0 && i !== raw.length - 1) {
    throw new MountError("'from' doesn't support variable expansion, define alias stage instead", 'add a stage "FROM <image> AS <alias>" and write from=<alias>');
  }
}

/**
 * Parses one `--mount` value. `expand` is applied to every value; when `lenient` is set
 * (parse time, before expansion) values that still contain `$` are not validated.
 */
export function parseMount(text: string, expand: (s: string) => string, lenient: boolean): RunMount {
  let type = 'bind';
  let from: string | undefined;
  let source: string | undefined;
  let target: string | undefined;
  let readonly: boolean | undefined;
  let id: string | undefined;
  let sharing: string | undefined;
  let required = false;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let size: number | undefined;
  let env: string | undefined;
  for (const field of csvFields(text)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') readonly = true;
      else if (key === 'readwrite' || key === 'rw') readonly = false;
      else if (key === 'required' && (type === 'secret' || type === 'ssh')) required = true;
      else if (key === 'required') throw new MountError(`unexpected key '${key}' for mount type '${type}'`);
      else throw new MountError(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    if (!KEYS.includes(key)) throw new MountError(`unexpected key '${key}' in '${field}'`);
    if (key === 'from') rejectVariable(field.slice(eq + 1));
    const value = expand(field.slice(eq + 1));
    if (lenient && value.includes('$')) continue;
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(t)) throw new MountError(`unsupported mount type "${value}"`);
        type = t;
        break;
      }
      case 'from':
        from = value;
        break;
      case 'source':
      case 'src':
        source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = value;
        break;
      case 'readonly':
      case 'ro':
        readonly = parseBool(key, value);
        break;
      case 'readwrite':
      case 'rw':
        readonly = !parseBool(key, value);
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new MountError(`unexpected key '${key}' for mount type '${type}'`);
        required = parseBool(key, value);
        break;
      case 'id':
        id = value;
        break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (!['shared', 'private', 'locked'].includes(s)) throw new MountError(`unsupported sharing value "${value}"`);
        sharing = s;
        break;
      }
      case 'mode':
        mode = parseUint(key, value, 8);
        break;
      case 'uid':
        uid = parseUint(key, value, 10);
        break;
      case 'gid':
        gid = parseUint(key, value, 10);
        break;
      case 'size':
        size = ramInBytes(value);
        break;
      case 'env':
        env = value;
        break;
    }
  }
  const fileInfo = type === 'secret' || type === 'ssh' || type === 'cache';
  if (!fileInfo && (mode !== undefined || uid !== undefined || gid !== undefined)) {
    throw new MountError(`${mode !== undefined ? 'mode' : uid !== undefined ? 'uid' : 'gid'} not allowed for "${type}" type mounts`);
  }
  if (sharing !== undefined && type !== 'cache') throw new MountError(`invalid cache sharing set for ${type} mount`);
  if (size !== undefined && type !== 'tmpfs') throw new MountError(`size not allowed for "${type}" type mounts`);
  if (env !== undefined && type !== 'secret') throw new MountError(`env not allowed for "${type}" type mounts`);
  // An empty or relative target is resolved against the working directory by the planner.
  const needTarget = (): string => target ?? '';
  const opt = <T extends object>(o: T): T => {
    for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
    return o;
  };
  switch (type) {
    case 'bind':
      return opt({ type: 'bind', target: needTarget(), source, from, readwrite: readonly === false });
    case 'cache':
      return opt({ type: 'cache', target: needTarget(), id, source, from, sharing: (sharing ?? 'shared') as 'shared', readonly: readonly === true, uid, gid, mode });
    case 'tmpfs':
      return opt({ type: 'tmpfs', target: needTarget(), size });
    case 'secret': {
      if (from !== undefined) throw new MountError('secret mount should not have a from');
      if (source !== undefined && id !== undefined) throw new MountError("both source and id can't be set");
      let sid = id ?? source;
      if (sid === undefined && target) sid = target.replace(/\/+$/, '').split('/').pop();
      if (sid === undefined && env !== undefined) sid = env;
      if (sid === undefined || sid === '') {
        if (lenient) sid = '';
        else throw new MountError('invalid secret mount. one of source, target required');
      }
      const tgt = target ?? (env === undefined ? `/run/secrets/${sid}` : undefined);
      return opt({ type: 'secret', id: sid, target: tgt, env, required, mode, uid, gid });
    }
    case 'ssh':
      return opt({ type: 'ssh', id: id ?? 'default', target, required, mode, uid, gid });
    default:
      throw new MountError(`unsupported mount type "${type}"`);
  }
}
