/**
 * Worker entry of benchPicks (sdk.ts): measures one strategy in a fresh thread and posts the rows.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { measurePicks } from './sdk.js';

const { strategy, sizes, runs, runMs } = workerData as { strategy: string; sizes: number[]; runs: number; runMs: number };
parentPort!.postMessage(measurePicks(strategy, sizes, runs, runMs));
