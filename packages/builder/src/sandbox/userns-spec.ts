import { currentUserNamespace, idMapped, type UserNamespace } from '@hoist/oci';

interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/**
 * Adapt a generated runtime spec for runc started as root of a user namespace (rootless hoist).
 * The container shares that namespace (no user namespace of its own), so container uid 42 is
 * namespace uid 42 is the 42nd subordinate id on the host, and files keep their ids in layers.
 *
 * - cgroups: runc sees it runs in a user namespace and uses its rootless cgroup manager, which
 *   ignores cgroup permission errors only when the spec names no cgroupsPath and sets no
 *   limits; both go (limits are refused before the build when the cgroup is not delegated).
 * - mount options naming an id the namespace does not map (devpts `gid=5` with a single-id
 *   mapping) make the kernel refuse the mount: they are dropped, as `runc spec --rootless` does.
 * Everything else (namespaces, /proc, sysfs or the /sys bind, the read-only cgroup mount,
 * masked paths, capabilities, no_new_privs) is as for root: runc manages them in a namespace.
 */
export function specForUserNamespace(spec: Record<string, unknown>, ns: UserNamespace): Record<string, unknown> {
  const linux = { ...(spec.linux as Record<string, unknown>) };
  delete linux.cgroupsPath;
  delete linux.resources;
  const mounts = (spec.mounts as SpecMount[]).map((m) => (m.options ? { ...m, options: m.options.filter((o) => mappedOption(o, ns)) } : m));
  return { ...spec, linux, mounts };
}

/** `uid=N` / `gid=N` mount options survive only when N is mapped. */
function mappedOption(option: string, ns: UserNamespace): boolean {
  const m = /^(uid|gid)=(\d+)$/.exec(option);
  if (!m) return true;
  return idMapped(m[1] === 'uid' ? ns.uids : ns.gids, Number(m[2]));
}

/** The spec as runc needs it in the user namespace this process runs in (unchanged outside one). */
export function forThisNamespace(spec: Record<string, unknown>): Record<string, unknown> {
  const ns = currentUserNamespace();
  return ns ? specForUserNamespace(spec, ns) : spec;
}
