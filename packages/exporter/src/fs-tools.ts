export { pidAlive, readdirOrEmpty, treeSize } from '@hoist/oci';

/** The pid in a temp name: `<what>-<pid>-<hex>`, `<pid>-<hex>` or `<what>-<pid>`. */
export function pidInName(name: string): number | undefined {
  const m = /(?:^|-)(\d+)-[0-9a-f]+$/.exec(name) ?? /^[a-z]+-(\d+)$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
