/**
 * The local load endpoint: a server in another process tells its agent its load with
 *
 *     curl -X PUT --data '{"sessions":12,"utilization":0.4}' http://127.0.0.1:7946/v1/load
 *
 * Body: a JSON object with `sessions`, `connections`, `utilization` (all optional, at least one;
 * see input.ts). Answers: 204 accepted; 400 bad JSON or value (the JSON error names the field);
 * 403 not from loopback; 404 another path; 405 another method; 408 body too slow; 413 body over
 * 4 KiB; 500 the sink failed. Errors are JSON: `{ "error": code, "message": text, "field"?: name }`.
 *
 * Why loopback only: the figures steer every client's picks, and only the server beside the agent
 * knows them. Two browser-borne attacks are closed as well: PUT is not a CORS "simple" method
 * (Fetch standard, §3.2.3 CORS-safelisted method), so a web page cannot send it cross-origin
 * without a preflight, which this endpoint never grants; and the Host header must name loopback,
 * so a DNS-rebinding page (whose Host is its own domain) is refused.
 *
 * The agent's single HTTP server routes `/v1/load` here; nothing in this handler throws.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loopbackGate } from '../admission.js';
import { InvalidLoadError, parseLoadInput, type LoadInput } from '../load/input.js';

export const LOAD_PATH = '/v1/load';
/** Largest body accepted: a report is under 100 bytes; 4 KiB leaves room and bounds memory. */
export const MAX_LOAD_BODY_BYTES = 4096;
/** Longest wait for the whole body, ms. A local server sends 100 bytes in microseconds. */
export const LOAD_BODY_TIMEOUT_MS = 5000;

export interface LoadEndpointOptions {
  /** Default LOAD_BODY_TIMEOUT_MS. */
  bodyTimeoutMs?: number;
}

export type LoadSink = (report: Partial<{ sessions: number; connections: number; utilization: number }>) => void;

interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

function send(res: ServerResponse, status: number, body?: ErrorBody, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  try {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Cache-Control', 'no-store');
    if (body === undefined) {
      res.statusCode = status;
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  } catch {
    res.destroy();
  }
}

/** Refuse and close: the request body is left unread, so the connection cannot be reused. */
function refuse(res: ServerResponse, status: number, body: ErrorBody, headers: Record<string, string> = {}): void {
  send(res, status, body, { ...headers, Connection: 'close' });
}

function pathOf(url: string | undefined): string {
  const u = url ?? '';
  const q = u.search(/[?#]/);
  return q < 0 ? u : u.slice(0, q);
}

/**
 * Handle one request to the load endpoint; calls `sink` with the validated report on success.
 * If `sink` throws an InvalidLoadError the client gets a 400 naming its field; anything else it
 * throws is a 500. Never throws.
 */
export function handleLoadRequest(req: IncomingMessage, res: ServerResponse, sink: LoadSink, opts: LoadEndpointOptions = {}): void {
  try {
    handle(req, res, sink, opts.bodyTimeoutMs ?? LOAD_BODY_TIMEOUT_MS);
  } catch (err) {
    refuse(res, 500, { error: 'internal', message: `load endpoint failed: ${(err as Error)?.message ?? String(err)}` });
  }
}

function handle(req: IncomingMessage, res: ServerResponse, sink: LoadSink, bodyTimeoutMs: number): void {
  // Swallow stream errors (client reset mid-body): the socket is gone, there is no one to answer.
  req.on('error', () => {});
  const refused = loopbackGate(req);
  if (refused === 'address') {
    refuse(res, 403, { error: 'forbidden', message: 'the load endpoint accepts requests from loopback (127.0.0.0/8, ::1) only' });
    return;
  }
  if (refused === 'host') {
    refuse(res, 403, { error: 'forbidden', message: 'the Host header must name a loopback address or localhost' });
    return;
  }
  if (pathOf(req.url) !== LOAD_PATH) {
    refuse(res, 404, { error: 'not_found', message: `no such path; the load endpoint is PUT ${LOAD_PATH}` });
    return;
  }
  if (req.method !== 'PUT') {
    refuse(res, 405, { error: 'method_not_allowed', message: `use PUT ${LOAD_PATH}` }, { Allow: 'PUT' });
    return;
  }
  const tooLarge: ErrorBody = { error: 'too_large', message: `the body must be at most ${MAX_LOAD_BODY_BYTES} bytes` };
  const declared = req.headers['content-length'];
  if (declared !== undefined && !(Number(declared) <= MAX_LOAD_BODY_BYTES)) {
    refuse(res, 413, tooLarge);
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const finish = () => {
    done = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
  };
  const timer = setTimeout(() => {
    if (done) return;
    finish();
    refuse(res, 408, { error: 'timeout', message: `the body did not arrive within ${bodyTimeoutMs} ms` });
  }, bodyTimeoutMs);
  timer.unref?.();
  const onData = (chunk: Buffer | string) => {
    if (done) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > MAX_LOAD_BODY_BYTES) {
      finish();
      req.resume(); // discard the rest; the connection closes after the answer
      refuse(res, 413, tooLarge);
      return;
    }
    chunks.push(b);
  };
  const onClose = () => {
    if (!done) finish(); // client went away before the end of the body: nothing to answer
  };
  const onEnd = () => {
    if (done) return;
    finish();
    accept(Buffer.concat(chunks).toString('utf8'), res, sink);
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('close', onClose);
}

function accept(text: string, res: ServerResponse, sink: LoadSink): void {
  if (text.trim() === '') {
    send(res, 400, { error: 'bad_json', message: 'the body must be a JSON object such as {"sessions":12,"utilization":0.4}' });
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    send(res, 400, { error: 'bad_json', message: `the body is not valid JSON: ${(err as Error).message}` });
    return;
  }
  let clean: LoadInput;
  try {
    clean = parseLoadInput(value);
  } catch (err) {
    send(res, 400, badValue(err));
    return;
  }
  try {
    sink(clean);
  } catch (err) {
    if (err instanceof InvalidLoadError) send(res, 400, badValue(err));
    else send(res, 500, { error: 'internal', message: `the agent could not take the report: ${(err as Error)?.message ?? String(err)}` });
    return;
  }
  send(res, 204);
}

function badValue(err: unknown): ErrorBody {
  const e = err as InvalidLoadError;
  const body: ErrorBody = { error: 'bad_value', message: e?.message ?? String(err) };
  if (e instanceof InvalidLoadError && e.field !== undefined) body.field = e.field;
  return body;
}
