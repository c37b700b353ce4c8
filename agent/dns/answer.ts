/**
 * The DNS answer, pure: one decoded query and the agent's view in, one encoded response out (no
 * I/O, no clock). The server (agent/dns/server.ts) decodes, rate-limits and sends; this file owns
 * the names, the rcodes, the size rules and EDNS. The wire format is dns-packet's.
 *
 * Names in the zone <domain> (default `peerlb.`):
 *   <service>.<domain>            A / AAAA of the chosen healthy servers
 *   <zone>.<service>.<domain>     the same, of one zone's servers
 *   _<service>._udp.<domain>      SRV to the servers' UDP ports   (targets <node>.node.<domain>,
 *   _<service>._tcp.<domain>      SRV to the servers' TCP ports    their A/AAAA in the additional
 *   _<service>._ws.<domain>       SRV to the servers' WebSocket ports   section)
 *   <node>.node.<domain>          A / AAAA of one member (alive or suspect)
 *   <domain>                      SOA (and NODATA for other types)
 */
import net from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Packet, type Question, type SrvAnswer } from 'dns-packet';
import type { ServerRecord } from '../../sdk/core/protocol.js';

/** Chooses and orders at most `n` of `records` for one query (the SDK's load-aware choice). */
export type Chooser = (records: readonly ServerRecord[], n: number) => ServerRecord[];

export interface AnswerConfig {
  /** The zone, lower case, with its final dot ('peerlb.'). */
  domain: string;
  /** Most servers in one answer. */
  answers: number;
  /** TTL of every record, seconds (also the SOA minimum: the negative TTL, RFC 2308 §5). */
  ttl: number;
}

export interface AnswerInput {
  query: DecodedPacket;
  /** UDP answers are held to 512 bytes, or the client's EDNS0 size up to EDNS_UDP_SIZE; TCP to 65535. */
  transport: 'udp' | 'tcp';
  /** What the view holds: every live (alive or suspect) member's record, of every service. */
  records: readonly ServerRecord[];
  config: AnswerConfig;
  choose: Chooser;
}

export type Rcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED';

export interface AnswerResult {
  response: Buffer;
  rcode: Rcode;
  /** The query type (for metrics), 'none' without a question. */
  qtype: string;
  /** TC was set: the answer did not fit (the client retries over TCP). */
  truncated: boolean;
  /** Outside the zone (REFUSED): not authoritative. */
  inZone: boolean;
}

/** What we advertise and send at most over UDP with EDNS0 (DNS flag day 2020: no fragmentation). */
export const EDNS_UDP_SIZE = 1232;
/** Without EDNS0 a UDP message is at most 512 bytes (RFC 1035 §4.2.1). */
export const PLAIN_UDP_SIZE = 512;
/** A TCP message is length-prefixed with 16 bits (RFC 1035 §4.2.2). */
export const TCP_MAX_SIZE = 65535;

const QR = 1 << 15;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RD = dnsPacket.RECURSION_DESIRED;
const CD = dnsPacket.CHECKING_DISABLED;
const RCODE: Record<Rcode, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
/** EDNS version 1+ gets BADVERS (RFC 6891 §6.1.3): extended rcode 16 = upper bits 1, header rcode 0. */
const BADVERS_UPPER = 1;

type Section = Answer[];

interface Reply {
  rcode: Rcode;
  answers: Section;
  authorities: Section;
  additionals: Section;
  inZone: boolean;
}

