/**
 * The incarnation rules of membership.ts (memberlist state.go aliveNode, suspectNode, deadNode,
 * mergeState): which news of a member changes its record in the member table, and how this node
 * answers news of itself — refuting a suspicion or death by incarnating above it, and settling a
 * second agent under its own id (guard.ts keepsName).
 *
 *  - A suspected member refutes by incarnating (incarnation + 1), and sends the refutation straight
 *    to the suspecter too. A member that already has X dead tells whoever still suspects X.
 *  - News from a third party putting a member's incarnation implausibly far ahead is not applied
 *    (guard.ts); a live member's address does not move on a third party's word.
 *  - A member restarting with the same name learns its old incarnation (from push-pull, or from a
 *    member that still has it dead) and incarnates above it: it never reuses one the cluster has
 *    seen. A reaped member's tombstone (tombstones.ts) keeps a stale alive from bringing it back.
 */
import type { FailureDetector } from './failure-detector.js';
import { MAX_INCARNATION, PREVIOUS_LIFE_MAX_INCARNATION, SELF_NEWS_GRACE_MS, keepsName, nextIncarnation, plausibleJump, powerOfTwo } from './guard.js';
import type { GossipHost } from './host.js';
import type { PiggybackDelegate } from './load-delegate.js';
import { buddy, copyMeta, isLive, newRec, sameMeta, type Rec } from './member-table.js';
import type { MemberState, Sender, StateUpdate } from './messages.js';
import type { MembershipOptions } from './membership-types.js';

type Alive = Extract<StateUpdate, { kind: 'alive' }>;
type Suspect = Extract<StateUpdate, { kind: 'suspect' }>;
type Dead = Extract<StateUpdate, { kind: 'dead' }>;
type Left = Extract<StateUpdate, { kind: 'left' }>;

export class MemberUpdates {
  /** Whether this node has joined; the clock ms it did; whether a previous life's incarnation has been taken since (guard.ts). */
  joined = false;
  private joinedAt = -Infinity;
  private tookPreviousLife = false;
  /** Our ping to another agent that claims our node id, before we joined: an ack means it is live. */
  conflictProbe: { seq: number; addr: string } | undefined;
  private incarnationCapLogged = false;
  private readonly toldAlive = new Map<string, number>();

  constructor(
    private readonly h: GossipHost,
    private readonly detector: FailureDetector,
    private readonly loads: PiggybackDelegate,
    private readonly signMeta: MembershipOptions['signMeta'],
  ) {}

  markJoined(): void {
    this.joined = true;
    this.joinedAt = this.h.clock.now();
  }

  /** Our alive update; our own says where our load seq stands at this incarnation (load-delegate.ts). */
  aliveUpdate(r: Rec): Alive {
    const seq = r === this.h.table.me ? this.loads.selfSeq() : undefined;
    if (seq !== undefined) return { kind: 'alive', node: r.node, incarnation: r.incarnation, addr: r.addr, meta: r.meta, loadSeq: seq };
    return { kind: 'alive', node: r.node, incarnation: r.incarnation, addr: r.addr, meta: r.meta };
  }

  /** Our meta with our own signature at our current incarnation (none without signMeta): after every change of it. */
  signSelf(): void {
    const me = this.h.table.me;
    const { sig: _s, sigv: _v, ...meta } = me.meta;
    me.meta = this.signMeta ? { ...meta, sig: this.signMeta(meta, me.addr, me.incarnation), sigv: me.incarnation } : meta;
  }

  apply(u: StateUpdate, from: Sender): void {
    switch (u.kind) {
      case 'alive':
        return this.onAlive(u, from);
      case 'suspect':
        return this.onSuspect(u, from);
      case 'dead':
        return this.onDead(u, from);
      case 'left':
        return this.onLeft(u, from);
    }
  }

  /** An ack of `seq` from `from`: whether it was the answer to our conflict probe (then handled). */
  onConflictAck(seq: number, from: string): boolean {
    const cp = this.conflictProbe;
    if (!cp || cp.seq !== seq) return false;
    // The other agent with our id answered, on the socket we dialed to it: it is live and holds the id.
    this.conflictProbe = undefined;
    if (from === this.h.node && this.firstHand(this.h.node, cp.addr)) this.yieldName(cp.addr);
    return true;
  }

  /** Whether the frame being handled came from `node` itself, over a socket we dialed to `addr`. */
  private firstHand(node: string, addr: string): boolean {
    const c = this.h.inFrame();
    return c !== undefined && c.via?.dialed === true && c.node === node && c.from === addr;
  }

