/**
 * Full state in pages: a push-pull carries every member, and 10,000 members with host-name node
 * ids (~40 bytes) are over a megabyte, more than one frame may be (maxFrameBytes). The state is
 * split into pages of at most `budget` bytes of states each, sent as frames of their own, each
 * merged on arrival (merging is per member, so pages need no reassembly and a lost page only
 * loses its members until the next exchange). Only page 0 of a request is answered.
 */
import { stateSize, MAX_PAGES, type MemberState, type Page } from './messages.js';

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
    const size = stateSize(s);
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
