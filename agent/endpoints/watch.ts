/**
 * `/v1/watch`: the client subscription (agent/subscriptions.ts holds it: snapshot, deltas, the
 * pending budget). Its admission — the token gate and the per-address and total caps — is the
 * shared one of agent/admission.ts, as for /v1/events.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Subscriptions } from '../subscriptions.js';

export function watchUpgrade(subs: Subscriptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => subs.handleUpgrade(req, socket, head);
}
