// Setup file of the `unit` project: unit tests open no sockets and start no processes. Every way
// out of the process this suite's code uses throws, so a test that reaches one fails loudly instead
// of quietly becoming an integration test (issue 14). Integration tests live in test/integration/.
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import dnsPromises from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';

function refuse(what: string): never {
  throw new Error(`unit tests open no sockets and start no processes: ${what} called (move the test to test/integration/)`);
}

const mark = <T extends object>(target: T, key: keyof T & string, what: string): void => {
  Object.defineProperty(target, key, {
    configurable: true,
    writable: true,
    value: function refused() { refuse(what); },
  });
};

mark(net, 'connect', 'net.connect');
mark(net, 'createConnection', 'net.createConnection');
mark(net.Socket.prototype, 'connect', 'net.Socket#connect');
mark(net.Server.prototype, 'listen', 'net.Server#listen (createServer().listen)');
mark(tls, 'connect', 'tls.connect');
mark(dgram, 'createSocket', 'dgram.createSocket');
mark(dgram.Socket.prototype, 'bind', 'dgram.Socket#bind');
// The `ws` client (`new WebSocket(url)`) opens its connection through http(s).request in its
// constructor, looked up at call time: refusing those makes `new WebSocket` from 'ws' throw.
mark(http, 'request', 'http.request (new WebSocket from ws?)');
mark(http, 'get', 'http.get');
mark(https, 'request', 'https.request (new WebSocket from ws?)');
mark(https, 'get', 'https.get');
// Name resolution may ask a DNS server: the system resolver and every query.
for (const fn of ['lookup', 'lookupService', 'resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveSrv', 'resolveTxt', 'reverse'] as const) {
  mark(dns, fn, `dns.${fn}`);
  mark(dnsPromises, fn, `dns/promises.${fn}`);
}
mark(dns.Resolver.prototype, 'resolve', 'dns.Resolver#resolve');
for (const fn of ['spawn', 'fork', 'exec', 'execFile', 'spawnSync', 'execSync', 'execFileSync'] as const) {
  mark(childProcess, fn, `child_process.${fn}`);
}
// Named imports of built-ins (`import { connect } from 'node:net'`) see the patched functions too.
syncBuiltinESMExports();

class RefusedWebSocket {
  constructor() { refuse('new WebSocket (globalThis.WebSocket)'); }
}
Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, value: RefusedWebSocket });
