import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createSealer, Keyring, KEY_BYTES } from '../../../../agent/gossip/keyring.js';
import { CHALLENGE_BYTES, SEAL_ALLOWANCE_BYTES, parseChallenge, plainLayer, replyBinding, sealingLayer, type FrameSealer } from '../../../../agent/gossip/sealing.js';

const key = randomBytes(KEY_BYTES);
const frame = new Uint8Array([1, 2, 3, 4, 5]);
let t = 1_000_000;
const now = () => t;

describe('plainLayer', () => {
  it('passes frames through both ways, gives no challenge and adds no bytes', () => {
    expect(plainLayer.sealed).toBe(false);
    expect(plainLayer.allowance).toBe(0);
    expect(plainLayer.challenge()).toBeUndefined();
    expect(plainLayer.outbound(frame, undefined)).toBe(frame);
    expect(plainLayer.inbound(frame, undefined)).toEqual({ frame });
  });
});

describe('sealingLayer (a keyring sealer)', () => {
  const a = sealingLayer(createSealer(new Keyring([key]), { now }));
  const b = sealingLayer(createSealer(new Keyring([key]), { now }));

  it('seals with the socket binding: opens with the same binding, once; not with another, nor unbound', () => {
    expect(a.sealed).toBe(true);
    expect(a.allowance).toBe(SEAL_ALLOWANCE_BYTES);
    const binding = a.challenge()!;
    expect(binding.length).toBe(CHALLENGE_BYTES);
    const wire = a.outbound(frame, binding);
    expect(wire.length).toBeGreaterThan(frame.length);
    expect(wire.length - frame.length).toBeLessThanOrEqual(SEAL_ALLOWANCE_BYTES);
    expect(b.inbound(wire, a.challenge())).toEqual({ reject: 'auth' });
    expect(b.inbound(wire, undefined)).toEqual({ reject: 'auth' });
    const opened = b.inbound(wire, binding);
    expect('frame' in opened && [...opened.frame]).toEqual([...frame]);
    // The same frame again on its socket: a replay, not an authentication failure.
    expect(b.inbound(wire, binding)).toEqual({ reject: 'replay' });
  });

  it('a reply sealed with replyBinding does not open as a frame in the other direction', () => {
    const binding = a.challenge()!;
    const back = a.outbound(frame, replyBinding(binding));
    expect(b.inbound(back, binding)).toEqual({ reject: 'auth' });
    expect('frame' in b.inbound(a.outbound(frame, replyBinding(binding)), replyBinding(binding))).toBe(true);
  });

  it('another key, a tampered frame, an unsealed frame: rejected as auth', () => {
    const other = sealingLayer(createSealer(new Keyring([randomBytes(KEY_BYTES)]), { now }));
    const binding = a.challenge()!;
    expect(b.inbound(other.outbound(frame, binding), binding)).toEqual({ reject: 'auth' });
    const wire = a.outbound(frame, binding);
    wire[wire.length - 1]! ^= 1;
    expect(b.inbound(wire, binding)).toEqual({ reject: 'auth' });
    expect(b.inbound(frame, binding)).toEqual({ reject: 'auth' });
    t += 1;
  });

  it('a sealer that throws or returns undefined is an authentication failure, never an exception', () => {
    const throwing: FrameSealer = {
      seal: (f) => f,
      open: () => {
        throw new Error('boom');
      },
    };
    expect(sealingLayer(throwing).inbound(frame, undefined)).toEqual({ reject: 'auth' });
    expect(sealingLayer({ seal: (f) => f, open: () => undefined }).inbound(frame, undefined)).toEqual({ reject: 'auth' });
  });
});

describe('parseChallenge', () => {
  it('takes exactly CHALLENGE_BYTES of canonical base64, nothing else', () => {
    const b = randomBytes(CHALLENGE_BYTES);
    expect(parseChallenge(b.toString('base64'))).toEqual(b);
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(parseChallenge(['x'])).toBeUndefined();
    expect(parseChallenge(randomBytes(CHALLENGE_BYTES - 1).toString('base64'))).toBeUndefined();
    expect(parseChallenge('x'.repeat(65))).toBeUndefined();
    expect(parseChallenge('not base64 at all!!!!!!!')).toBeUndefined();
  });
});