  onAlive(u: Alive, from?: Sender): void {
    const h = this.h;
    const t = h.table;
    const me = t.me;
    if (u.node === h.node) {
      if (h.leaving) return;
      if (u.addr !== me.addr) return this.onIdConflict(u.addr, u.incarnation);
      if (u.incarnation < me.incarnation) return;
      if (!this.plausible(me, u.incarnation, false)) return;
      if (u.incarnation === me.incarnation && u.addr === me.addr && sameMeta(u.meta, me.meta)) return;
      // Someone says we are alive with other details or a newer incarnation: a previous life of ours.
      this.refute(u.incarnation, false);
      return;
    }
    const r = t.get(u.node);
    const now = h.clock.now();
    if (!r) {
      const tomb = t.tombstones.get(u.node, now);
      if (tomb && u.incarnation <= tomb.incarnation) {
        // A member we reaped, alive at an incarnation it had died or left at, or before: stale
        // news from a member that missed its end, or a fresh process under its name. Tell that
        // address, so that a live one incarnates above (at most once per probe interval).
        if (now - tomb.toldAt >= h.config.probeIntervalMs) {
          tomb.toldAt = now;
          const end: StateUpdate = tomb.status === 'dead' ? { kind: 'dead', node: u.node, incarnation: tomb.incarnation, from: h.node } : { kind: 'left', node: u.node, incarnation: tomb.incarnation };
          h.send(u.addr, { type: 'gossip', from: h.sender(), piggyback: { updates: [end], loads: [] } });
        }
        return;
      }
      t.tombstones.delete(u.node);
      if (t.size >= t.maxMembers) {
        // Whatever peers say, we do not remember more members than a snapshot may carry.
        // Said once per 2^n refusals, so a flood cannot flood the log.
        const n = ++h.counters.membersRefused;
        if ((n & (n - 1)) === 0) h.log.warn({ member: u.node, maxMembers: t.maxMembers, refused: n }, `member limit reached (maxMembers ${t.maxMembers}): new members are refused`);
        return;
      }
      const rec = newRec(u.node, u.addr, u.incarnation, u.meta, now);
      t.add(rec);
      this.detector.add(rec.node);
      this.loads.notifyJoin(rec.node, u.loadSeq);
      h.broadcast(u);
      h.log.debug({ member: u.node, addr: u.addr, incarnation: u.incarnation }, 'member joined');
      h.changed(rec, undefined);
      return;
    }
    if (u.addr !== r.addr && isLive(r)) return this.addrConflict(r, u, from);
    if (u.incarnation <= r.incarnation) {
      // Old news, or a member restarting below the incarnation we remember. If we have it dead or
      // left, tell it so that it incarnates above (otherwise it would stay dead to us until reaped).
      if (r.status === 'dead' || r.status === 'left') this.tellDeath(r, u.addr);
      return;
    }
    const fromItself = this.firstHand(u.node, u.addr);
    if (!this.plausible(r, u.incarnation, fromItself)) return;
    if (u.addr !== r.addr && !fromItself) return this.addrConflict(r, u, from);
    h.broadcast(u);
    const prev = r.status;
    const changed = r.addr !== u.addr || !sameMeta(r.meta, u.meta);
    this.loads.notifyAlive(r.node, prev, u.incarnation, u.loadSeq);
    r.incarnation = u.incarnation;
    t.setAddr(r, u.addr);
    r.meta = copyMeta(u.meta);
    r.updatedAt = now;
    if (prev !== 'alive') this.setStatus(r, 'alive');
    else if (changed) h.changed(r, prev);
  }

  private setStatus(r: Rec, status: Rec['status']): void {
    const prev = this.h.table.setStatus(r, status, this.h.clock.now());
    if (prev !== undefined) this.h.statusChanged(r, prev);
  }

  /**
   * memberlist: a live member's address does not move (two agents with one id, or a forgery:
   * logged, not fought over), whatever the incarnation; a dead or gone member's does, on its own
   * word only (firstHand). We tell the claimed address what we hold: a member restarted there
   * answers on our socket; a second agent with the same id sees the conflict itself.
   */
  private addrConflict(r: Rec, u: Alive, from: Sender | undefined): void {
    const n = ++this.h.counters.addrConflicts;
    if (powerOfTwo(n)) this.h.log.warn({ member: u.node, addr: r.addr, status: r.status, claimed: u.addr, from: from?.node, count: n }, 'gossip: conflicting address for a member not taken');
    if (isLive(r)) this.tellHolder(r, u.addr);
    else this.tellDeath(r, u.addr);
  }

