import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseStaticServer, resolveOptions } from '../../../../sdk/core/options.js';
import { BadOptionError } from '../../../../sdk/core/errors.js';
import { ManualClock } from '../../../../sdk/core/clock.js';
import { XorShiftRandom } from '../../../../sdk/core/random.js';
import { createFeed } from '../../../../sdk/core/discovery/feed.js';
import { STRATEGY_NAMES } from '../../../../sdk/core/pickers/index.js';
import { join } from '../../../../sdk/index.js';

const base = { service: 'game', discovery: { servers: ['127.0.0.1:7000'] } };

/** The option the error names, or a failure message when nothing (or something else) was thrown. */
function rejected(input: unknown): string {
  try {
    resolveOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(BadOptionError);
    const e = err as BadOptionError;
    expect(e.code).toBe('PEERLB_ERR_BAD_OPTION');
    expect(e.message).toContain(`"${e.option}"`);
    return e.option;
  }
  return '(accepted)';
}

describe('resolveOptions: defaults', () => {
  it('fills every default', () => {
    const o = resolveOptions(base);
    expect(o).toMatchObject({
      service: 'game',
      strategy: 'p2c',
      zone: undefined,
      zoneAffinity: DEFAULTS.zoneAffinity,
      outlier: DEFAULTS.outlier,
      slowStartMs: 0,
      panicThreshold: 0,
      reportIntervalMs: 1000,
      reportExpireIntervals: 3,
      hashBalanceFactor: undefined,
      ewmaDecayMs: 10_000,
      connectTimeoutMs: 2000,
      connectAttempts: 3,
      waitForServersMs: 2000,
      token: undefined,
    });
  });

  it('accepts every strategy, every discovery kind and every option at its bounds', () => {
    for (const strategy of STRATEGY_NAMES) expect(resolveOptions({ ...base, strategy }).strategy).toBe(strategy);
    expect(resolveOptions({ service: 'g', discovery: { mdns: { interface: '127.0.0.1' } } }).discovery).toEqual({ mdns: { interface: '127.0.0.1', subscribe: true } });
    expect(resolveOptions({ service: 'g', discovery: { agents: ['ws://127.0.0.1:7946'] } }).discovery).toEqual({ agents: ['ws://127.0.0.1:7946'] });
    const feed = createFeed();
    expect(resolveOptions({ service: 'g', discovery: { source: feed } }).discovery).toEqual({ source: feed });
    const o = resolveOptions({
      ...base,
      service: 'a-b-c-d-e-f-g-1', // 15 chars
      zone: 'z',
      zoneAffinity: { minHealthyShare: 0, maxLoadRatio: 1, maxUtilization: 100 },
      slowStartMs: 3_600_000,
      slowStartAggression: 0.01,
      slowStartMinShare: 1,
      outlier: { consecutiveFailures: 1, baseEjectionMs: 1, maxEjectionMs: 86_400_000, maxEjectedShare: 1 },
      panicThreshold: 1,
      reportIntervalMs: 10,
      reportExpireIntervals: 1000,
      hashBalanceFactor: 1.25,
      ewmaDecayMs: 1,
      connectTimeoutMs: 1,
      connectAttempts: 100,
      waitForServersMs: 0,
      token: 't',
      clock: new ManualClock(),
      random: new XorShiftRandom(1),
    });
    expect(o.hashBalanceFactor).toBe(1.25);
    expect(o.outlier.maxEjectedShare).toBe(1);
  });
});

