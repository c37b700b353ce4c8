/**
 * The view: one ServerState per server discovery knows, made and updated from its records, at
 * most LIMITS.maxServers of them. It says which changes are structural (the choice set must be
 * rebuilt: a server added or removed, its address, weight, zone or health changed) and which are
 * not (load only). The ordered list (`all`) is refreshed by the balancer's rebuild.
 */
import { LIMITS, type ServerRecord } from '../protocol.js';
import { ChangeJournal, ServerState, wsUrlOf } from '../server.js';

export type UpsertResult =
  /** A new server. */
  | 'added'
  /** Address, weight, zone or health changed. */
  | 'structural'
  /** Load or agent only. */
  | 'same'
  /** New, and the view is full: not added. */
  | 'refused';

export class View {
  private readonly byId = new Map<string, ServerState>();
  /** Every server, in the order they came; set by `snapshot`, the indexes of its servers too. */
  all: ServerState[] = [];
  /** The view is at the cap and a new server was refused (reported once until it is below again). */
  private full = false;
  /** The pickers' change journal for this view's servers (see server.ts). */
  readonly journal = new ChangeJournal();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ServerState | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Apply a record: a new ServerState, or the record's fields onto the one there is.
   * `turnedHealthy`: an existing server's health changed to healthy (slow start begins there).
   */
  upsert(rec: ServerRecord): { s: ServerState | undefined; result: UpsertResult; turnedHealthy: boolean } {
    let s = this.byId.get(rec.id);
    if (!s) {
      if (this.byId.size >= LIMITS.maxServers) return { s: undefined, result: 'refused', turnedHealthy: false };
      s = new ServerState(rec);
      s.journal = this.journal;
      this.byId.set(rec.id, s);
      return { s, result: 'added', turnedHealthy: false };
    }
    let structural = s.host !== rec.host || s.udpPort !== rec.udpPort || s.tcpPort !== rec.tcpPort || s.wsUrl !== wsUrlOf(rec) || s.weight !== rec.weight || s.zone !== rec.zone;
    let turnedHealthy = false;
    if (s.health !== rec.health) {
      structural = true;
      turnedHealthy = rec.health === 'healthy';
    }
    s.assign(rec);
    return { s, result: structural ? 'structural' : 'same', turnedHealthy };
  }

  remove(id: string): boolean {
    if (!this.byId.delete(id)) return false;
    if (this.byId.size < LIMITS.maxServers) this.full = false;
    return true;
  }

  /** Remove every server whose id is not in `keep`; true if any was. */
  retain(keep: ReadonlySet<string>): boolean {
    let removed = false;
    for (const id of [...this.byId.keys()])
      if (!keep.has(id)) {
        this.byId.delete(id);
        removed = true;
      }
    if (this.byId.size < LIMITS.maxServers) this.full = false;
    return removed;
  }

  /** A refusal to report? True the first time the view is full, until it is below the cap again. */
  refusal(): boolean {
    if (this.full) return false;
    this.full = true;
    return true;
  }

  /** Refresh `all` (and each server's index) from the map. */
  snapshot(): ServerState[] {
    const all = [...this.byId.values()];
    for (let i = 0; i < all.length; i++) all[i]!.index = i;
    this.all = all;
    return all;
  }
}
