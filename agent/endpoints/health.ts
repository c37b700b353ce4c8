/** `GET /v1/health`: this agent's server health (healthy, unhealthy, draining). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../http.js';
import type { Health } from '../../sdk/core/protocol.js';

export function healthHandler(node: string, health: () => Health): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => sendJson(res, 200, { node, health: health() });
}