/** Answer one query. Never throws for any decoded packet (the server also guards it). */
export function answerQuery(input: AnswerInput): AnswerResult {
  const q = input.query;
  const question = q.questions?.length === 1 ? q.questions[0] : undefined;
  const qtype = question ? String(question.type) : 'none';
  const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as (Answer & { udpPayloadSize?: number; ednsVersion?: number }) | undefined;
  const opcode = ((q.flags ?? 0) >> 11) & 0xf;
  let reply: Reply;
  let badvers = false;
  if (opcode !== 0) reply = empty('NOTIMP', false);
  else if (!question) reply = empty('FORMERR', false);
  else if (opt && (opt.ednsVersion ?? 0) > 0) {
    badvers = true;
    reply = empty('NOERROR', true);
  } else reply = resolve(question, input);
  const limit = input.transport === 'tcp' ? TCP_MAX_SIZE : opt ? Math.min(EDNS_UDP_SIZE, Math.max(PLAIN_UDP_SIZE, opt.udpPayloadSize ?? PLAIN_UDP_SIZE)) : PLAIN_UDP_SIZE;
  const ednsOut: Answer[] = opt ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: badvers ? BADVERS_UPPER : 0, ednsVersion: 0, flags: 0, options: [] } as unknown as Answer] : [];
  const flags = (q.flags ?? 0) & (RD | CD);
  const header = (tc: boolean): number => QR | flags | (reply.inZone ? AA : 0) | (tc ? TC : 0) | RCODE[reply.rcode];
  const build = (answers: Section, authorities: Section, additionals: Section, tc: boolean): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: header(tc),
      questions: question ? [question] : [],
      answers,
      authorities,
      additionals: [...additionals, ...ednsOut],
    } as Packet);
  let truncated = false;
  let response = build(reply.answers, reply.authorities, reply.additionals, false);
  if (response.length > limit && reply.additionals.length) {
    // The additional section may be cut without TC (RFC 2181 §9): the answer itself is whole.
    response = build(reply.answers, reply.authorities, [], false);
  }
  if (response.length > limit) {
    // The answer does not fit: TC and no records at all (a partial RRset would be taken for the
    // whole by some stub resolvers); the client retries over TCP (RFC 7766 §5).
    truncated = true;
    response = build([], [], [], true);
  }
  return { response, rcode: reply.rcode, qtype, truncated, inZone: reply.inZone };
}

function empty(rcode: Rcode, inZone: boolean): Reply {
  return { rcode, answers: [], authorities: [], additionals: [], inZone };
}

/** The zone-relative labels of `name`, or undefined outside the zone. '' is the apex. */
export function relativeName(name: string, domain: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  const d = domain.replace(/\.$/, '');
  if (n === d) return '';
  return n.endsWith('.' + d) ? n.slice(0, n.length - d.length - 1) : undefined;
}

const SRV_PROTOCOLS = { _udp: 'udpPort', _tcp: 'tcpPort', _ws: 'wsPort' } as const;

