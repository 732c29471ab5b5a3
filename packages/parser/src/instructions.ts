/**
 * The typed instruction layer: `Node` -> `Instruction` with values as written (expansion
 * happens in the planner), with BuildKit's argument-count, flag and form checks.
 */
import type { ArgDecl, Node, RawHeredoc } from './ast.js';
import type { CommandForm, Heredoc, Instruction, RunMount } from './plan-types.js';
import { fail, type Location, type ParseErrorCode } from './errors.js';
import { parseFlags, type FlagSpec } from './flags.js';
import { MountError, parseMount } from './mounts.js';
import { columnOf, heredocFromWord } from './split.js';
import { parseGoDuration } from './values.js';

export function at(node: Node, file: string, token?: string): Location {
  return { file, line: node.startLine, column: token === undefined ? node.column : columnOf(node, token), endLine: node.endLine };
}

function err(code: ParseErrorCode, node: Node, file: string, message: string, hint: string, token?: string): never {
  fail(code, at(node, file, token), message, hint);
}

const KW = (n: Node): string => n.keyword.toUpperCase();

function atLeastOne(node: Node, file: string, usage: string): void {
  if (node.args.length === 0) err('MissingArgument', node, file, `${KW(node)} requires at least one argument`, `usage: ${usage}`);
}

function exactlyOne(node: Node, file: string, usage: string): void {
  if (node.args.length !== 1) {
    err('MissingArgument', node, file, `${KW(node)} requires exactly one argument`, `usage: ${usage}`);
  }
}

export interface FromDecl {
  baseName: string;
  platform?: string;
  name?: string;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

export function parseFromNode(node: Node, file: string): FromDecl {
  const a = node.args;
  let name: string | undefined;
  if (a.length === 3 && a[1]!.toLowerCase() === 'as') {
    name = a[2]!;
    if (!STAGE_NAME.test(name.toLowerCase())) {
      err('InvalidStageName', node, file, `invalid name for build stage: ${JSON.stringify(name)}, name can't start with a number or contain symbols`, 'stage names start with a letter and contain only letters, digits, "-", "_" and "."', name);
    }
  } else if (a.length !== 1) {
    err('InvalidFrom', node, file, 'FROM requires either one or three arguments', 'usage: FROM [--platform=<platform>] <image> [AS <name>]');
  }
  const flags = parseFlags(node, file, { platform: 'string' });
  const out: FromDecl = { baseName: a[0]! };
  const platform = flags.strings.get('platform');
  if (platform !== undefined && platform !== '') out.platform = platform;
  if (name !== undefined) out.name = name;
  return out;
}

export function parseArgDecls(node: Node, file: string): ArgDecl[] {
  atLeastOne(node, file, 'ARG <name>[=<default value>] ...');
  parseFlags(node, file, {});
  return node.args.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) return { name: word };
    if (eq === 0) err('InvalidEnv', node, file, 'ARG names can not be blank', 'write ARG NAME=value', word);
    return { name: word.slice(0, eq), value: word.slice(eq + 1) };
  });
}

function command(node: Node, heredocs: Heredoc[]): CommandForm {
  if (node.json) return { form: 'exec', args: [...node.args] };
  void heredocs;
  return { form: 'shell', command: node.args[0] ?? '' };
}

export function chompTabs(body: string): string {
  return body.replace(/^\t+/gm, '');
}

function heredocsOf(docs: RawHeredoc[]): Heredoc[] {
  return docs.map((d) => {
    const h: Heredoc = { name: d.name, content: d.chomp ? chompTabs(d.body) : d.body, expand: d.expand, chomp: d.chomp };
    if (d.fd !== undefined) h.fd = d.fd;
    return h;
  });
}


