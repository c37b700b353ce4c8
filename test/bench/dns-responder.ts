/**
 * The anchor of the DNS bench: a minimal dns-packet responder (one UDP socket, decode, a fixed
 * answer per name, encode, send), answering the names the bench asks the agent. Run as its own
 * process: `node dns-responder.js <port>`; prints "port N" once listening.
 */
import dgram from 'node:dgram';
import dnsPacket, { type Answer } from 'dns-packet';

const HOSTS = ['127.0.1.1', '127.0.1.2', '127.0.1.3'];
const FIXED: Record<string, Answer[]> = {
  'game.peerlb|A': HOSTS.map((h) => ({ type: 'A', name: 'game.peerlb', ttl: 1, data: h }) as Answer),
  '_game._tcp.peerlb|SRV': HOSTS.map((h, i) => ({ type: 'SRV', name: '_game._tcp.peerlb', ttl: 1, data: { priority: 0, weight: 100, port: 7000, target: `n${i + 1}.node.peerlb` } }) as Answer),
};

const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  let q;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const question = q.questions?.[0];
  const answers = question ? (FIXED[`${question.name.toLowerCase()}|${question.type}`] ?? []) : [];
  const res = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.AUTHORITATIVE_ANSWER | (answers.length ? 0 : 3), questions: question ? [question] : [], answers });
  sock.send(res, rinfo.port, rinfo.address);
});
sock.bind(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`port ${sock.address().port}`));
