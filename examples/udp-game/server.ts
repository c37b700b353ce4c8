/**
 * A UDP game server: players send inputs, the server runs a fixed-rate tick and sends each player
 * its state. Sessions are keyed by player id and expire when a player goes quiet. The session
 * count is what it reports to its peerlb agent (in-process `agent.report`).
 *
 * Datagrams (text, one per packet):
 *   client → server   "IN <player> <seq>"      an input; opens the session if new
 *                     "BYE <player>"           leave
 *   server → client   "ST <player> <seq> <tick> <server>"   state after the tick, echoing the last input seq
 */
import dgram from 'node:dgram';

export interface GameServerOptions {
  host?: string;
  port?: number;
  /** Name the server puts in its replies (so clients can see who served them). */
  name: string;
  tickHz?: number;
  /** A session with no input for this long ends. Default 3000 ms. */
  sessionTimeoutMs?: number;
  /** Called after every tick with the live session count. */
  onSessions?: (sessions: number) => void;
}

interface Session {
  addr: string;
  port: number;
  seq: number;
  lastSeen: number;
  dirty: boolean;
}

export interface GameServer {
  port: number;
  sessions(): number;
  /** Sessions by player id (for tests: which server holds which player). */
  players(): string[];
  counters: { inputs: number; states: number; badPackets: number };
  close(): Promise<void>;
}

export function startGameServer(opts: GameServerOptions): Promise<GameServer> {
  const sock = dgram.createSocket('udp4');
  const sessions = new Map<string, Session>();
  const counters = { inputs: 0, states: 0, badPackets: 0 };
  const timeout = opts.sessionTimeoutMs ?? 3000;
  let tick = 0;

  sock.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    const parts = text.split(' ');
    const player = parts[1];
    if (!player || player.length > 64) {
      counters.badPackets++;
      return;
    }
    if (parts[0] === 'IN' && parts.length === 3) {
      const seq = Number(parts[2]);
      if (!Number.isSafeInteger(seq)) {
        counters.badPackets++;
        return;
      }
      counters.inputs++;
      const s = sessions.get(player);
      if (s) {
        s.addr = rinfo.address;
        s.port = rinfo.port;
        s.seq = seq;
        s.lastSeen = Date.now();
        s.dirty = true;
      } else sessions.set(player, { addr: rinfo.address, port: rinfo.port, seq, lastSeen: Date.now(), dirty: true });
    } else if (parts[0] === 'BYE') {
      sessions.delete(player);
    } else counters.badPackets++;
  });
  sock.on('error', () => {});

  const timer = setInterval(() => {
    tick++;
    const now = Date.now();
    for (const [player, s] of sessions) {
      if (now - s.lastSeen > timeout) {
        sessions.delete(player);
        continue;
      }
      if (!s.dirty) continue;
      s.dirty = false;
      counters.states++;
      sock.send(`ST ${player} ${s.seq} ${tick} ${opts.name}`, s.port, s.addr);
    }
    opts.onSessions?.(sessions.size);
  }, 1000 / (opts.tickHz ?? 20));

  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      sock.off('error', reject);
      resolve({
        port: sock.address().port,
        sessions: () => sessions.size,
        players: () => [...sessions.keys()],
        counters,
        close: () =>
          new Promise<void>((r) => {
            clearInterval(timer);
            sock.close(() => r());
          }),
      });
    });
  });
}
