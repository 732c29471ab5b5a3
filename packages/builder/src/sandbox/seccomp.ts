import { release } from 'node:os';
import { BuildError } from '../errors.js';
import { AF_ALG, AF_VSOCK, ALLOWED, ARCH_MAP, BY_ARCH, BY_CAPABILITY, CLONE_NAMESPACE_FLAGS, PERSONALITIES } from './seccomp-lists.js';

/** One argument comparison of a rule (runtime-spec `linux.seccomp.syscalls[].args`). */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

/** When a rule applies: the process holds all `caps`, runs on one of `arches`, on a kernel >= `minKernel`. */
export interface SeccompCondition {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

/** A rule of a profile in Docker's format (`--security-opt seccomp=PATH` reads the same). */
export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: ReadonlyArray<{ architecture: string; subArchitectures: string[] | null }>;
  architectures?: string[];
  flags?: string[];
  syscalls: SeccompRule[];
}

/** What a sandbox runs under: the default profile, none, or a profile read from a file. */
export type SeccompSetting = 'default' | 'unconfined' | SeccompProfile;

/** The runtime spec's `linux.seccomp`, for this process's capabilities and architecture. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  flags?: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }>;
}

const ALLOW = 'SCMP_ACT_ALLOW';
const ENOSYS = 38;
const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);

function conditionalRules(): SeccompRule[] {
  const s390 = ['s390', 's390x'];
  const cloneRule = (index: number): SeccompRule => ({ names: ['clone'], action: ALLOW, args: [{ index, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
  return [
    { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: ALLOW, includes: { minKernel: '4.8' } },
    // every socket family but AF_ALG and AF_VSOCK
    { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] },
    { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_ALG + 1, op: 'SCMP_CMP_EQ' }] },
    { names: ['socket'], action: ALLOW, args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] },
    ...PERSONALITIES.map((value): SeccompRule => ({ names: ['personality'], action: ALLOW, args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
    // clone without namespace flags unless CAP_SYS_ADMIN (the flags are argument 1 on s390)
    { ...cloneRule(0), excludes: { caps: ['CAP_SYS_ADMIN'], arches: s390 } },
    { ...cloneRule(1), includes: { arches: s390 }, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  ];
}

/** The default profile (Docker's default, from the lists in seccomp-lists.ts): EPERM for everything else. */
export function defaultSeccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: ARCH_MAP,
    syscalls: [
      { names: words(ALLOWED), action: ALLOW },
      ...conditionalRules(),
      ...BY_ARCH.map(([arches, names]): SeccompRule => ({ names: words(names), action: ALLOW, includes: { arches } })),
      ...Object.entries(BY_CAPABILITY).map(([cap, names]): SeccompRule => ({ names: words(names), action: ALLOW, includes: { caps: [cap] } })),
    ],
  };
}

export interface SeccompHost {
  /** The process's capabilities (bounding set). */
  caps: readonly string[];
  /** Node's `process.arch` (default: this host's). */
  arch?: string;
  /** Kernel release, e.g. `6.1.0-18-amd64` (default: this host's). */
  kernel?: string;
  /**
   * False when the kernel runs no x32 ABI system calls (see SyscallHelper.x32Abi): x32 is then
   * left out of the filter's architectures (runc's libseccomp compiles it at every RUN, ~7 ms);
   * an x32 call fails either way. Default true, as Docker's profile.
   */
  x32?: boolean;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: 'x86', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
const NATIVE: Record<string, string> = { x64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', ia32: 'SCMP_ARCH_X86', s390x: 'SCMP_ARCH_S390X', ppc64: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64' };

function kernelAtLeast(kernel: string, min: string): boolean {
  const num = (v: string): number[] => v.split(/[.-]/).slice(0, 2).map((x) => Number.parseInt(x, 10) || 0);
  const [a0, a1] = num(kernel);
  const [b0, b1] = num(min);
  return a0! > b0! || (a0 === b0 && a1! >= b1!);
}

function matches(c: SeccompCondition, caps: readonly string[], arch: string, kernel: string, all: boolean): boolean {
  const tests: boolean[] = [];
  if (c.caps?.length) tests.push(all ? c.caps.every((x) => caps.includes(x)) : c.caps.some((x) => caps.includes(x)));
  if (c.arches?.length) tests.push(c.arches.includes(arch));
  if (c.minKernel) tests.push(kernelAtLeast(kernel, c.minKernel));
  return all ? tests.every(Boolean) : tests.some(Boolean);
}

/**
 * A profile as the runtime spec's `linux.seccomp` for one process: the rules whose `includes`
 * hold and whose `excludes` do not (capabilities, architecture, kernel), the architectures
 * of the host's `archMap` entry.
 */
export function compileSeccomp(profile: SeccompProfile, host: SeccompHost): OciSeccomp {
  const nodeArch = host.arch ?? process.arch;
  const arch = GO_ARCH[nodeArch] ?? nodeArch;
  const kernel = host.kernel ?? release();
  const native = NATIVE[nodeArch];
  const entry = profile.archMap?.find((a) => a.architecture === native);
  const fromMap = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [];
  const architectures = profile.architectures ?? fromMap.filter((a) => a !== 'SCMP_ARCH_X32' || host.x32 !== false);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const r of profile.syscalls) {
    if (r.includes && !matches(r.includes, host.caps, arch, kernel, true)) continue;
    if (r.excludes && matches(r.excludes, host.caps, arch, kernel, false)) continue;
    syscalls.push({ names: [...r.names], action: r.action, ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}), ...(r.args?.length ? { args: r.args.map((a) => ({ ...a })) } : {}) });
  }
  const out: OciSeccomp = { defaultAction: profile.defaultAction, architectures, syscalls };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.flags?.length) out.flags = [...profile.flags];
  return out;
}

