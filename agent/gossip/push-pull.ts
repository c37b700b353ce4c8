/**
 * Full state in pages: a push-pull carries every member, and 10,000 members with host-name node
 * ids (~40 bytes) are over a megabyte, more than one frame may be (maxFrameBytes). The state is
 * split into pages of at most `budget` bytes of states each, sent as frames of their own, each
 * merged on arrival (merging is per member, so pages need no reassembly and a lost page only
 * loses its members until the next exchange). Only page 0 of a request is answered.
 */
import { MAX_PAGES, type MemberState, type Page } from './messages.js';

/**
 * A member state's encoded size, from above (its strings, and generous room for the numbers and
 * headers): cheap, as it runs for every member of a full state, and never below the real size.
 */
export function stateSizeBound(s: MemberState): number {
  const m = s.meta;
  return Buffer.byteLength(s.node) + Buffer.byteLength(s.addr) + Buffer.byteLength(m.service) + Buffer.byteLength(m.host) + (m.id === s.node ? 0 : Buffer.byteLength(m.id)) + (m.zone ? Buffer.byteLength(m.zone) : 0) + 96 + (s.load?.seats ? SEATS_BOUND_BYTES : 0);
}

/** The seats of a state's load (issue 17), from above: their array (1 byte), a 0 source code (1), three counts (≤ 5 each). */
const SEATS_BOUND_BYTES = 17;

/**
 * Most bytes of states in one page, below maxFrameBytes: a receiver decodes and merges a page in
 * one turn of its event loop (and an agent tells its watch clients of each new member in it),
 * and 8 KiB (~65 members with host-name ids) keeps that turn to milliseconds, even on a busy machine.
 */
export const PAGE_BYTES = 8 * 1024;

/** Bytes of a push-pull frame besides its states: version, type, sender node and addr (≤ 255 chars each, in UTF-8 up to 3 bytes), join flag, page, array headers. */
export const PUSH_PULL_OVERHEAD_BYTES = 2 * 3 * 255 + 64;

/**
 * Split `states` into pages of at most `budget` encoded bytes (at least one state each, so one
 * state larger than the budget makes a page of its own, which the sender then refuses to send).
 * At most MAX_PAGES pages: beyond that the rest is left for the next exchange. Linear.
 */
export function pageStates(states: MemberState[], budget: number): MemberState[][] {
  const pages: MemberState[][] = [];
  let cur: MemberState[] = [];
  let used = 0;
  for (const s of states) {
    const size = stateSizeBound(s);
    if (cur.length > 0 && used + size > budget) {
      pages.push(cur);
      if (pages.length >= MAX_PAGES) return pages;
      cur = [];
      used = 0;
    }
    cur.push(s);
    used += size;
  }
  if (cur.length > 0 || pages.length === 0) pages.push(cur);
  return pages;
}

/** The page field of page `index` of `count`: none when the state fits one frame. */
export function pageOf(index: number, count: number): Page | undefined {
  return count > 1 ? { index, count } : undefined;
}
