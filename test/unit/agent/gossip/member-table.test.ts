import { describe, expect, it } from 'vitest';
import { MemberTable, buddy, copyMeta, isLive, newRec, pick, sameMeta, TOMBSTONE_KEEP_MS } from '../../../../agent/gossip/member-table.js';
import { nodeHash, type MemberMeta } from '../../../../agent/gossip/messages.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';

const meta = (id: string): MemberMeta => ({ id, service: 'game', host: '10.0.0.1', weight: 100, health: 'healthy' });
const rec = (node: string, now = 0) => newRec(node, `ws://${node}:7946`, 1, meta(node), now);

describe('MemberTable', () => {
  it('holds this node from the start; indexes by node, address and hash; counts the live', () => {
    const me = rec('me');
    const t = new MemberTable(me, 10);
    expect(t.size).toBe(1);
    expect(t.liveCount()).toBe(1);
    expect(t.others()).toEqual([]);
    const a = rec('a');
    t.add(a);
    expect(t.get('a')).toBe(a);
    expect(t.nodeAt('ws://a:7946')).toBe('a');
    expect(t.hasAddr('ws://a:7946')).toBe(true);
    expect(t.nodeOfHash(nodeHash('a'))).toBe('a');
    expect(t.liveCount()).toBe(2);
    expect(t.others()).toEqual([a]);
  });

  it('status changes keep the live count, say the previous status, and end a suspicion unless suspect', () => {
    const t = new MemberTable(rec('me'), 10);
    const a = rec('a');
    t.add(a);
    let cancelled = 0;
    a.suspicion = { cancel: () => cancelled++ } as never;
    expect(t.setStatus(a, 'suspect', 5)).toBe('alive');
    expect(a.suspicion).toBeDefined();
    expect(t.liveCount()).toBe(2);
    expect(t.setStatus(a, 'suspect', 6)).toBeUndefined(); // unchanged
    expect(t.setStatus(a, 'dead', 7)).toBe('suspect');
    expect(cancelled).toBe(1);
    expect(a.suspicion).toBeUndefined();
    expect(a.statusSince).toBe(7);
    expect(a.updatedAt).toBe(7);
    expect(t.liveCount()).toBe(1);
    expect(t.others()).toEqual([]);
    expect(t.setStatus(a, 'alive', 8)).toBe('dead');
    expect(t.liveCount()).toBe(2);
  });

  it('moving an address re-indexes it; a reaped member leaves a tombstone (dead or left only)', () => {
    const t = new MemberTable(rec('me'), 10);
    const a = rec('a');
    t.add(a);
    t.setAddr(a, 'ws://a2:7946');
    expect(t.nodeAt('ws://a:7946')).toBeUndefined();
    expect(t.nodeAt('ws://a2:7946')).toBe('a');
    t.setStatus(a, 'dead', 10);
    a.incarnation = 4;
    t.reap(a, 100);
    expect(t.get('a')).toBeUndefined();
    expect(t.nodeAt('ws://a2:7946')).toBeUndefined();
    expect(t.nodeOfHash(nodeHash('a'))).toBeUndefined();
    expect(t.tombstones.get('a', 100)).toMatchObject({ status: 'dead', incarnation: 4 });
    expect(t.tombstones.get('a', 100 + TOMBSTONE_KEEP_MS + 1)).toBeUndefined();
    expect(t.liveCount()).toBe(1);
  });

  it('tombstones are bounded by maxMembers', () => {
    const t = new MemberTable(rec('me'), 3);
    for (let i = 0; i < 10; i++) {
      const r = rec(`n${i}`);
      t.add(r);
      t.setStatus(r, 'left', 1);
      t.reap(r, 1);
    }
    expect(t.tombstones.size).toBe(3);
    expect(t.tombstones.get('n9', 1)).toBeDefined();
    expect(t.tombstones.get('n0', 1)).toBeUndefined();
  });
});

describe('member-table helpers', () => {
  it('buddy: what a member should hear about itself', () => {
    const a = rec('a');
    expect(buddy(a, 'me')).toEqual([]);
    a.status = 'suspect';
    expect(buddy(a, 'me')).toEqual([{ kind: 'suspect', node: 'a', incarnation: 1, from: 'me' }]);
    a.status = 'dead';
    expect(buddy(a, 'me')).toEqual([{ kind: 'dead', node: 'a', incarnation: 1, from: 'me' }]);
    a.status = 'left';
    expect(buddy(a, 'me')).toEqual([{ kind: 'left', node: 'a', incarnation: 1 }]);
    expect(isLive(a)).toBe(false);
  });

  it('copyMeta copies the known fields only, and the signature only whole', () => {
    const m = { ...meta('a'), zone: 'z1', tcpPort: 1, sig: 's' } as MemberMeta & { extra?: number };
    (m as { extra?: number }).extra = 1;
    const c = copyMeta(m);
    expect(c).toEqual({ ...meta('a'), zone: 'z1', tcpPort: 1 });
    expect(sameMeta(c, m)).toBe(true);
    expect(sameMeta(c, { ...c, weight: 1 })).toBe(false);
  });

  it('pick: k distinct items, all of them when k is larger', () => {
    const r = new XorShiftRandom(3);
    const p = pick(r, 3, [1, 2, 3, 4, 5, 6]);
    expect(new Set(p).size).toBe(3);
    expect(pick(r, Infinity, [1, 2, 3]).sort()).toEqual([1, 2, 3]);
  });
});