function parseCopy(node: Node, file: string, add: boolean): Instruction {
  if (node.args.length < 2) {
    err('MissingArgument', node, file, `${KW(node)} requires at least two arguments, but only one was provided. Destination could not be determined.`, `usage: ${KW(node)} [flags] <src>... <dest>`);
  }
  const spec: FlagSpec = add
    ? { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'strings', unpack: 'bool' }
    : { chown: 'string', chmod: 'string', link: 'bool', from: 'string', parents: 'bool', exclude: 'strings' };
  const f = parseFlags(node, file, spec);
  const words = node.args;
  const dest = words[words.length - 1]!;
  if (heredocFromWord(dest) !== undefined) {
    err('InvalidHeredoc', node, file, `${KW(node)} cannot accept a heredoc as a destination`, 'put the heredoc before the destination: COPY <<EOF /dest', dest);
  }
  const all = heredocsOf(node.heredocs);
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const w of words.slice(0, -1)) {
    const doc = heredocFromWord(w);
    if (doc === undefined) {
      sources.push(w);
      continue;
    }
    const body = all.find((h) => h.name === doc.name);
    heredocs.push(body ?? { name: doc.name, content: '', expand: doc.expand, chomp: doc.chomp });
  }
  const ins: Instruction = {
    kind: 'copy',
    add,
    sources,
    dest,
    link: f.bools.get('link') ?? false,
    parents: f.bools.get('parents') ?? false,
    exclude: f.lists.get('exclude') ?? [],
    keepGitDir: f.bools.get('keep-git-dir') ?? false,
    heredocs,
  };
  const from = f.strings.get('from');
  if (from !== undefined && from !== '') ins.from = from;
  const chown = f.strings.get('chown');
  if (chown !== undefined && chown !== '') ins.chown = chown;
  const chmod = f.strings.get('chmod');
  if (chmod !== undefined && chmod !== '') ins.chmod = chmod;
  const checksum = f.strings.get('checksum');
  if (checksum !== undefined && checksum !== '') ins.checksum = checksum;
  if (f.bools.has('unpack')) ins.unpack = f.bools.get('unpack')!;
  return ins;
}


function parseRun(node: Node, file: string): Instruction {
  const f = parseFlags(node, file, { mount: 'strings', network: 'string', security: 'string' });
  const mounts: RunMount[] = [];
  for (const m of f.lists.get('mount') ?? []) {
    try {
      mounts.push(parseMount(m, (s) => s, true));
    } catch (e) {
      if (e instanceof MountError) err('InvalidMount', node, file, e.message, e.hint ?? 'see https://docs.docker.com/reference/dockerfile/#run---mount', m);
      throw e;
    }
  }
  const network = f.strings.get('network') ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host') {
    err('InvalidNetwork', node, file, `unsupported network mode "${network}"`, 'use --network=default, --network=none or --network=host', '--network');
  }
  const security = f.strings.get('security') ?? 'sandbox';
  if (security !== 'sandbox' && security !== 'insecure') {
    err('InvalidSecurity', node, file, `unsupported security mode "${security}"`, 'use --security=sandbox or --security=insecure', '--security');
  }
  const heredocs = heredocsOf(node.heredocs);
  return { kind: 'run', command: command(node, heredocs), mounts, network, security, heredocs };
}

function pairs(node: Node, file: string): Array<[string, string]> {
  atLeastOne(node, file, `${KW(node)} <key>=<value> ...`);
  parseFlags(node, file, {});
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 2 < node.args.length + 1; i += 3) {
    const k = node.args[i]!;
    if (k === '') err('InvalidEnv', node, file, `${KW(node)} names can not be blank`, `write ${KW(node)} NAME=value`);
    out.push([k, node.args[i + 1] ?? '']);
  }
  return out;
}

function parseHealthcheck(node: Node, file: string): Instruction {
  atLeastOne(node, file, 'HEALTHCHECK [options] CMD <command> | HEALTHCHECK NONE');
  const typ = node.args[0]!.toUpperCase();
  const rest = node.args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) err('InvalidHealthcheck', node, file, 'HEALTHCHECK NONE takes no arguments', 'write just HEALTHCHECK NONE');
    return { kind: 'healthcheck', test: ['NONE'] };
  }
  const f = parseFlags(node, file, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' });
  if (typ !== 'CMD') err('InvalidHealthcheck', node, file, `Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`, 'write HEALTHCHECK CMD <command> or HEALTHCHECK NONE', node.args[0]);
  if (rest.length === 0) err('InvalidHealthcheck', node, file, 'Missing command after HEALTHCHECK CMD', 'write HEALTHCHECK CMD <command>');
  const ins: Instruction = { kind: 'healthcheck', test: node.json ? ['CMD', ...rest] : ['CMD-SHELL', rest[0]!] };
  const durations: Array<[string, 'interval' | 'timeout' | 'startPeriod' | 'startInterval']> = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ];
  for (const [flag, field] of durations) {
    const v = f.strings.get(flag);
    if (v === undefined || v === '') continue;
    const ns = parseGoDuration(v);
    if (ns === undefined) err('InvalidHealthcheck', node, file, `time: invalid duration ${JSON.stringify(v)}`, 'durations look like 30s, 1m30s, 500ms', '--' + flag);
    if (ns === 0) continue;
    if (ns < 1e6) err('InvalidHealthcheck', node, file, `Interval ${JSON.stringify(flag)} cannot be less than 1ms`, 'use a duration of at least 1ms', '--' + flag);
    ins[field] = ns;
  }
  const retries = f.strings.get('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2147483647) {
      err('InvalidHealthcheck', node, file, `strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`, '--retries takes a whole number', '--retries');
    }
    const n = Number(retries);
    if (n < 0) err('InvalidHealthcheck', node, file, `--retries cannot be negative (${n})`, '--retries takes a number >= 0', '--retries');
    ins.retries = n;
  }
  return ins;
}