  /**
   * Tell the agent at `to`, which claims to be the live member `r`, whom we hold under that name
   * (rate-limited per member): if it is a second agent with the same id, it now sees the
   * conflict itself and it and the holder settle it (onIdConflict) instead of splitting the cluster.
   */
  private tellHolder(r: Rec, to: string): void {
    const now = this.h.clock.now();
    if (now - r.lastNudgeAt < this.h.config.probeIntervalMs) return;
    r.lastNudgeAt = now;
    // Dialed, as tellDeath.
    this.h.sendIn(undefined, to, { type: 'gossip', from: this.h.sender(), piggyback: { updates: [this.aliveUpdate(r)], loads: [] } });
  }

  /** Send `to` the death (or leave) of `r` we know, rate-limited per member. */
  private tellDeath(r: Rec, to: string): void {
    const now = this.h.clock.now();
    if (now - r.lastNudgeAt < this.h.config.probeIntervalMs) return;
    r.lastNudgeAt = now;
    // Dialed, never a reply: the answer then comes on a socket we opened to `to`, which is what
    // lets a member that restarted at a new address move there (firstHand).
    this.h.sendIn(undefined, to, { type: 'gossip', from: this.h.sender(), piggyback: { updates: buddy(r, this.h.node), loads: [] } });
  }

  onSuspect(u: Suspect, sender?: Sender): void {
    const h = this.h;
    const r = h.table.get(u.node);
    if (!r || !this.plausible(r, u.incarnation, false)) return;
    if (sender && (r.status === 'dead' || r.status === 'left') && u.incarnation <= r.incarnation) {
      // It is news to the sender, old news to us: a member that missed every broadcast of this
      // death (an epidemic's tail) found it by probing and would wait out a whole suspicion with
      // nobody left to confirm it. Tell it (at most once per probe interval and member).
      this.tellDeath(r, sender.addr);
      return;
    }
    if (u.incarnation < r.incarnation) {
      // Someone still suspects an older us: it missed our refutation.
      if (r === h.table.me && sender && !h.leaving) this.tellAlive(sender.addr);
      return;
    }
    if (r.suspicion) {
      // Already suspect: another member's independent suspicion shortens the timeout; pass it on
      // so that confirmations reach everyone (memberlist suspectNode).
      if (r.suspicion.confirm(u.from)) {
        h.counters.confirmations++;
        h.broadcast(u);
      }
      return;
    }
    if (r.status !== 'alive') return;
    if (r === h.table.me) return this.accused(u, sender);
    this.take(r, u);
    h.counters.suspicions++;
    const s = this.detector.suspect(r, u);
    this.setStatus(r, 'suspect');
    r.suspicion = s;
    this.detector.followSuspicion(r, s, u);
  }

  /** News of `r` at `u.incarnation` taken: passed on, and the incarnation moves (the load delegate hears of it). */
  private take(r: Rec, u: Suspect | Dead | Left): void {
    this.h.broadcast(u);
    if (u.incarnation > r.incarnation) this.loads.notifyIncarnation(r.node);
    r.incarnation = u.incarnation;
  }

  /** Someone suspects us or has us dead: refute, and tell the accuser and whoever told us. */
  private accused(u: Suspect | Dead, sender: Sender | undefined): void {
    if (!this.h.leaving) this.refute(u.incarnation, true, [this.addrOf(u.from), sender?.addr]);
  }

  onDead(u: Dead, sender?: Sender): void {
    const h = this.h;
    const r = h.table.get(u.node);
    if (!r || !this.plausible(r, u.incarnation, false)) return;
    if (u.incarnation < r.incarnation) {
      if (r === h.table.me && sender && !h.leaving) this.tellAlive(sender.addr);
      return;
    }
    if (r.status === 'dead' || r.status === 'left') return;
    if (r === h.table.me) return this.accused(u, sender);
    this.take(r, u);
    this.setStatus(r, 'dead');
  }

  onLeft(u: Left, _from?: Sender): void {
    const h = this.h;
    const r = h.table.get(u.node);
    if (!r || u.incarnation < r.incarnation) return;
    if (!this.plausible(r, u.incarnation, r !== h.table.me && this.firstHand(u.node, r.addr))) return;
    if (r.status === 'left') return;
    if (r === h.table.me) {
      if (!h.leaving) this.refute(u.incarnation, false);
      return;
    }
    this.take(r, u);
    this.setStatus(r, 'left');
  }

