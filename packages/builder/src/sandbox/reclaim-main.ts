/**
 * Entry point of the watchdog (see watchdog.ts): `node reclaim-main.js ROOT PID` reclaims what
 * the dead hoist process PID left in the store ROOT and on the host.
 */
import { reclaimProcess } from './reclaim.js';

const [root, pidText] = process.argv.slice(2);
const pid = Number(pidText);
if (root && Number.isSafeInteger(pid) && pid > 0) await reclaimProcess(root, pid);
