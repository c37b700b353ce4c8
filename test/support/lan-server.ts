/**
 * The example servers (UDP game + TCP stream) as a process of their own, without an agent, so a
 * test can kill -9 the server while its agent (`peerlb agent --udp --tcp`) lives on, in another
 * process. Used by test/lan in network namespaces.
 *
 *   node dist/test/support/lan-server.js <name> <host> <udpPort> <tcpPort>
 *
 * Prints one JSON line {"ready":name,"pid":…} when both listen; SIGTERM closes them and exits.
 */
import { startGameServer } from '../../examples/udp-game/server.js';
import { startStreamServer } from '../../examples/tcp-stream/server.js';

const [name, host, udp, tcp] = process.argv.slice(2);
if (!name || !host || !udp || !tcp) {
  process.stderr.write('usage: lan-server.js <name> <host> <udpPort> <tcpPort>\n');
  process.exit(2);
}
const game = await startGameServer({ host, port: Number(udp), name, sessionTimeoutMs: 1000 });
const stream = await startStreamServer({ host, port: Number(tcp), name });
process.stdout.write(JSON.stringify({ ready: name, pid: process.pid, udp: game.port, tcp: stream.port }) + '\n');
const stop = async () => {
  await Promise.all([game.close(), stream.close()]);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
