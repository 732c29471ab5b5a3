import * as path from 'node:path';
import { createPrivateDir, type PrivateDir } from './private-dir.js';
import { startWatchdog, type Watchdog } from './watchdog.js';

/**
 * What the sandboxes of one build (or one `hoist run`) share, set up with the first sandbox:
 * the watchdog that tears them down if this process dies, and the private tmpfs for bundles
 * and secrets. `close` releases both once every sandbox is gone.
 */
export class SandboxSession {
  private ready: Promise<PrivateDir> | undefined;
  private watchdog: Watchdog | undefined;

  constructor(private readonly root: string) {}

  /** The private directory (root only, in memory when possible). */
  async dir(): Promise<string> {
    this.ready ??= this.start();
    return (await this.ready).path;
  }

  /** Where the bundles of the sandboxes go. */
  async bundles(): Promise<string> {
    return path.join(await this.dir(), 'bundles');
  }

  private async start(): Promise<PrivateDir> {
    this.watchdog = startWatchdog(this.root);
    return createPrivateDir(path.join(this.root, 'tmp'));
  }

  async close(): Promise<void> {
    const ready = this.ready;
    this.ready = undefined;
    if (ready) await (await ready.catch(() => undefined))?.release();
    this.watchdog?.close();
    this.watchdog = undefined;
  }
}
