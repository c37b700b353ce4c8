import { lookup } from 'node:dns/promises';
import type { HostResolver } from '../core/discovery/static.js';

/** Host names of static lists, resolved by the system resolver (the first address it gives). */
export const systemResolver: HostResolver = async (host) => (await lookup(host)).address;