  /** Merge a peer's full state (memberlist mergeState): its dead are only suspects to us. */
  merge(states: MemberState[], from: Sender): void {
    const fromNode = from.node;
    for (const s of states) {
      if (this.h.stopped) return;
      if (s.node === this.h.node) {
        this.mergeSelf(s);
        continue;
      }
      switch (s.status) {
        case 'alive':
          this.onAlive({ kind: 'alive', node: s.node, incarnation: s.incarnation, addr: s.addr, meta: s.meta }, from);
          break;
        case 'suspect':
        case 'dead':
          this.onSuspect({ kind: 'suspect', node: s.node, incarnation: s.incarnation, from: fromNode });
          break;
        case 'left':
          this.onLeft({ kind: 'left', node: s.node, incarnation: s.incarnation });
          break;
      }
      if (s.load) this.loads.mergeRemoteState(s.node, s.load, fromNode);
    }
  }

  private mergeSelf(s: MemberState): void {
    if (this.h.leaving) return;
    const mine = this.h.table.me;
    // Our id, live at another address: another agent uses it. Dead or gone there: a previous life.
    if (s.addr !== mine.addr && (s.status === 'alive' || s.status === 'suspect')) return this.onIdConflict(s.addr, s.incarnation);
    if (!this.plausible(mine, s.incarnation, false)) return;
    if (!this.joined && s.incarnation >= mine.incarnation) {
      // We have just started and the cluster remembers a previous life of ours: never reuse an
      // incarnation it has seen, whatever it says about it.
      this.refute(s.incarnation, false);
      return;
    }
    if (s.status === 'alive') {
      if (s.incarnation > mine.incarnation || (s.incarnation === mine.incarnation && (s.addr !== mine.addr || !sameMeta(s.meta, mine.meta)))) this.refute(s.incarnation, false);
    } else if (s.incarnation >= mine.incarnation) {
      this.refute(s.incarnation, s.status !== 'left');
    }
  }

  /** Refute a suspicion or death of ourselves: incarnate above `incarnation` and say we are alive. */
  private refute(incarnation: number, penalize: boolean, tell: (string | undefined)[] = []): void {
    const h = this.h;
    const me = h.table.me;
    // Never past what every agent can decode (guard.ts). At the cap a suspicion at the cap cannot
    // be refuted: said once, loudly; only a forged jump could get a member there (4 billion
    // refutations or meta changes otherwise), and those are refused from third parties.
    const next = nextIncarnation(Math.max(me.incarnation, incarnation));
    if (next <= incarnation && !this.incarnationCapLogged) {
      this.incarnationCapLogged = true;
      h.log.error({ node: h.node, incarnation: next, max: MAX_INCARNATION }, 'incarnation at its maximum: this agent can no longer refute a suspicion; restart it under another node id');
    }
    me.incarnation = next;
    this.signSelf();
    h.counters.refutations++;
    // Lifeguard: being suspected suggests we may be the slow one.
    if (penalize) this.detector.awareness.applyDelta(1);
    h.broadcast(this.aliveUpdate(me));
    h.log.debug({ incarnation: me.incarnation }, 'refuted');
    // The refutation spreads like any update, fast but briefly (a dozen sends per member within a
    // few hundred ms); the member that raised the suspicion must not miss it, or it declares us
    // dead when its suspicion runs out. Tell it (and whoever told us) directly.
    for (const addr of new Set(tell)) if (addr) this.tellAlive(addr);
  }

  /** Send our alive state straight to `addr`, at most once per probe interval per address. */
  private tellAlive(addr: string): void {
    const h = this.h;
    if (addr === h.table.me.addr) return;
    const now = h.clock.now();
    if (now - (this.toldAlive.get(addr) ?? -Infinity) < h.config.probeIntervalMs) return;
    if (this.toldAlive.size >= 1024) this.toldAlive.clear();
    this.toldAlive.set(addr, now);
    h.send(addr, { type: 'gossip', from: h.sender(), piggyback: { updates: [this.aliveUpdate(h.table.me)], loads: [] } });
  }

  private addrOf(node: string): string | undefined {
    return this.h.table.get(node)?.addr;
  }

