/**
 * `/v1/keyring`: key rotation without restarts, from the agent's own host only.
 *
 *   GET  /v1/keyring                                   → { keys: [id…], primary: id }   (ids, never keys)
 *   POST /v1/keyring  {"op":"install","key":"<base64>"} add a key (frames still sealed with the primary)
 *                     {"op":"use","key":"<base64>"}     make an installed key the primary
 *                     {"op":"remove","key":"<base64>"}  remove a key that is not the primary
 *
 * Rotation with no downtime: install the new key on every agent, then `use` it on every agent,
 * then `remove` the old one everywhere. A key id is the first 4 bytes of SHA-256 of the key, hex.
 *
 * Refused (JSON `{ error, message }`): 403 from anywhere but loopback, or with a Host header that
 * does not name loopback (DNS rebinding); 415 without `content-type: application/json` (so a web
 * page cannot post here without a CORS preflight, which is never granted); 409 when the agent has
 * no keyring (an open cluster cannot be sealed live: start it with a key file); 400 for a bad body
 * or key; 413 over 4 KiB; 405 for other methods.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loopbackGate } from '../admission.js';
import { parseKey, keyIdHex, type Keyring } from '../gossip/keyring.js';
import type { Logger } from '../log.js';

export const KEYRING_PATH = '/v1/keyring';
const MAX_BODY = 4096;

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', connection: status >= 400 ? 'close' : 'keep-alive' });
  res.end(text);
}

const view = (k: Keyring) => ({ keys: k.ids(), primary: k.ids()[0] });

export function handleKeyringRequest(req: IncomingMessage, res: ServerResponse, keyring: Keyring | undefined, log?: Logger): void {
  req.on('error', () => {});
  const from = req.socket?.remoteAddress;
  const refused = loopbackGate(req);
  if (refused === 'address') {
    reply(res, 403, { error: 'forbidden', message: `the keyring endpoint answers loopback (127.0.0.0/8, ::1) only; this request came from ${from ?? 'an unknown address'}` });
    return;
  }
  if (refused === 'host') {
    reply(res, 403, { error: 'forbidden', message: 'the Host header must name a loopback address or localhost' });
    return;
  }
  if (req.method === 'GET') {
    if (!keyring) reply(res, 200, { keys: [], primary: null, open: true });
    else reply(res, 200, view(keyring));
    return;
  }
  if (req.method !== 'POST') {
    res.setHeader('allow', 'GET, POST');
    reply(res, 405, { error: 'method_not_allowed', message: 'use GET or POST' });
    return;
  }
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    reply(res, 415, { error: 'unsupported_media_type', message: 'send the operation as content-type: application/json' });
    return;
  }
  if (!keyring) {
    reply(res, 409, { error: 'no_keyring', message: 'this agent has no keyring (the cluster is open); start it with keyFile to seal gossip' });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) {
      if (!over) reply(res, 413, { error: 'too_large', message: `the body must be at most ${MAX_BODY} bytes` });
      over = true;
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (over) return;
    let body: { op?: unknown; key?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      if (typeof body !== 'object' || body === null) throw new Error('not an object');
    } catch {
      reply(res, 400, { error: 'bad_request', message: 'the body must be a JSON object { "op": "install" | "use" | "remove", "key": "<base64>" }' });
      return;
    }
    const op = body.op;
    if (op !== 'install' && op !== 'use' && op !== 'remove') {
      reply(res, 400, { error: 'bad_request', field: 'op', message: 'op must be "install", "use" or "remove"' });
      return;
    }
    let key: Buffer;
    try {
      key = parseKey(body.key, 'key');
    } catch (err) {
      reply(res, 400, { error: 'bad_request', field: 'key', message: (err as Error).message });
      return;
    }
    try {
      keyring[op](key);
    } catch (err) {
      reply(res, 400, { error: 'bad_request', field: 'key', message: (err as Error).message });
      return;
    }
    log?.info({ op, key: keyIdHex(key), keys: keyring.ids() }, 'keyring changed');
    reply(res, 200, view(keyring));
  });
}
