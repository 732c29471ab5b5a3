/** Fakes of the solver's seams, for fast tests (DESIGN.md 3.9): not part of a build. */
export { FakeExecutor, type ExecEvent, type FakeExecutorOptions } from './fake-executor.js';
export { MemoryCacheStore } from './memory-cache.js';
export { FakeImageSource } from './fake-images.js';
