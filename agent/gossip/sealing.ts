/**
 * Sealing of gossip frames (keyring.ts's sealer) as a layer around the transport's sockets, apart
 * from the WebSocket code (ws-transport.ts): the transport moves bytes and asks its FrameLayer
 * what goes on the wire and what a wire frame holds. `plainLayer` passes frames through (an open
 * cluster); `sealingLayer(sealer)` seals every frame out and opens every frame in.
 *
 * The binding is per socket, which is why this wraps sockets and not Transport.send: the accepting
 * side gives each socket 16 random bytes (the challenge, in the upgrade response) and the dialer
 * seals every frame on that socket with them as extra authenticated data, so a frame captured on
 * one socket opens on no other. Frames back on the dialer's socket are sealed with replyBinding
 * (the challenge and a direction byte), so a frame reflected to its sender does not open either.
 */
import { randomBytes } from 'node:crypto';

export interface FrameSealer {
  /** Seal a frame for the socket whose challenge is `binding`. */
  seal(b: Uint8Array, binding?: Uint8Array): Uint8Array;
  /** The plain frame, or undefined / a rejection when it does not open (dropped and counted). */
  open(b: Uint8Array, binding?: Uint8Array): Uint8Array | undefined | { reject: 'auth' | 'replay' };
}

/** Bytes a seal may add (nonce, tag, key id) beyond maxFrameBytes on the wire. */
export const SEAL_ALLOWANCE_BYTES = 1024;
/** Header of the upgrade response with the socket's binding (base64 of CHALLENGE_BYTES random bytes). */
export const CHALLENGE_HEADER = 'x-peerlb-challenge';
export const CHALLENGE_BYTES = 16;

/** The binding a challenge header carries, or undefined when it is missing or malformed. */
export function parseChallenge(v: string | string[] | undefined): Buffer | undefined {
  if (typeof v !== 'string' || v.length > 64) return undefined;
  const b = Buffer.from(v, 'base64');
  return b.length === CHALLENGE_BYTES && b.toString('base64') === v ? b : undefined;
}

/**
 * What frames from the accepting side to the dialer (replies on the dialer's socket) are sealed
 * with: the challenge and a direction byte, so that no frame opens on the socket it was sent on
 * in the other direction (a frame reflected back to its sender does not authenticate).
 */
export function replyBinding(b: Buffer | undefined): Buffer | undefined {
  return b && Buffer.concat([b, Buffer.from([0x72])]);
}

/** What a wire frame holds: the plain frame, or why it is dropped. */
export type Opened = { frame: Uint8Array } | { reject: 'auth' | 'replay' };

/** The transport's view of what its sockets carry. */
export interface FrameLayer {
  /** Frames are sealed: sockets need a binding, and their first authentic frame matters. */
  readonly sealed: boolean;
  /** Bytes a wire frame may have beyond the largest plain frame. */
  readonly allowance: number;
  /** A challenge for a new inbound socket (sealed only). */
  challenge(): Buffer | undefined;
  /** The wire bytes of `frame` on a socket bound to `binding`. */
  outbound(frame: Uint8Array, binding: Uint8Array | undefined): Uint8Array;
  /** The frame in `raw` from a socket bound to `binding`; a sealer that throws is a rejection ('auth'). */
  inbound(raw: Uint8Array, binding: Uint8Array | undefined): Opened;
}

/** An open cluster: frames as they are. */
export const plainLayer: FrameLayer = Object.freeze({
  sealed: false,
  allowance: 0,
  challenge: () => undefined,
  outbound: (frame: Uint8Array) => frame,
  inbound: (raw: Uint8Array): Opened => ({ frame: raw }),
});

/** Every frame sealed with `sealer` (keyring.ts createSealer), bound to its socket. */
export function sealingLayer(sealer: FrameSealer): FrameLayer {
  return {
    sealed: true,
    allowance: SEAL_ALLOWANCE_BYTES,
    challenge: () => randomBytes(CHALLENGE_BYTES),
    outbound: (frame, binding) => sealer.seal(frame, binding),
    inbound(raw, binding): Opened {
      let opened: ReturnType<FrameSealer['open']>;
      try {
        opened = sealer.open(raw, binding);
      } catch {
        opened = undefined;
      }
      if (opened instanceof Uint8Array) return { frame: opened };
      return { reject: opened?.reject === 'replay' ? 'replay' : 'auth' };
    },
  };
}
