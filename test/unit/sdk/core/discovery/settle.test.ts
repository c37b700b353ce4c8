/**
 * The mDNS settle rule (sdk/core/discovery/settle.ts) on a manual clock: when join() may resolve.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../../sdk/core/clock.js';
import { MDNS_ANSWER_DELAY_MS, MDNS_SETTLE_MS, MDNS_SETTLE_SLACK_MS, MdnsSettle } from '../../../../../sdk/core/discovery/settle.js';

/** Whether the settle has resolved, after letting its promise callbacks run. */
async function isSettled(s: MdnsSettle): Promise<boolean> {
  let done = false;
  void s.wait().then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('mDNS settle rule', () => {
  it('without a subscription: settled when the first round is over, not at the first server', async () => {
    const clock = new ManualClock();
    const s = new MdnsSettle(clock);
    s.queried();
    clock.advance(50);
    s.found();
    clock.advance(MDNS_SETTLE_MS - 51);
    expect(await isSettled(s)).toBe(false);
    clock.advance(1);
    expect(await isSettled(s)).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it('a round that found nothing: settled one answer delay (+ slack) after the first server found later', async () => {
    const clock = new ManualClock();
    const s = new MdnsSettle(clock);
    s.queried();
    clock.advance(MDNS_SETTLE_MS + 500);
    expect(await isSettled(s)).toBe(false);
    s.found();
    clock.advance(MDNS_ANSWER_DELAY_MS + MDNS_SETTLE_SLACK_MS - 1);
    expect(await isSettled(s)).toBe(false);
    clock.advance(1);
    expect(await isSettled(s)).toBe(true);
  });

  it('with a subscription: the first snapshot settles it, early or late; the round does not', async () => {
    const clock = new ManualClock();
    const early = new MdnsSettle(clock, true);
    early.queried();
    clock.advance(60);
    early.found();
    early.snapshot();
    expect(await isSettled(early)).toBe(true);
    expect(clock.pending()).toBe(0);

    const late = new MdnsSettle(clock, true);
    late.queried();
    late.found();
    clock.advance(MDNS_SETTLE_MS + 300);
    expect(await isSettled(late)).toBe(false);
    late.snapshot();
    expect(await isSettled(late)).toBe(true);
  });

  it('with a subscription that fails: the round rule applies', async () => {
    const clock = new ManualClock();
    const s = new MdnsSettle(clock, true);
    s.queried();
    s.found();
    clock.advance(MDNS_SETTLE_MS);
    expect(await isSettled(s)).toBe(false);
    s.watchFailed();
    clock.advance(MDNS_ANSWER_DELAY_MS + MDNS_SETTLE_SLACK_MS);
    expect(await isSettled(s)).toBe(true);

    const before = new MdnsSettle(clock, true);
    before.queried();
    before.watchFailed();
    before.found();
    clock.advance(MDNS_SETTLE_MS);
    expect(await isSettled(before)).toBe(true);
  });

  it('done() (close) releases a waiting join and leaves no timer', async () => {
    const clock = new ManualClock();
    const s = new MdnsSettle(clock);
    s.queried();
    s.done();
    expect(await isSettled(s)).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});
