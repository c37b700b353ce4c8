/**
 * The `/v1/watch` snapshot, built once per change and shared by every hello.
 *
 * Building a snapshot means a record per member (signed, when the cluster signs) and encoding
 * them all: at 2,000 members that cost 133 ms of CPU, and it was paid on every hello, so a burst
 * of hellos could keep the agent from answering its peers. Here each record is built, signed and
 * encoded once, when it changes (`upsert`), and kept as bytes; a snapshot is these bytes joined
 * under a hand-written msgpack (or JSON) header, cached per service until the next change, and the
 * same Buffer goes to every subscriber (ws does not copy it).
 *
 * A record's `load.ageMs` is the age when it was built: a member that reports keeps it fresh; one
 * that stops would look fresher than it is, so an entry with load older than `refreshMs` is rebuilt
 * (through `record(id)`) when a snapshot takes it, at most MAX_REFRESH per snapshot. The agent list is a bounded random sample (MAX_AGENTS):
 * enough to fail over, without every live member's URL in every snapshot.
 */
import { PROTOCOL_VERSION, type ServerRecord } from '../sdk/core/protocol.js';
import { pack } from '../sdk/core/msgpack.js';

/** Agent URLs a snapshot or an `agents` frame lists at most (the SDK keeps 64). */
export const MAX_AGENTS = 64;
/** Entries rebuilt (re-signed) for one snapshot at most; the others wait for the next. */
export const MAX_REFRESH = 256;

interface Entry {
  rec: ServerRecord;
  builtAt: number;
  bin?: Buffer;
  json?: string;
}

export interface SnapshotSource {
  /** Everything (alive and suspect members' records, every live agent URL): read once, to start. */
  all: () => { servers: ServerRecord[]; agents: string[] };
  /** One member's current record, or undefined when it is gone (to refresh an old entry). */
  record?: (id: string) => ServerRecord | undefined;
  now?: () => number;
  random?: () => number;
  /** An entry older than this is rebuilt when a snapshot takes it. Default 1000 ms. */
  refreshMs?: number;
}

/** A random sample of at most `n` of `list` (partial Fisher-Yates on a copy), in list order when it fits. */
export function sampleAgents(list: readonly string[], n: number, random: () => number): string[] {
  if (list.length <= n) return [...list];
  const a = [...list];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

export class SnapshotCache {
  private readonly entries = new Map<string, Entry>();
  private agentList: string[] = [];
  private primed = false;
  private readonly cached = new Map<string, Buffer>();
  private readonly now: () => number;
  private readonly random: () => number;
  /** Snapshots assembled, and records built (signed and encoded) for them: for /metrics and tests. */
  readonly counters = { assembled: 0, served: 0, recordsEncoded: 0 };

  constructor(
    private readonly node: string,
    private readonly src: SnapshotSource,
  ) {
    this.now = src.now ?? Date.now;
    this.random = src.random ?? Math.random;
  }

  /** A record changed (or appeared): keep it for the next snapshot. */
  upsert(rec: ServerRecord): void {
    if (!this.primed) return;
    this.entries.set(rec.id, { rec, builtAt: this.now() });
    this.cached.clear();
  }

  remove(id: string): void {
    if (!this.primed) return;
    if (this.entries.delete(id)) this.cached.clear();
  }

  /** The live agents changed: a new sample, which is also what an `agents` frame carries. */
  agents(list: readonly string[]): string[] {
    const sample = sampleAgents(list, MAX_AGENTS, this.random);
    if (this.primed) {
      this.agentList = sample;
      this.cached.clear();
    }
    return sample;
  }

  /** The snapshot frame for subscribers of `service` (all when undefined), as msgpack or JSON text (UTF-8). */
  frame(service: string | undefined, json: boolean): Buffer {
    this.prime();
    this.refresh();
    const key = `${json ? 'j' : 'b'}:${service ?? ''}`;
    let out = this.cached.get(key);
    if (out === undefined) {
      out = json ? Buffer.from(this.assembleJson(service)) : this.assembleBinary(service);
      this.cached.set(key, out);
      this.counters.assembled++;
    }
    this.counters.served++;
    return out;
  }

  private prime(): void {
    if (this.primed) return;
    const all = this.src.all();
    const at = this.now();
    for (const rec of all.servers) this.entries.set(rec.id, { rec, builtAt: at });
    this.agentList = sampleAgents(all.agents, MAX_AGENTS, this.random);
    this.primed = true;
  }

  /**
   * Rebuild entries with a load figure past refreshMs (their load age would be stale), at most
   * MAX_REFRESH per snapshot so that a hello never costs a signature per member: members that
   * report keep their entries fresh themselves; only those that went quiet are rebuilt here.
   */
  private refresh(): void {
    const record = this.src.record;
    if (!record) return;
    const at = this.now();
    const old = at - (this.src.refreshMs ?? 1000);
    let budget = MAX_REFRESH;
    for (const [id, e] of this.entries) {
      if (e.builtAt > old || !e.rec.load) continue;
      if (budget-- <= 0) break;
      const rec = record(id);
      if (rec) this.entries.set(id, { rec, builtAt: at });
      else this.entries.delete(id);
      this.cached.clear();
    }
  }

  private selected(service: string | undefined): Entry[] {
    const out: Entry[] = [];
    for (const e of this.entries.values()) if (service === undefined || e.rec.service === service) out.push(e);
    return out;
  }

  private assembleBinary(service: string | undefined): Buffer {
    const es = this.selected(service);
    const parts: Buffer[] = [Buffer.from([0x85]), pack('t'), pack('snapshot'), pack('v'), pack(PROTOCOL_VERSION), pack('node'), pack(this.node), pack('servers'), arrayHeader(es.length)];
    for (const e of es) {
      if (!e.bin) {
        e.bin = pack(e.rec);
        this.counters.recordsEncoded++;
      }
      parts.push(e.bin);
    }
    parts.push(pack('agents'), pack(this.agentList));
    return Buffer.concat(parts);
  }

  private assembleJson(service: string | undefined): string {
    const es = this.selected(service);
    const servers = es.map((e) => (e.json ??= JSON.stringify(e.rec)));
    return `{"t":"snapshot","v":${PROTOCOL_VERSION},"node":${JSON.stringify(this.node)},"servers":[${servers.join(',')}],"agents":${JSON.stringify(this.agentList)}}`;
  }
}
