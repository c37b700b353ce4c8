import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../../sdk/core/errors.js';
import { MAX_WATCH_SUBSET, PROTOCOL_VERSION, parseWatchClientFrame } from '../../../../sdk/core/protocol.js';

const hello = (extra: Record<string, unknown>) => parseWatchClientFrame({ t: 'hello', v: PROTOCOL_VERSION, service: 'game', ...extra });

describe('watch hello: subset and client id', () => {
  it('takes an integer subset in range, all, auto, or none (all, as older clients)', () => {
    expect(hello({ subset: 32 }).subset).toBe(32);
    expect(hello({ subset: 1 }).subset).toBe(1);
    expect(hello({ subset: MAX_WATCH_SUBSET }).subset).toBe(MAX_WATCH_SUBSET);
    expect(hello({ subset: 'all' }).subset).toBe('all');
    expect(hello({ subset: 'auto' }).subset).toBe('auto');
    expect(hello({}).subset).toBeUndefined();
  });

  it.each([0, -1, 2.5, MAX_WATCH_SUBSET + 1, '32', 'some', true, [3], { k: 3 }, Number.NaN])('refuses subset %j with a DecodeError', (subset) => {
    expect(() => hello({ subset })).toThrow(DecodeError);
    expect(() => hello({ subset })).toThrow(/hello\.subset/);
  });

  it('takes a client id of 8..64 safe chars and refuses anything else', () => {
    expect(hello({ client: 'abcdEFGH_-12' }).client).toBe('abcdEFGH_-12');
    expect(hello({ client: 'x'.repeat(64) }).client).toBe('x'.repeat(64));
    for (const client of ['short', 'x'.repeat(65), 'has space1', 'uni—code', 42, {}]) expect(() => hello({ client })).toThrow(/hello\.client/);
  });
});
