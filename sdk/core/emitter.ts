/**
 * A typed event emitter with the surface of Node's `EventEmitter` (on/once/off, prepend…, emit,
 * listenerCount, listeners, eventNames, `newListener`/`removeListener` events, and an `error` emitted
 * with no listener thrown), written without `node:events` so the core runs in browsers, Deno and Bun.
 * `Cluster` and `Balancer` extend it; code written against Node's emitter keeps working
 * (`events.once(cluster, 'change')` included).
 */

/** Event name → listener arguments, as Node's `EventEmitter<T>`. */
export type EventMap = { [event: string]: unknown[] };
/** Any event map, interfaces included (they have no index signature): what `Emitter<T>` takes. */
export type EventsOf<T> = { [K in keyof T]: unknown[] };

type Listener = (...args: any[]) => void;
interface Entry {
  fn: Listener;
  once: boolean;
}

// The declarations mirror @types/node's typed EventEmitter<T> (events.d.ts: Key, Args, Listener),
// so a class that moved from Node's emitter to this one declares the same members.
type Key<K, T> = K | keyof T;
type Key2<K, T> = K & keyof T;
type Args<K, T> = K extends keyof T ? T[K] : never;
type Listener1<K, T> = K extends keyof T ? (T[K] extends unknown[] ? (...args: T[K]) => void : never) : never;

/** Node's `EventEmitter.captureRejectionSymbol` (a registered symbol, so no import of node:events). */
const CAPTURE_REJECTION: unique symbol = Symbol.for('nodejs.rejection') as never;

export class Emitter<T extends EventsOf<T> = EventMap> {
  #events = new Map<string | symbol, Entry[]>();
  #max = 10;

  on<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.#add(eventName as string, listener as Listener, false, false);
  }
  addListener<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.#add(eventName as string, listener as Listener, false, false);
  }
  prependListener<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.#add(eventName as string, listener as Listener, false, true);
  }
  once<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.#add(eventName as string, listener as Listener, true, false);
  }
  prependOnceListener<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.#add(eventName as string, listener as Listener, true, true);
  }

  off<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    return this.removeListener(eventName, listener);
  }
  /** Removes the most recently added registration of `listener`, as Node does. */
  removeListener<K>(eventName: Key<K, T>, listener: Listener1<K, T>): this {
    const event = eventName as string | symbol;
    const list = this.#events.get(event);
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn !== (listener as unknown)) continue;
      const next = list.slice(0, i).concat(list.slice(i + 1));
      if (next.length === 0) this.#events.delete(event);
      else this.#events.set(event, next);
      if (this.#events.has('removeListener') && event !== 'removeListener') this.#emit('removeListener', [event, listener]);
      break;
    }
    return this;
  }
  /** Removes this registration (a `once` that fired), not the latest one of the same function. */
  #removeEntry(event: string | symbol, entry: Entry): void {
    const list = this.#events.get(event);
    const i = list ? list.indexOf(entry) : -1;
    if (!list || i < 0) return;
    const next = list.slice(0, i).concat(list.slice(i + 1));
    if (next.length === 0) this.#events.delete(event);
    else this.#events.set(event, next);
    if (this.#events.has('removeListener') && event !== 'removeListener') this.#emit('removeListener', [event, entry.fn]);
  }

  removeAllListeners(eventName?: Key<unknown, T>): this {
    if (eventName === undefined) this.#events.clear();
    else this.#events.delete(eventName as string | symbol);
    return this;
  }

  /** Calls the listeners in order; returns whether there were any. An unheard `error` is thrown. */
  emit<K>(eventName: Key<K, T>, ...args: Args<K, T>): boolean {
    return this.#emit(eventName as string | symbol, args as unknown[]);
  }

  #emit(event: string | symbol, args: unknown[]): boolean {
    const list = this.#events.get(event);
    if (!list || list.length === 0) {
      if (event === 'error') {
        const err = args[0];
        throw err instanceof Error ? err : new Error(`Unhandled error. (${String(err)})`);
      }
      return false;
    }
    // A snapshot: listeners added or removed while emitting take effect on the next emit.
    for (const e of list) {
      if (e.once) this.#removeEntry(event, e);
      const r: unknown = e.fn.apply(this, args);
      // Node's captureRejections: an async listener's rejection goes to the handler, if one is set.
      const capture = (this as { [CAPTURE_REJECTION]?: unknown })[CAPTURE_REJECTION];
      if (typeof capture === 'function' && r !== null && typeof (r as { then?: unknown } | undefined)?.then === 'function')
        (r as Promise<unknown>).then(undefined, (err: unknown) => (capture as (...a: unknown[]) => void).call(this, err, event, ...args));
    }
    return true;
  }

  listenerCount<K>(eventName: Key<K, T>, listener?: (K extends keyof T ? (T[K] extends unknown[] ? (...args: T[K]) => void : never) : never)): number {
    const list = this.#events.get(eventName as string | symbol) ?? [];
    return listener === undefined ? list.length : list.filter((e) => e.fn === (listener as unknown)).length;
  }
  listeners<K>(eventName: Key<K, T>): Array<(K extends keyof T ? (T[K] extends unknown[] ? (...args: T[K]) => void : never) : never)> {
    return (this.#events.get(eventName as string | symbol) ?? []).map((e) => e.fn as Listener1<K, T>);
  }
  rawListeners<K>(eventName: Key<K, T>): Array<(K extends keyof T ? (T[K] extends unknown[] ? (...args: T[K]) => void : never) : never)> {
    return this.listeners(eventName);
  }
  eventNames(): Array<(string | symbol) & Key2<unknown, T>> {
    return [...this.#events.keys()] as Array<(string | symbol) & Key2<unknown, T>>;
  }
  setMaxListeners(n: number): this {
    this.#max = n;
    return this;
  }
  getMaxListeners(): number {
    return this.#max;
  }

  #add(event: string | symbol, fn: Listener, once: boolean, prepend: boolean): this {
    if (typeof fn !== 'function') throw new TypeError(`The "listener" argument must be a function, got ${typeof fn}`);
    if (this.#events.has('newListener') && event !== 'newListener') this.#emit('newListener', [event, fn]);
    const list = this.#events.get(event) ?? [];
    const entry = { fn, once };
    this.#events.set(event, prepend ? [entry, ...list] : [...list, entry]);
    return this;
  }
}
