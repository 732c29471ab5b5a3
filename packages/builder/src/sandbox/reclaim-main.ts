/**
 * Entry point of the watchdog (see watchdog.ts): `node reclaim-main.js ROOT PID` reclaims what
 * the dead hoist process PID left in the store ROOT and on the host.
 */
import { reclaimProcess } from './reclaim.js';

const [root, pidText] = process.argv.slice(2);
const pid = Number(pidText);
// no top-level await: the bundle that carries this script is CommonJS (scripts/bundle.mjs)
if (root && Number.isSafeInteger(pid) && pid > 0) {
  reclaimProcess(root, pid).catch((e: unknown) => {
    process.stderr.write(`hoist reclaim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