  /**
   * Whether news at incarnation `inc` about `r` may be applied (guard.ts): within
   * INCARNATION_WINDOW of what we have, or from the member itself (over a socket we dialed to
   * it), or about ourselves before we joined (a previous life). Else it is counted, logged now
   * and then, and the member is asked for its own state.
   */
  private plausible(r: Rec, inc: number, fromItself: boolean): boolean {
    const h = this.h;
    const me = h.table.me;
    if (plausibleJump(r.incarnation, inc) || (r === me && !this.joined) || fromItself) return true;
    if (r === me && !this.tookPreviousLife && inc <= PREVIOUS_LIFE_MAX_INCARNATION && h.clock.now() - this.joinedAt < SELF_NEWS_GRACE_MS) {
      // A previous life of ours, told after we joined (a tombstone's holder): once, bounded.
      this.tookPreviousLife = true;
      h.log.info({ node: h.node, incarnation: me.incarnation, previous: inc }, 'gossip: taking the incarnation of a previous life of ours');
      return true;
    }
    const n = ++h.counters.implausibleIncarnations;
    if (powerOfTwo(n)) h.log.warn({ member: r.node, known: r.incarnation, claimed: inc, from: h.inFrame()?.node, count: n }, 'gossip: implausible incarnation jump not taken from a third party');
    if (r !== me) this.nudge(r);
    return false;
  }

  /**
   * Ask a member for its own state: a suspicion of it just below what we know, which it answers
   * with its alive (never a refutation: it has a later incarnation already) on the socket we
   * dialed, so that the answer counts as its own word. At most once per probe interval.
   */
  private nudge(r: Rec): void {
    const h = this.h;
    const now = h.clock.now();
    if (now - r.lastNudgeAt < h.config.probeIntervalMs || r.incarnation === 0) return;
    r.lastNudgeAt = now;
    // A dial to the member's address, not a reply to whoever told us.
    h.sendIn(undefined, r.addr, { type: 'gossip', from: h.sender(), piggyback: { updates: [{ kind: 'suspect', node: r.node, incarnation: r.incarnation - 1, from: h.node }], loads: [] } });
  }

  /**
   * Another agent says it is alive under our node id at `addr` (a duplicate id: two agents on one
   * host, host-network containers). Never fought over with refutations (memberlist reports a
   * conflict): logged as an error here and there. Before we joined, we ping it: if it answers,
   * it holds the id and we give it up (yieldName); if not, it is a previous life of ours and we
   * join once the cluster has it dead. After we joined, keepsName decides, the same way on both.
   */
  private onIdConflict(addr: string, incarnation: number): void {
    const h = this.h;
    const me = h.table.me;
    if (h.stopped || h.leaving) return;
    const n = ++h.counters.idConflicts;
    if (powerOfTwo(n))
      h.log.error({ node: h.node, other: addr, theirIncarnation: incarnation, ourIncarnation: me.incarnation, count: n }, `node id conflict: another agent at ${addr} uses node id ${JSON.stringify(h.node)}; give every agent its own node id`);
    if (!this.joined) {
      if (this.conflictProbe) return;
      const seq = this.detector.nextSeq();
      const cp = { seq, addr };
      this.conflictProbe = cp;
      h.send(addr, { type: 'ping', from: h.sender(), seq, target: h.node });
      h.after(() => {
        if (this.conflictProbe === cp) this.conflictProbe = undefined;
      }, 2 * h.config.probeIntervalMs + 3 * this.detector.extraWait());
      return;
    }
    // Incarnation 0 is the notice of an agent that gave the id up (no agent incarnates at 0).
    if (incarnation === 0 || keepsName(me, { incarnation, addr })) {
      this.tellAlive(addr); // so that it decides too
      return;
    }
    this.yieldName(addr);
  }

  /** Give our node id up to the agent at `addr`: tell it (so that it logs too), then stop. */
  private yieldName(addr: string): void {
    const h = this.h;
    const me = h.table.me;
    h.log.error({ node: h.node, holder: addr }, `node id ${JSON.stringify(h.node)} is in use by the agent at ${addr}: this agent stops gossiping and stays out of the cluster; restart it with its own node id`);
    const notice: StateUpdate = { kind: 'alive', node: h.node, incarnation: 0, addr: me.addr, meta: me.meta };
    h.send(addr, { type: 'gossip', from: h.sender(), piggyback: { updates: [notice], loads: [] } });
    h.stop();
    h.emitConflict({ node: h.node, addr });
  }
}
