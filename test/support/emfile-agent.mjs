// An agent (built, dist/) whose process runs out of file descriptors while it checks its server:
// argv host, tcpPort. Run under a low `ulimit -n`. Prints JSON log lines on stdout and, at the
// end, one line `result {…}` with the health it ended with and how many descriptors it filled.
import fs from 'node:fs';
import { pino } from 'pino';
import { startAgent } from '../../dist/agent/index.js';

const [host, tcpPort] = process.argv.slice(2);
const agent = await startAgent(
  { service: 'game', node: 'fd', host, tcpPort: Number(tcpPort), port: 0, gossipProfile: 'local', health: { type: 'tcp', intervalMs: 50, fall: 1, rise: 1 } },
  { log: pino({ level: 'info' }, pino.destination({ fd: 1, sync: true })) },
);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(300);
const before = agent.currentHealth();
// Take every free descriptor, hold them for 20 probe intervals, then give them back.
const fds = [];
for (let i = 0; i < 100_000; i++) {
  try {
    fds.push(fs.openSync('/dev/null', 'r'));
  } catch (err) {
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE') throw err;
    break;
  }
}
await sleep(1000);
const during = agent.currentHealth();
for (const fd of fds) fs.closeSync(fd);
await sleep(300);
process.stdout.write(`result ${JSON.stringify({ before, during, after: agent.currentHealth(), filled: fds.length })}\n`);
await agent.stop();
process.exit(0);