/** `linux.seccomp` for a sandbox, or undefined when it runs unconfined. */
export function seccompFor(setting: SeccompSetting | undefined, caps: readonly string[], x32?: boolean): OciSeccomp | undefined {
  if (setting === 'unconfined') return undefined;
  return compileSeccomp(setting === undefined || setting === 'default' ? defaultSeccompProfile() : setting, { caps, ...(x32 !== undefined ? { x32 } : {}) });
}

function invalid(file: string, why: string): BuildError {
  return new BuildError('INVALID_SECURITY_OPT', `seccomp profile ${file}: ${why} (expected Docker's format: {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [...], "action": "SCMP_ACT_ALLOW"}]})`);
}

function parseRule(r: unknown, i: number, file: string): SeccompRule {
  const o = r as Partial<SeccompRule> & { name?: unknown };
  if (typeof o !== 'object' || o === null) throw invalid(file, `syscalls[${i}] is not an object`);
  // old profiles name one syscall with "name"
  const names = Array.isArray(o.names) ? o.names : typeof o.name === 'string' ? [o.name] : undefined;
  if (!names || names.some((n) => typeof n !== 'string')) throw invalid(file, `syscalls[${i}] needs "names" (a list of syscall names)`);
  if (typeof o.action !== 'string' || !o.action.startsWith('SCMP_ACT_')) throw invalid(file, `syscalls[${i}].action must be an SCMP_ACT_* value`);
  if (o.args !== undefined && o.args !== null && !Array.isArray(o.args)) throw invalid(file, `syscalls[${i}].args must be a list`);
  const rule: SeccompRule = { names: names as string[], action: o.action };
  if (typeof o.errnoRet === 'number') rule.errnoRet = o.errnoRet;
  if (Array.isArray(o.args) && o.args.length > 0) rule.args = o.args as SeccompArg[];
  if (o.includes) rule.includes = o.includes;
  if (o.excludes) rule.excludes = o.excludes;
  return rule;
}

/** A seccomp profile file in Docker's format (`--security-opt seccomp=PATH`), validated. */
export function parseSeccompProfile(text: string, file: string): SeccompProfile {
  let v: Partial<SeccompProfile>;
  try {
    v = JSON.parse(text) as Partial<SeccompProfile>;
  } catch (e) {
    throw invalid(file, `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw invalid(file, 'not a JSON object');
  if (typeof v.defaultAction !== 'string' || !v.defaultAction.startsWith('SCMP_ACT_')) throw invalid(file, '"defaultAction" must be an SCMP_ACT_* value');
  if (v.syscalls !== undefined && v.syscalls !== null && !Array.isArray(v.syscalls)) throw invalid(file, '"syscalls" must be a list');
  const profile: SeccompProfile = { defaultAction: v.defaultAction, syscalls: (v.syscalls ?? []).map((r, i) => parseRule(r, i, file)) };
  if (typeof v.defaultErrnoRet === 'number') profile.defaultErrnoRet = v.defaultErrnoRet;
  if (Array.isArray(v.archMap)) profile.archMap = v.archMap;
  if (Array.isArray(v.architectures)) profile.architectures = v.architectures;
  if (Array.isArray(v.flags)) profile.flags = v.flags;
  return profile;
}
