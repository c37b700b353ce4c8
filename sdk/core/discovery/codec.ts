/**
 * How `/v1/watch` frames are written and read. The agent serves the same frames two ways: binary
 * msgpack (`/v1/watch`, msgpack.ts: the Node entry) and JSON text (`/v1/watch?format=json`,
 * json-codec.ts: the runtime-neutral core's default, since browsers parse JSON natively and need
 * no msgpack codec in their bundle). Signatures cover record bytes built from the fields
 * (signing.ts), not the frame encoding, so both verify alike.
 */
import type { WatchClientFrame, WatchPingFrame, WatchServerFrame } from '../protocol.js';

export interface WatchCodec {
  /** `json` subscribes at `/v1/watch?format=json`. */
  readonly format: 'msgpack' | 'json';
  encode(frame: WatchClientFrame | WatchPingFrame): Uint8Array | string;
  /** A frame from the agent (binary or text, as the socket gave it). Throws DecodeError and the protocol's errors. */
  decode(data: Uint8Array | string): WatchServerFrame;
}
