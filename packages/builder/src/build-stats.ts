import type { BuildResult } from './types.js';

/**
 * What one build did, counted as it goes (steps cached and executed, layer blobs fetched from an
 * imported cache). One per build; the result carries a copy (`snapshot`).
 */
export class BuildStats {
  private executed = 0;
  private cached = 0;
  private runSteps = 0;
  private layersFetched = 0;

  stepCached(): void {
    this.cached++;
  }

  stepExecuted(o: { run: boolean }): void {
    this.executed++;
    if (o.run) this.runSteps++;
  }

  layerFetched(): void {
    this.layersFetched++;
  }

  snapshot(): BuildResult['stats'] {
    return { executed: this.executed, cached: this.cached, runSteps: this.runSteps, layersFetched: this.layersFetched };
  }
}
