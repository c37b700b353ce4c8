/**
 * The one real-time wait of the integration tests (unit tests use a ManualClock and never wait).
 * `until(check, timeoutMs, what)` polls `check` every `everyMs` until it holds and resolves with the
 * ms it took, or rejects after `timeoutMs` with `what` (and the last error `check` threw: a check
 * that throws counts as not yet). Every wait is bounded: a test that would hang fails with a message.
 */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 20): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return Date.now() - t0;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** Real time passing, for the integration tests that must let it (a unit test advances a ManualClock). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
