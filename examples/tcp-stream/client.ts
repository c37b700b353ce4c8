/**
 * A streaming client: keeps `streams` TCP streams open through the peerlb SDK (each connect picks
 * a server, with failover), reads them, and when a stream breaks (its server died) opens a new one
 * at once on another server.
 */
import type { Cluster } from '../../sdk/index.js';

export interface StreamClientOptions {
  cluster: Cluster;
  streams: number;
  durationMs: number;
  /** Each stream ends by itself after a random time up to this (churn). Default: never. */
  maxStreamMs?: number;
}

export interface StreamClientResult {
  opened: number;
  failedConnects: number;
  broken: number;
  bytes: number;
  /** Streams opened per server (from the server's OK line). */
  byServer: Map<string, number>;
}

export async function runStreams(o: StreamClientOptions): Promise<StreamClientResult> {
  const res: StreamClientResult = { opened: 0, failedConnects: 0, broken: 0, bytes: 0, byServer: new Map() };
  const end = Date.now() + o.durationMs;
  let n = 0;
  const one = async (): Promise<void> => {
    while (Date.now() < end) {
      let sock;
      try {
        sock = await o.cluster.connect({ timeoutMs: 1000 });
      } catch {
        res.failedConnects++;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      res.opened++;
      const id = ++n;
      await new Promise<void>((resolve) => {
        const life = Math.min(end - Date.now(), o.maxStreamMs ? Math.random() * o.maxStreamMs : Infinity);
        const stop = setTimeout(() => sock.end(), Math.max(0, life));
        let head = '';
        sock.on('data', (d: Buffer) => {
          res.bytes += d.length;
          if (head !== null && head.length < 64) {
            head += d.toString('latin1');
            const m = /^OK (\S+)\n/.exec(head);
            if (m) {
              res.byServer.set(m[1]!, (res.byServer.get(m[1]!) ?? 0) + 1);
              head = 'x'.repeat(64);
            }
          }
        });
        sock.on('error', () => {});
        sock.on('close', (hadError: boolean) => {
          clearTimeout(stop);
          if (hadError || Date.now() < end - 50) res.broken += sock.readableEnded ? 0 : 1;
          resolve();
        });
        sock.write(`HELLO s${id}\n`);
      });
    }
  };
  await Promise.all(Array.from({ length: o.streams }, one));
  return res;
}
