/**
 * Run the peerlb-vs-nginx bench alone and print its table:  node dist/test/bench/nginx-main.js
 * Options through the environment: PEERLB_BENCH_SERVERS, _WORKERS, _CONCURRENCY, _DURATION_MS,
 * PEERLB_BENCH_NGINX_WORKERS.
 */
import { benchVsNginx } from './nginx.js';

const env = (k: string) => (process.env[`PEERLB_BENCH_${k}`] ? Number(process.env[`PEERLB_BENCH_${k}`]) : undefined);
const r = await benchVsNginx({ servers: env('SERVERS'), workers: env('WORKERS'), concurrency: env('CONCURRENCY'), durationMs: env('DURATION_MS') });
if (r.skipped) {
  console.log(`skipped: ${r.skipped}`);
} else {
  console.log(`peerlb SDK vs nginx stream (least_conn), ${JSON.stringify(r.config)}`);
  console.table(r.rows);
  console.table(r.ratios.map((x) => ({ proto: x.proto, 'rps SDK/nginx (goal ≥1.5)': x.rps, 'p50 SDK/nginx': x.p50, 'p99 SDK/nginx': x.p99, 'p50 SDK/nginx, equal load': x.p50AtRate, 'p99 SDK/nginx, equal load (goal ≤0.7)': x.p99AtRate })));
}
