/**
 * msgpack framing, shared by gossip and `/v1/watch`: the agent and the Node entry speak it; the
 * runtime-neutral core's default watch codec is JSON text (discovery/json-codec.ts), so that a page
 * that joins through agents does not ship a msgpack codec (msgpackr is about a third of the
 * browser bundle). Nothing in sdk/core but this file imports msgpackr.
 */
import { Packr, Unpackr } from 'msgpackr';
import { DecodeError, FrameTooLargeError } from './errors.js';
import {
  LIMITS,
  MAX_WATCH_CLIENT_FRAME_BYTES,
  MAX_WATCH_FRAME_BYTES,
  parseWatchClientFrame,
  parseWatchServerFrame,
  type WatchClientFrame,
  type WatchPingFrame,
  type WatchServerFrame,
} from './protocol.js';
import type { WatchCodec } from './discovery/codec.js';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });

/**
 * Encode any plain value as msgpack. The bytes are a Uint8Array; in Node, msgpackr makes them a
 * Buffer (a Uint8Array subclass), which is what `PackedBytes` says for code that runs only there.
 */
export function pack(value: unknown): PackedBytes {
  return packr.pack(value) as PackedBytes;
}

/**
 * What `pack` returns: a Uint8Array everywhere, a Node Buffer in Node (msgpackr's choice there).
 * Typed through `globalThis.Buffer` so that the core names no Node module: where Node's types are
 * loaded (the agent, the Node entry) it is a Buffer; elsewhere a Uint8Array.
 */
export type PackedBytes = typeof globalThis extends { Buffer: { from(s: string): infer B } } ? B : Uint8Array;

/**
 * Decode one msgpack frame from an untrusted peer. Enforces the size limit before parsing and
 * turns every parser failure into a DecodeError.
 */
export function unpackFrame(bytes: Uint8Array, maxBytes: number = LIMITS.maxFrameBytes): unknown {
  if (bytes.length > maxBytes) throw new FrameTooLargeError(bytes.length, maxBytes);
  if (bytes.length === 0) throw new DecodeError('empty frame');
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    throw new DecodeError(`malformed msgpack: ${(err as Error).message}`, { cause: err });
  }
}

export function encodeWatchFrame(frame: WatchServerFrame | WatchClientFrame | WatchPingFrame): PackedBytes {
  return pack(frame);
}

/** Decode a msgpack frame an agent sent to a watching client. */
export function decodeWatchServerFrame(bytes: Uint8Array): WatchServerFrame {
  return parseWatchServerFrame(unpackFrame(bytes, MAX_WATCH_FRAME_BYTES));
}

/** Decode the msgpack frame a client sent to an agent's watch endpoint. */
export function decodeWatchClientFrame(bytes: Uint8Array): WatchClientFrame {
  return parseWatchClientFrame(unpackFrame(bytes, MAX_WATCH_CLIENT_FRAME_BYTES));
}

/** The watch in binary msgpack frames (`/v1/watch`): what the Node entry uses. */
export const msgpackWatchCodec: WatchCodec = {
  format: 'msgpack',
  encode: encodeWatchFrame,
  decode(data) {
    if (typeof data === 'string') throw new DecodeError('expected a binary msgpack frame, got text');
    return decodeWatchServerFrame(data);
  },
};
