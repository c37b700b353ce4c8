/**
 * The route table of the agent's one port: every HTTP path and WebSocket upgrade, and the endpoint
 * (agent/endpoints/…) that answers it. The README's table of paths lists the same.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AgentHttp } from './http.js';

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** The endpoints, one handler each. */
export interface AgentEndpoints {
  gossip: UpgradeHandler;
  watch: UpgradeHandler;
  events: UpgradeHandler;
  members: RequestHandler;
  servers: RequestHandler;
  pick: RequestHandler;
  load: RequestHandler;
  health: RequestHandler;
  keyring: RequestHandler;
  metrics: RequestHandler;
  dashboard: RequestHandler;
  favicon: RequestHandler;
  seats: RequestHandler;
}

/** 'prefix': every path under `path` (which ends in '/'). */
export type Route = { kind: 'http' | 'prefix' | 'upgrade'; path: string; endpoint: keyof AgentEndpoints };

/** Path → endpoint, in the order they are mounted. */
export const ROUTES: readonly Route[] = [
  { kind: 'http', path: '/v1/keyring', endpoint: 'keyring' },
  { kind: 'upgrade', path: '/v1/gossip', endpoint: 'gossip' },
  { kind: 'upgrade', path: '/v1/watch', endpoint: 'watch' },
  { kind: 'http', path: '/v1/members', endpoint: 'members' },
  { kind: 'http', path: '/v1/servers', endpoint: 'servers' },
  { kind: 'http', path: '/v1/pick', endpoint: 'pick' },
  { kind: 'http', path: '/v1/load', endpoint: 'load' },
  { kind: 'upgrade', path: '/v1/events', endpoint: 'events' },
  { kind: 'http', path: '/', endpoint: 'dashboard' },
  { kind: 'http', path: '/favicon.ico', endpoint: 'favicon' },
  { kind: 'http', path: '/metrics', endpoint: 'metrics' },
  { kind: 'http', path: '/v1/health', endpoint: 'health' },
  { kind: 'prefix', path: '/v1/seats/', endpoint: 'seats' },
];

/** Mount every route of ROUTES on `http`. */
export function mountRoutes(http: AgentHttp, endpoints: AgentEndpoints): void {
  for (const r of ROUTES) {
    if (r.kind === 'http') http.route(r.path, endpoints[r.endpoint] as RequestHandler);
    else if (r.kind === 'prefix') http.routePrefix(r.path, endpoints[r.endpoint] as RequestHandler);
    else http.upgrade(r.path, endpoints[r.endpoint] as UpgradeHandler);
  }
}
