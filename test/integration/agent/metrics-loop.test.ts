/**
 * /metrics carries the event-loop delay (issue "Thirty real hosts"): its p99 and max since the
 * previous scrape, from node:perf_hooks monitorEventLoopDelay. A loop blocked for 120 ms shows as a
 * max of at least ~100 ms; the next scrape shows a window without it.
 */
import { expect, test } from 'vitest';
import { AgentMetrics, type MetricsSource } from '../../../agent/metrics.js';
import { sleep } from '../../support/until.js';

const src: MetricsSource = {
  members: () => [],
  gossip: () => ({ framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropped: {} }),
  subscribers: () => 0,
  load: () => undefined,
  health: () => 'healthy',
  detector: () => undefined,
};

const gauge = (text: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]);

test('event-loop delay p99 and max since the previous scrape', async () => {
  const m = new AgentMetrics(src, { node: 'n1', service: 'game' });
  try {
    await sleep(50);
    await m.text(); // start a window
    await sleep(20);
    const until = performance.now() + 120;
    while (performance.now() < until) {
      /* block the loop */
    }
    await sleep(30);
    const busy = await m.text();
    expect(gauge(busy, 'peerlb_event_loop_delay_max_seconds')).toBeGreaterThanOrEqual(0.09);
    expect(gauge(busy, 'peerlb_event_loop_delay_p99_seconds')).toBeGreaterThan(0);
    await sleep(300);
    const quiet = await m.text();
    // A new window: the 120 ms block is not in it (the machine may still stall a little).
    expect(gauge(quiet, 'peerlb_event_loop_delay_max_seconds')).toBeLessThan(gauge(busy, 'peerlb_event_loop_delay_max_seconds'));
  } finally {
    m.close();
  }
});
