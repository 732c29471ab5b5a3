// Build fixtures/hello with hoist's library, as `hoist build -t hello:ts -o type=oci,dest=… fixtures/hello` does.
// Usage: node build-hello.js [CONTEXT] [ARCHIVE]   (as root; the store is $HOIST_ROOT or ~/.local/share/hoist)
import { build, type BuildEvent } from '@hoist/cli';

const [context = 'fixtures/hello', archive = 'hello.oci.tar'] = process.argv.slice(2);
const stop = new AbortController();
process.once('SIGINT', () => stop.abort()); // stops RUN sandboxes and unmounts, as Ctrl-C does for the CLI

function show(ev: BuildEvent): void {
  if (ev.type === 'step' && ev.status !== 'start') console.error(`${ev.status.padEnd(6)} ${ev.label}`);
}

const result = await build({
  context,
  tags: ['hello:ts'],
  outputs: [`type=oci,dest=${archive}`],
  progress: show,
  log: (line) => process.stderr.write(line),
  signal: stop.signal,
});
console.log(`${result.digest} ${result.tags.join(' ')} (${result.stats.executed} steps run, ${result.stats.cached} cached)`);
