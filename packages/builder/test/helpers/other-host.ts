/**
 * A second "host" for network tests: a network namespace the test creates, joined to the host by
 * a veth pair with addresses in 198.18.0.0/15 (the range reserved for network tests), with an
 * HTTP server inside. It is reachable from the host on a non-loopback address, so a RUN with
 * outbound access can reach it; everything is removed by stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { run } from '@hoist/testkit';

export interface OtherHost {
  /** `ADDRESS:PORT` of its HTTP server. */
  host: string;
  /** Request paths the server got so far. */
  requests: string[];
  stop(): Promise<void>;
}

const SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => { console.log('request ' + req.url); res.end('other-host\\n'); });
s.listen(0, process.argv[1], () => console.log('listening ' + s.address().port));
`;

async function must(args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function waitListening(child: ChildProcess, requests: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l.startsWith('listening ')) resolve(Number(l.slice(10)));
        else if (l.startsWith('request ')) requests.push(l.slice(8));
      }
    });
    child.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
  });
}

export async function startOtherHost(): Promise<OtherHost> {
  const id = randomBytes(3).toString('hex');
  const ns = `hoist-test-${id}`;
  const [outside, inside] = [`hv${id}a`, `hv${id}b`];
  const net = `198.18.${randomInt(1, 255)}.${randomInt(0, 63) * 4}`.split('.').map(Number);
  const addr = (last: number): string => [...net.slice(0, 3), net[3]! + last].join('.');
  const requests: string[] = [];
  let server: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    server?.kill('SIGKILL');
    await run('ip', ['netns', 'del', ns]);
    await run('ip', ['link', 'del', outside]);
  };
  try {
    await must(['netns', 'add', ns]);
    await must(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
    await must(['link', 'set', inside, 'netns', ns]);
    await must(['addr', 'add', `${addr(1)}/30`, 'dev', outside]);
    await must(['link', 'set', outside, 'up']);
    await must(['-n', ns, 'addr', 'add', `${addr(2)}/30`, 'dev', inside]);
    await must(['-n', ns, 'link', 'set', inside, 'up']);
    server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, addr(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await waitListening(server, requests);
    return { host: `${addr(2)}:${port}`, requests, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
