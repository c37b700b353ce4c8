/**
 * The watch in JSON text frames (`/v1/watch?format=json`): the runtime-neutral core's default
 * (codec.ts says why). The same checks as the msgpack frames: the size limit before parsing, every
 * parser failure a DecodeError, then protocol.ts's parseWatchServerFrame.
 */
import { DecodeError, FrameTooLargeError } from '../errors.js';
import { MAX_WATCH_FRAME_BYTES, parseWatchServerFrame } from '../protocol.js';
import type { WatchCodec } from './codec.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const jsonWatchCodec: WatchCodec = {
  format: 'json',
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    // A string's length in UTF-16 units is at most its UTF-8 length: checked before parsing, the
    // limit is never stricter than for bytes.
    if (data.length > MAX_WATCH_FRAME_BYTES) throw new FrameTooLargeError(data.length, MAX_WATCH_FRAME_BYTES);
    if (data.length === 0) throw new DecodeError('empty frame');
    let text: string;
    try {
      text = typeof data === 'string' ? data : utf8.decode(data);
    } catch (err) {
      throw new DecodeError('frame is not UTF-8 text', { cause: err });
    }
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (err) {
      throw new DecodeError(`malformed JSON: ${(err as Error).message}`, { cause: err });
    }
    return parseWatchServerFrame(o);
  },
};