function resolve(question: Question, input: AnswerInput): Reply {
  const { config } = input;
  const rel = relativeName(question.name, config.domain);
  if (rel === undefined) return empty('REFUSED', false);
  if (question.class !== undefined && question.class !== 'IN' && question.class !== 'ANY') return empty('REFUSED', false);
  const zoneName = config.domain.replace(/\.$/, '');
  const soa = soaRecord(zoneName, config.ttl);
  const nodata = (): Reply => ({ rcode: 'NOERROR', answers: [], authorities: [soa], additionals: [], inZone: true });
  const nxdomain = (): Reply => ({ rcode: 'NXDOMAIN', answers: [], authorities: [soa], additionals: [], inZone: true });
  const type = question.type;
  const ok = (answers: Section, additionals: Section = []): Reply =>
    answers.length ? { rcode: 'NOERROR', answers, authorities: [], additionals, inZone: true } : nodata();
  if ((type as string) === 'ANY') {
    // RFC 8482 §4.2: one synthesized HINFO instead of everything, for any name that exists.
    if (rel !== '' && !nameExists(rel, input)) return nxdomain();
    return ok([{ type: 'HINFO', name: question.name, ttl: config.ttl, data: { cpu: 'RFC8482', os: '' } } as Answer]);
  }
  if (rel === '') return type === 'SOA' ? ok([soa]) : nodata();
  const labels = rel.split('.');
  // <node>.node.<domain>
  if (labels.length >= 2 && labels[labels.length - 1] === 'node') {
    const node = labels.slice(0, -1).join('.');
    const rec = input.records.find((r) => r.id.toLowerCase() === node);
    if (!rec) return nxdomain();
    return ok(addressRecords(question.name, [rec], type, config.ttl));
  }
  // _<service>._udp|_tcp|_ws.<domain>
  if (labels.length === 2 && labels[0]!.startsWith('_') && labels[1]! in SRV_PROTOCOLS) {
    const service = labels[0]!.slice(1);
    const portKey = SRV_PROTOCOLS[labels[1] as keyof typeof SRV_PROTOCOLS];
    const all = input.records.filter((r) => r.service.toLowerCase() === service && r[portKey] !== undefined);
    if (!all.length) return nxdomain();
    if (type !== 'SRV') return nodata();
    const chosen = input.choose(all.filter(serving), config.answers);
    const answers: Section = chosen.map(
      (r): SrvAnswer => ({ type: 'SRV', name: question.name, ttl: config.ttl, data: { priority: 0, weight: r.weight, port: r[portKey]!, target: `${r.id.toLowerCase()}.node.${zoneName}` } }),
    );
    const additionals: Section = chosen.flatMap((r) => {
      const target = `${r.id.toLowerCase()}.node.${zoneName}`;
      return [...addressRecords(target, [r], 'A', config.ttl), ...addressRecords(target, [r], 'AAAA', config.ttl)];
    });
    return ok(answers, additionals);
  }
  // <service>.<domain> or <zone>.<service>.<domain>
  if (labels.length <= 2) {
    const service = labels[labels.length - 1]!;
    const zone = labels.length === 2 ? labels[0] : undefined;
    const all = input.records.filter((r) => r.service.toLowerCase() === service && (zone === undefined || r.zone?.toLowerCase() === zone));
    if (!all.length) return nxdomain();
    if (type !== 'A' && type !== 'AAAA') return nodata();
    const family = type === 'A' ? 4 : 6;
    const candidates = all.filter((r) => serving(r) && net.isIP(r.host) === family);
    return ok(addressRecords(question.name, input.choose(candidates, config.answers), type, config.ttl));
  }
  return nxdomain();
}

/** Whether clients may be sent to the server: healthy (not unhealthy, not draining). */
function serving(r: ServerRecord): boolean {
  return r.health === 'healthy';
}

/** Whether a zone-relative name exists (for ANY). */
function nameExists(rel: string, input: AnswerInput): boolean {
  const labels = rel.split('.');
  if (labels.length >= 2 && labels[labels.length - 1] === 'node') return input.records.some((r) => r.id.toLowerCase() === labels.slice(0, -1).join('.'));
  if (labels.length === 2 && labels[0]!.startsWith('_') && labels[1]! in SRV_PROTOCOLS) {
    const portKey = SRV_PROTOCOLS[labels[1] as keyof typeof SRV_PROTOCOLS];
    return input.records.some((r) => r.service.toLowerCase() === labels[0]!.slice(1) && r[portKey] !== undefined);
  }
  if (labels.length === 1) return input.records.some((r) => r.service.toLowerCase() === labels[0]);
  if (labels.length === 2) return input.records.some((r) => r.service.toLowerCase() === labels[1] && r.zone?.toLowerCase() === labels[0]);
  return false;
}

/** A or AAAA records of the servers' hosts, one per distinct address (an RRset holds no duplicates, RFC 2181 §5). */
function addressRecords(name: string, records: readonly ServerRecord[], type: string, ttl: number): Section {
  if (type !== 'A' && type !== 'AAAA') return [];
  const family = type === 'A' ? 4 : 6;
  const seen = new Set<string>();
  const out: Section = [];
  for (const r of records) {
    if (net.isIP(r.host) !== family || seen.has(r.host)) continue;
    seen.add(r.host);
    out.push({ type, name, ttl, data: r.host } as Answer);
  }
  return out;
}

/** The zone's SOA: minimum (and TTL) = the answers' TTL, which RFC 2308 §5 makes the negative TTL. */
function soaRecord(zone: string, ttl: number): Answer {
  return {
    type: 'SOA',
    name: zone,
    ttl,
    data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: ttl },
  } as Answer;
}