function parseOnbuild(node: Node, file: string): Instruction {
  parseFlags(node, file, {});
  const inner = node.inner;
  if (!inner) err('MissingArgument', node, file, 'ONBUILD requires at least one argument', 'usage: ONBUILD <INSTRUCTION>');
  const trig = inner.keyword.toUpperCase();
  if (trig === 'ONBUILD') err('InvalidOnbuild', node, file, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', 'remove the second ONBUILD');
  if (trig === 'MAINTAINER' || trig === 'FROM') err('InvalidOnbuild', node, file, `${trig} isn't allowed as an ONBUILD trigger`, 'ONBUILD triggers cannot be FROM or MAINTAINER');
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const d of inner.heredocs) expression += '\n' + d.body + d.name;
  return { kind: 'onbuild', expression };
}

/** Node (not FROM, not a meta ARG) -> typed, unexpanded instruction. */
export function parseInstruction(node: Node, file: string): Instruction {
  const kw = node.keyword;
  switch (kw) {
    case 'run':
      return parseRun(node, file);
    case 'copy':
      return parseCopy(node, file, false);
    case 'add':
      return parseCopy(node, file, true);
    case 'env':
      return { kind: 'env', pairs: pairs(node, file) };
    case 'label':
      return { kind: 'label', pairs: pairs(node, file) };
    case 'workdir':
      exactlyOne(node, file, 'WORKDIR <path>');
      parseFlags(node, file, {});
      return { kind: 'workdir', path: node.args[0]! };
    case 'user':
      exactlyOne(node, file, 'USER <user>[:<group>]');
      parseFlags(node, file, {});
      return { kind: 'user', user: node.args[0]! };
    case 'cmd':
      parseFlags(node, file, {});
      return { kind: 'cmd', command: command(node, []) };
    case 'entrypoint':
      parseFlags(node, file, {});
      return { kind: 'entrypoint', command: command(node, []) };
    case 'expose':
      atLeastOne(node, file, 'EXPOSE <port>[/<protocol>] ...');
      parseFlags(node, file, {});
      return { kind: 'expose', ports: [...node.args].sort() };
    case 'volume': {
      atLeastOne(node, file, 'VOLUME <path> ... | VOLUME ["<path>", ...]');
      parseFlags(node, file, {});
      const paths = node.args.map((v) => v.trim());
      if (paths.some((p) => p === '')) err('MissingArgument', node, file, 'VOLUME specified can not be an empty string', 'remove the empty path');
      return { kind: 'volume', paths };
    }
    case 'stopsignal':
      exactlyOne(node, file, 'STOPSIGNAL <signal>');
      parseFlags(node, file, {});
      return { kind: 'stopsignal', signal: node.args[0]! };
    case 'shell':
      parseFlags(node, file, {});
      if (node.args.length === 0) err('MissingArgument', node, file, 'SHELL requires at least one argument', 'usage: SHELL ["executable", "parameters"]');
      if (!node.json) err('InvalidShell', node, file, 'SHELL requires the arguments to be in JSON form', `write SHELL ${JSON.stringify(node.rest.split(/\s+/))}`);
      return { kind: 'shell', shell: [...node.args] };
    case 'healthcheck':
      return parseHealthcheck(node, file);
    case 'onbuild':
      return parseOnbuild(node, file);
    case 'maintainer':
      if (node.args.length !== 1) err('MissingArgument', node, file, 'MAINTAINER requires exactly one argument', 'usage: MAINTAINER <name> (deprecated: use LABEL maintainer=<name>)');
      parseFlags(node, file, {});
      return { kind: 'maintainer', name: node.args[0]! };
    case 'arg':
      return { kind: 'arg', args: parseArgDecls(node, file) };
    default:
      return unknownInstruction(node, file);
  }
}

const KNOWN = ['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

function unknownInstruction(node: Node, file: string): never {
  const word = node.original.split(/[ \t\v\f\r]/)[0] ?? node.keyword;
  const upper = word.toUpperCase();
  const close = KNOWN.find((k) => distance(k, upper) <= Math.max(1, Math.floor(k.length / 3)));
  err('UnknownInstruction', node, file, `unknown instruction: ${word}`, close ? `did you mean ${close}?` : `instructions are ${KNOWN.join(', ')}`);
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

export { KNOWN as KNOWN_INSTRUCTIONS };
