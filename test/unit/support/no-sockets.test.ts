/**
 * The unit project's guard (test/support/no-sockets.ts, its setup file) refuses every way out:
 * if one of these stopped throwing, a unit test could open a socket unnoticed.
 */
import childProcess, { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net, { connect, createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';

const refused = /unit tests open no sockets/;

describe('the unit guard', () => {
  it('refuses TCP: net.connect, net.createConnection (named imports too), new net.Socket().connect, createServer().listen', () => {
    expect(() => net.connect(1, '127.0.0.1')).toThrow(refused);
    expect(() => connect(1, '127.0.0.1')).toThrow(refused);
    expect(() => net.createConnection(1, '127.0.0.1')).toThrow(refused);
    expect(() => createConnection(1, '127.0.0.1')).toThrow(refused);
    expect(() => new net.Socket().connect(1, '127.0.0.1')).toThrow(refused);
    expect(() => net.createServer().listen(0, '127.0.0.1')).toThrow(refused);
    expect(() => http.createServer().listen(0, '127.0.0.1')).toThrow(refused);
  });
  it('refuses UDP: dgram.createSocket', () => {
    expect(() => dgram.createSocket('udp4')).toThrow(refused);
  });
  it('refuses HTTP requests and WebSockets (the ws package, its server, and globalThis.WebSocket)', () => {
    expect(() => http.request('http://127.0.0.1:1/')).toThrow(refused);
    expect(() => new WebSocket('ws://127.0.0.1:1/')).toThrow(refused);
    expect(() => new WebSocketServer({ port: 0, host: '127.0.0.1' })).toThrow(refused);
    expect(() => new globalThis.WebSocket('ws://127.0.0.1:1/')).toThrow(refused);
  });
  it('refuses child processes', () => {
    expect(() => spawn(process.execPath, ['-e', '0'])).toThrow(refused);
    expect(() => childProcess.execFileSync(process.execPath, ['-e', '0'])).toThrow(refused);
  });
});