describe('resolveOptions: every bad option is rejected with a BadOptionError naming it', () => {
  const cases: [name: string, input: unknown, option: string][] = [
    ['no options', undefined, 'options'],
    ['options not an object', 'game', 'options'],
    ['options an array', [], 'options'],
    ['no service', { discovery: base.discovery }, 'service'],
    ['service not a string', { ...base, service: 7 }, 'service'],
    ['empty service', { ...base, service: '' }, 'service'],
    ['service of 16 chars', { ...base, service: 'abcdefghijklmnop' }, 'service'],
    ['service with a dot', { ...base, service: 'ga.me' }, 'service'],
    ['service with an underscore', { ...base, service: '_game' }, 'service'],
    ['service with a leading hyphen', { ...base, service: '-game' }, 'service'],
    ['service with a trailing hyphen', { ...base, service: 'game-' }, 'service'],
    ['service with a double hyphen', { ...base, service: 'ga--me' }, 'service'],
    ['service of digits only', { ...base, service: '1234' }, 'service'],
    ['no discovery', { service: 'game' }, 'discovery'],
    ['discovery not an object', { service: 'game', discovery: 'mdns' }, 'discovery'],
    ['discovery empty', { service: 'game', discovery: {} }, 'discovery'],
    ['discovery with two kinds', { service: 'game', discovery: { servers: [], agents: ['ws://a:1'] } }, 'discovery'],
    ['servers not an array', { service: 'game', discovery: { servers: '127.0.0.1:1' } }, 'discovery.servers'],
    ['server string without port', { service: 'game', discovery: { servers: ['127.0.0.1'] } }, 'discovery.servers[0]'],
    ['server string with port 0', { service: 'game', discovery: { servers: ['a:1', '127.0.0.1:0'] } }, 'discovery.servers[1]'],
    ['server string with port 65536', { service: 'game', discovery: { servers: ['127.0.0.1:65536'] } }, 'discovery.servers[0]'],
    ['server string with a bad scheme', { service: 'game', discovery: { servers: ['http://127.0.0.1:80'] } }, 'discovery.servers[0]'],
    ['server not a string or object', { service: 'game', discovery: { servers: [7] } }, 'discovery.servers[0]'],
    ['server object without host', { service: 'game', discovery: { servers: [{ tcpPort: 1 }] } }, 'discovery.servers[0].host'],
    ['server object with empty host', { service: 'game', discovery: { servers: [{ host: '', tcpPort: 1 }] } }, 'discovery.servers[0].host'],
    ['server object without ports', { service: 'game', discovery: { servers: [{ host: 'h' }] } }, 'discovery.servers[0]'],
    ['server udpPort not an integer', { service: 'game', discovery: { servers: [{ host: 'h', udpPort: 1.5 }] } }, 'discovery.servers[0].udpPort'],
    ['server tcpPort out of range', { service: 'game', discovery: { servers: [{ host: 'h', tcpPort: 70000 }] } }, 'discovery.servers[0].tcpPort'],
    ['server weight 0', { service: 'game', discovery: { servers: [{ host: 'h', tcpPort: 1, weight: 0 }] } }, 'discovery.servers[0].weight'],
    ['server weight above max', { service: 'game', discovery: { servers: [{ host: 'h', tcpPort: 1, weight: 10_001 }] } }, 'discovery.servers[0].weight'],
    ['server weight fractional', { service: 'game', discovery: { servers: [{ host: 'h', tcpPort: 1, weight: 1.5 }] } }, 'discovery.servers[0].weight'],
    ['server id empty', { service: 'game', discovery: { servers: [{ id: '', host: 'h', tcpPort: 1 }] } }, 'discovery.servers[0].id'],
    ['server zone empty', { service: 'game', discovery: { servers: [{ host: 'h', tcpPort: 1, zone: '' }] } }, 'discovery.servers[0].zone'],
    ['mdns not an object', { service: 'game', discovery: { mdns: true } }, 'discovery.mdns'],
    ['mdns without interface', { service: 'game', discovery: { mdns: {} } }, 'discovery.mdns.interface'],
    ['mdns interface a name', { service: 'game', discovery: { mdns: { interface: 'lo' } } }, 'discovery.mdns.interface'],
    ['mdns subscribe not a boolean', { service: 'game', discovery: { mdns: { interface: '127.0.0.1', subscribe: 'no' } } }, 'discovery.mdns.subscribe'],
    ['agents empty', { service: 'game', discovery: { agents: [] } }, 'discovery.agents'],
    ['agents not an array', { service: 'game', discovery: { agents: 'ws://a:1' } }, 'discovery.agents'],
    ['agent not a ws URL', { service: 'game', discovery: { agents: ['ws://a:1', 'http://a:1'] } }, 'discovery.agents[1]'],
    ['source without start', { service: 'game', discovery: { source: { close() {} } } }, 'discovery.source'],
    ['source without close', { service: 'game', discovery: { source: { start() {} } } }, 'discovery.source'],
    ['unknown strategy', { ...base, strategy: 'fastest' }, 'strategy'],
    ['strategy not a string', { ...base, strategy: 1 }, 'strategy'],
    ['zone empty', { ...base, zone: '' }, 'zone'],
    ['zone not a string', { ...base, zone: 3 }, 'zone'],
    ['zone too long', { ...base, zone: 'z'.repeat(256) }, 'zone'],
    ['zoneAffinity not an object', { ...base, zoneAffinity: 1 }, 'zoneAffinity'],
    ['zoneAffinity.minHealthyShare above 1', { ...base, zoneAffinity: { minHealthyShare: 1.1 } }, 'zoneAffinity.minHealthyShare'],
    ['zoneAffinity.maxLoadRatio below 1', { ...base, zoneAffinity: { maxLoadRatio: 0.9 } }, 'zoneAffinity.maxLoadRatio'],
    ['zoneAffinity.maxUtilization negative', { ...base, zoneAffinity: { maxUtilization: -0.1 } }, 'zoneAffinity.maxUtilization'],
    ['slowStartMs negative', { ...base, slowStartMs: -1 }, 'slowStartMs'],
    ['slowStartMs NaN', { ...base, slowStartMs: Number.NaN }, 'slowStartMs'],
    ['slowStartMs a string', { ...base, slowStartMs: '1000' }, 'slowStartMs'],
    ['slowStartAggression 0', { ...base, slowStartAggression: 0 }, 'slowStartAggression'],
    ['slowStartMinShare 0', { ...base, slowStartMinShare: 0 }, 'slowStartMinShare'],
    ['slowStartMinShare above 1', { ...base, slowStartMinShare: 1.5 }, 'slowStartMinShare'],
    ['outlier not an object', { ...base, outlier: [] }, 'outlier'],
    ['outlier.consecutiveFailures 0', { ...base, outlier: { consecutiveFailures: 0 } }, 'outlier.consecutiveFailures'],
    ['outlier.consecutiveFailures fractional', { ...base, outlier: { consecutiveFailures: 2.5 } }, 'outlier.consecutiveFailures'],
    ['outlier.baseEjectionMs 0', { ...base, outlier: { baseEjectionMs: 0 } }, 'outlier.baseEjectionMs'],
    ['outlier.maxEjectionMs Infinity', { ...base, outlier: { maxEjectionMs: Infinity } }, 'outlier.maxEjectionMs'],
    ['outlier.maxEjectedShare above 1', { ...base, outlier: { maxEjectedShare: 2 } }, 'outlier.maxEjectedShare'],
    ['panicThreshold above 1', { ...base, panicThreshold: 1.01 }, 'panicThreshold'],
    ['panicThreshold negative', { ...base, panicThreshold: -0.5 }, 'panicThreshold'],
    ['reportIntervalMs 0', { ...base, reportIntervalMs: 0 }, 'reportIntervalMs'],
    ['reportExpireIntervals 1', { ...base, reportExpireIntervals: 1 }, 'reportExpireIntervals'],
    ['hashBalanceFactor 1', { ...base, hashBalanceFactor: 1 }, 'hashBalanceFactor'],
    ['hashBalanceFactor a string', { ...base, hashBalanceFactor: '1.25' }, 'hashBalanceFactor'],
    ['ewmaDecayMs 0', { ...base, ewmaDecayMs: 0 }, 'ewmaDecayMs'],
    ['connectTimeoutMs 0', { ...base, connectTimeoutMs: 0 }, 'connectTimeoutMs'],
    ['connectAttempts 0', { ...base, connectAttempts: 0 }, 'connectAttempts'],
    ['connectAttempts fractional', { ...base, connectAttempts: 1.5 }, 'connectAttempts'],
    ['waitForServersMs negative', { ...base, waitForServersMs: -1 }, 'waitForServersMs'],
    ['token empty', { ...base, token: '' }, 'token'],
    ['token too long', { ...base, token: 'x'.repeat(1025) }, 'token'],
    ['clock without now()', { ...base, clock: { setTimeout() {}, clearTimeout() {} } }, 'clock'],
    ['clock not an object', { ...base, clock: Date }, 'clock'],
    ['random without int()', { ...base, random: { next: Math.random } }, 'random'],
  ];
  it.each(cases)('%s', (_name, input, option) => {
    expect(rejected(input)).toBe(option);
  });
});

