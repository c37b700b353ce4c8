/** `GET /metrics`: Prometheus text from the agent's registry (agent/metrics.ts). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentMetrics } from '../metrics.js';

export function metricsHandler(metrics: AgentMetrics): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (_req, res) => {
    const text = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType }).end(text);
  };
}
