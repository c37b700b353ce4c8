import { describe, expect, it } from 'vitest';
import { InvalidLoadError, parseLoadInput } from '../../../../agent/load/input.js';

describe('parseLoadInput', () => {
  it.each([
    [{ sessions: 12 }, { sessions: 12 }],
    [{ connections: 0 }, { connections: 0 }],
    [{ utilization: 0 }, { utilization: 0 }],
    [{ utilization: 1 }, { utilization: 1 }],
    [{ sessions: 12, connections: 3, utilization: 0.4 }, { sessions: 12, connections: 3, utilization: 0.4 }],
    [{ sessions: 1e9 }, { sessions: 1e9 }],
  ])('accepts %j', (input, want) => {
    expect(parseLoadInput(input)).toEqual(want);
  });

  it.each([
    [{ sessions: -1 }, 'sessions', /"sessions" must be an integer in 0\.\.1000000000, got -1/],
    [{ sessions: 1.5 }, 'sessions', /integer/],
    [{ sessions: '12' }, 'sessions', /got "12"/],
    [{ sessions: null }, 'sessions', /got null/],
    [{ sessions: 1e9 + 1 }, 'sessions', /integer/],
    [{ connections: Infinity }, 'connections', /got Infinity/],
    [{ connections: true }, 'connections', /got true/],
    [{ utilization: 1.01 }, 'utilization', /0\.\.1, got 1\.01/],
    [{ utilization: -0.1 }, 'utilization', /0\.\.1/],
    [{ utilization: NaN }, 'utilization', /got NaN/],
    [{ utilization: '0.4' }, 'utilization', /0\.\.1/],
    [{ session: 3 }, 'session', /unknown load field "session"/],
    [{ sessions: 3, extra: 1 }, 'extra', /unknown load field "extra"/],
    [{}, undefined, /at least one of sessions, connections, utilization/],
    [null, undefined, /must be an object/],
    [[1, 2], undefined, /must be an object/],
    ['sessions=3', undefined, /must be an object/],
    [42, undefined, /must be an object/],
  ])('rejects %j naming %s', (input, field, msg) => {
    let err: unknown;
    try {
      parseLoadInput(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidLoadError);
    expect((err as InvalidLoadError).field).toBe(field);
    expect((err as InvalidLoadError).code).toBe('PEERLB_ERR_BAD_OPTION');
    expect((err as Error).message).toMatch(msg);
  });

  it('does not echo a huge bad value into the message', () => {
    expect(() => parseLoadInput({ sessions: 'x'.repeat(10_000) })).toThrow(/^.{0,200}$/s);
  });
});
