/**
 * hoist as a library: {@link build} does what `hoist build` does (base images from the store or
 * their registry, build caches imported and exported, outputs written, tags pushed), with the
 * command's flags as a {@link BuildRequest}.
 *
 * @packageDocumentation
 */
export { build, type BuildRequest, type BuildSummary } from './library/build.js';
export type { DockerfileSource } from './library/dockerfile.js';
export { storeRoot, openStore, type OpenedStore } from './store.js';
export { reportError } from './report.js';
export { UsageError } from './errors.js';
export type { BuildEvent, BuildResult, MultiBuildResult, Secret, SshAgent, Entitlement, SeccompSetting, DefaultNetwork } from '@hoist/builder';
export type { RegistryClient } from '@hoist/registry-client';
export type { Descriptor } from '@hoist/oci';
export { BuildError } from '@hoist/builder';
export { ParseError } from '@hoist/parser';
export { RegistryError } from '@hoist/registry-client';