describe('parseStaticServer', () => {
  it.each([
    ['127.0.0.1:7000', { host: '127.0.0.1', tcpPort: 7000, udpPort: 7000 }],
    ['tcp://10.0.0.5:7000', { host: '10.0.0.5', tcpPort: 7000, udpPort: undefined }],
    ['UDP://game.local:7001', { host: 'game.local', tcpPort: undefined, udpPort: 7001 }],
    ['[::1]:7000', { host: '::1', tcpPort: 7000, udpPort: 7000 }],
  ])('%s', (s, want) => {
    expect(parseStaticServer(s, 'x', 'game')).toMatchObject({ id: s, service: 'game', weight: 100, health: 'healthy', ...want });
  });

  it('objects get an id from host and port, and keep weight and zone', () => {
    expect(parseStaticServer({ host: 'h', udpPort: 9, weight: 300, zone: 'a' }, 'x', 'game')).toEqual({
      id: 'h:9', service: 'game', host: 'h', udpPort: 9, tcpPort: undefined, weight: 300, zone: 'a', health: 'healthy',
    });
  });
});

describe('resolveOptions: unknown keys are refused, naming them', () => {
  const cases: [string, unknown, string, RegExp?][] = [
    ['a misspelt top-level option', { ...base, waitForServerMs: 100 }, 'waitForServerMs', /did you mean "waitForServersMs"/],
    ['outlier.consecutiveFailure', { ...base, outlier: { consecutiveFailure: 5 } }, 'outlier.consecutiveFailure', /did you mean "outlier.consecutiveFailures"/],
    ['zoneAffinity.maxLoad', { ...base, zoneAffinity: { maxLoad: 2 } }, 'zoneAffinity.maxLoad'],
    ['discovery.mdns.interfac', { service: 'game', discovery: { mdns: { interface: '127.0.0.1', interfac: '127.0.0.1' } } }, 'discovery.mdns.interfac', /did you mean "discovery.mdns.interface"/],
    ['discovery.mdns without interface but with a typo', { service: 'game', discovery: { mdns: { interfac: '127.0.0.1' } } }, 'discovery.mdns.interfac'],
    ['discovery.static', { service: 'game', discovery: { static: ['127.0.0.1:1'] } }, 'discovery.static'],
    ['discovery.servers[0].wieght', { service: 'game', discovery: { servers: [{ host: '127.0.0.1', tcpPort: 1, wieght: 5 }] } }, 'discovery.servers[0].wieght', /did you mean "discovery.servers\[0\].weight"/],
    ['verify.key', { ...base, verify: { key: 'x' } }, 'verify.key'],
    ['several at once', { ...base, strat: 'p2c', zones: 'a', foo: 1 }, 'strat', /nor are "zones", "foo"/],
    ['onRejected not a function', { ...base, onRejected: 'log' }, 'onRejected'],
  ];
  it.each(cases)('%s', (_name, input, option, message) => {
    expect(rejected(input)).toBe(option);
    if (message) expect(() => resolveOptions(input)).toThrow(message);
  });

  it('join() rejects with the same BadOptionError', async () => {
    const err = await join({ ...base, outlier: { consecutiveFailure: 5 } } as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BadOptionError);
    expect((err as BadOptionError).option).toBe('outlier.consecutiveFailure');
  });
});

describe('static server hosts', () => {
  it.each([
    ['0.0.0.0:7000', 'discovery.servers[0]'],
    ['[::]:7000', 'discovery.servers[0]'],
    ['224.0.0.251:5353', 'discovery.servers[0]'],
    ['no_such_host!!:7000', 'discovery.servers[0]'],
    [`${'a'.repeat(64)}.example:7000`, 'discovery.servers[0]'],
  ])('%s is refused', (s, option) => {
    expect(rejected({ service: 'game', discovery: { servers: [s] } })).toBe(option);
  });

  it('an object host that is no address or name is refused', () => {
    expect(rejected({ service: 'game', discovery: { servers: [{ host: 'no such host!!', tcpPort: 1 }] } })).toBe('discovery.servers[0].host');
    expect(rejected({ service: 'game', discovery: { servers: [{ host: '0.0.0.0', tcpPort: 1 }] } })).toBe('discovery.servers[0].host');
  });
});
