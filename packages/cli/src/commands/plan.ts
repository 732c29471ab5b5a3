import * as path from 'node:path';
import { formatPlan, parse, plan } from '@hoist/parser';
import { readDockerfile } from '../library/dockerfile.js';
import { parseKeyValues } from '../args.js';

export async function planCommand(context: string, o: { file?: string; buildArg: string[]; target?: string; platform?: string; format: 'json' | 'dot' | 'text' }): Promise<number> {
  const df = await readDockerfile(path.resolve(context), o.file);
  const ast = parse(df.text, { file: df.path });
  const p = plan(ast, { buildArgs: parseKeyValues(o.buildArg, '--build-arg', true), ...(o.target ? { target: o.target } : {}), ...(o.platform ? { platform: o.platform } : {}) });
  for (const w of p.warnings) process.stderr.write(`WARNING: ${w.message}${w.line ? ` (line ${w.line})` : ''}\n`);
  process.stdout.write(formatPlan(p, o.format).replace(/\n?$/, '\n'));
  return 0;
}
