/**
 * Every error peerlb raises, with a stable `code` users can match on (as `ws` does with `WS_ERR_*`).
 * The pick path never throws: it returns `undefined`. These are for the edges (options, connect,
 * codecs, configuration).
 */
export type ErrorCode =
  | 'PEERLB_ERR_NO_SERVERS'
  | 'PEERLB_ERR_ALL_ATTEMPTS_FAILED'
  | 'PEERLB_ERR_BAD_OPTION'
  | 'PEERLB_ERR_CLOSED'
  | 'PEERLB_ERR_ABORTED'
  | 'PEERLB_ERR_TIMEOUT'
  | 'PEERLB_ERR_DECODE'
  | 'PEERLB_ERR_FRAME_TOO_LARGE'
  | 'PEERLB_ERR_UNSUPPORTED_VERSION'
  | 'PEERLB_ERR_AUTH'
  | 'PEERLB_ERR_SIGNATURE'
  | 'PEERLB_ERR_CONFIG'
  | 'PEERLB_ERR_LIMIT'
  | 'PEERLB_ERR_UNSUPPORTED'
  | 'PEERLB_ERR_FULL';

export class PeerlbError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No server is known (or all are gone) when one is needed. */
export class NoServersError extends PeerlbError {
  constructor(service: string) {
    super('PEERLB_ERR_NO_SERVERS', `no servers known for service "${service}"`);
  }
}

export interface AttemptFailure {
  server: string;
  address: string;
  error: string;
}

/** `connect` tried every attempt its budget allowed and none succeeded. */
export class AllAttemptsFailedError extends PeerlbError {
  readonly attempts: readonly AttemptFailure[];
  constructor(attempts: AttemptFailure[]) {
    const list = attempts.map((a) => `${a.server} (${a.address}): ${a.error}`).join('; ');
    super('PEERLB_ERR_ALL_ATTEMPTS_FAILED', `all ${attempts.length} connect attempts failed: ${list}`);
    this.attempts = attempts;
  }
}

/** An option given to `join`, `startAgent` or the CLI is wrong; `option` names it. */
export class BadOptionError extends PeerlbError {
  readonly option: string;
  constructor(option: string, problem: string) {
    super('PEERLB_ERR_BAD_OPTION', `option "${option}" ${problem}`);
    this.option = option;
  }
}

/**
 * What was asked for needs a transport this runtime's entry has not got: mDNS discovery, TCP
 * `connect`, `udp` and host-name resolution need the Node entry (`peerlb/sdk`); the runtime-neutral
 * one (`peerlb/sdk/core`) has WebSocket discovery and picks. `option` names the option or method.
 */
export class UnsupportedError extends PeerlbError {
  readonly option: string;
  constructor(option: string, problem: string) {
    super('PEERLB_ERR_UNSUPPORTED', `"${option}" ${problem}`);
    this.option = option;
  }
}

export class ClosedError extends PeerlbError {
  constructor(what: string) {
    super('PEERLB_ERR_CLOSED', `${what} is closed`);
  }
}

export class AbortedError extends PeerlbError {
  constructor(reason?: unknown) {
    super('PEERLB_ERR_ABORTED', 'the operation was aborted', { cause: reason });
  }
}

export class TimeoutError extends PeerlbError {
  constructor(what: string, ms: number) {
    super('PEERLB_ERR_TIMEOUT', `${what} timed out after ${ms} ms`);
  }
}

/** Bytes from the network that do not decode: malformed msgpack, wrong shape, bad TXT data. */
export class DecodeError extends PeerlbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PEERLB_ERR_DECODE', message, options);
  }
}

/**
 * One server record in a frame does not parse (the rest of the frame did): the client leaves that
 * server out of its view and keeps its subscription. `server` is the record's id when it has one.
 */
export class InvalidRecordError extends DecodeError {
  readonly server: string | undefined;
  constructor(server: string | undefined, message: string) {
    super(message);
    this.server = server;
  }
}

/**
 * An agent refused a `/v1/watch` subscription with an HTTP status instead of upgrading: 401/403
 * (`PEERLB_ERR_AUTH`: token missing or wrong), 429/503 (`PEERLB_ERR_LIMIT`: too many
 * subscribers, or this address blocked for a while), anything else `PEERLB_ERR_CONFIG` (not an
 * agent, wrong path). The client tries another agent, backing off.
 */
export class WatchRefusedError extends PeerlbError {
  readonly agent: string;
  readonly status: number;
  constructor(agent: string, status: number, statusText = '') {
    const code = status === 401 || status === 403 ? 'PEERLB_ERR_AUTH' : status === 429 || status === 503 ? 'PEERLB_ERR_LIMIT' : 'PEERLB_ERR_CONFIG';
    super(code, `agent ${agent} refused the /v1/watch subscription: HTTP ${status}${statusText ? ` ${statusText}` : ''}; retrying with backoff`);
    this.agent = agent;
    this.status = status;
  }
}

export class FrameTooLargeError extends PeerlbError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number) {
    super('PEERLB_ERR_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.size = size;
    this.limit = limit;
  }
}

export class UnsupportedVersionError extends PeerlbError {
  readonly version: unknown;
  constructor(version: unknown, supported: number) {
    super('PEERLB_ERR_UNSUPPORTED_VERSION', `protocol version ${String(version)} is not supported (this build speaks ${supported})`);
    this.version = version;
  }
}

/**
 * A server was ignored because the client verifies announcements (`join({ verify })`) and its
 * signature is missing or wrong. Emitted as the cluster's 'rejected' event, never thrown.
 */
export class SignatureError extends PeerlbError {
  readonly server: string;
  /** Where the announcement came from: 'mdns' (TXT) or 'watch' (an agent's /v1/watch). */
  readonly source: 'mdns' | 'watch';
  readonly reason: 'unsigned' | 'bad-signature';
  constructor(server: string, source: 'mdns' | 'watch', reason: 'unsigned' | 'bad-signature', detail = '') {
    super('PEERLB_ERR_SIGNATURE', `server "${server}" from ${source} ignored: ${reason === 'unsigned' ? 'not signed' : 'wrong signature'}${detail ? ` (${detail})` : ''}`);
    this.server = server;
    this.source = source;
    this.reason = reason;
  }
}

export class ConfigError extends PeerlbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PEERLB_ERR_CONFIG', message, options);
  }
}

/** One server `reserve` asked, and why it said no (full, draining, unreachable, …). */
export interface SeatRefusalInfo {
  server: string;
  reason: string;
}

/**
 * `cluster.reserve` found no server with the seats: every server it asked (within `attempts`) was
 * full, draining or unreachable, and the rest were known to be (marked a moment ago) or none was left.
 */
export class FullError extends PeerlbError {
  readonly seats: number;
  readonly refusals: readonly SeatRefusalInfo[];
  constructor(service: string, seats: number, refusals: SeatRefusalInfo[]) {
    const list = refusals.length ? `: ${refusals.map((r) => `${r.server} (${r.reason})`).join('; ')}` : ' (every server is full or marked full)';
    super('PEERLB_ERR_FULL', `no server of "${service}" has ${seats} free seat${seats === 1 ? '' : 's'}${list}`);
    this.seats = seats;
    this.refusals = refusals;
  }
}
