/**
 * How long this process's event loop was held by its own work, as opposed to the machine not
 * running it. monitorEventLoopDelay measures wall time, so on a busy 2-core machine a loop that
 * waited for a core looks stalled; beside it, this meter takes a tick every `everyMs` and counts,
 * for each late tick, the CPU time the process used meanwhile (process.cpuUsage, all its
 * threads): min(wall, CPU) is the part of the stall that was work of its own. A test asserts on
 * that and prints both.
 */
export interface StallMeter {
  /** Longest late tick, wall ms (what monitorEventLoopDelay would call the max, at this resolution). */
  readonly maxWallMs: number;
  /** Longest late tick counted as the process's own work: min(wall, CPU used meanwhile), ms. */
  readonly maxOwnMs: number;
  stop(): void;
}

export function stallMeter(everyMs = 10): StallMeter {
  let lastWall = performance.now();
  let lastCpu = process.cpuUsage();
  let maxWallMs = 0;
  let maxOwnMs = 0;
  const t = setInterval(() => {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    const wallMs = wall - lastWall - everyMs;
    const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    if (wallMs > maxWallMs) maxWallMs = wallMs;
    const own = Math.min(wallMs, cpuMs);
    if (own > maxOwnMs) maxOwnMs = own;
    lastWall = wall;
    lastCpu = cpu;
  }, everyMs);
  return {
    get maxWallMs() {
      return maxWallMs;
    },
    get maxOwnMs() {
      return maxOwnMs;
    },
    stop: () => clearInterval(t),
  };
}
