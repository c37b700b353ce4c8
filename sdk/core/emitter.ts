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

type Key<T> = Extract<keyof T, string> | 'newListener' | 'removeListener';
type Args<T, K> = K extends keyof T ? (T[K] extends unknown[] ? T[K] : never) : unknown[];

export class Emitter<T extends EventsOf<T> = EventMap> {
  #events = new Map<string | symbol, Entry[]>();
  #max = 10;

  on<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.#add(event, listener as Listener, false, false);
  }
  addListener<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.#add(event, listener as Listener, false, false);
  }
  prependListener<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.#add(event, listener as Listener, false, true);
  }
  once<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.#add(event, listener as Listener, true, false);
  }
  prependOnceListener<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.#add(event, listener as Listener, true, true);
  }

  off<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    return this.removeListener(event, listener);
  }
  /** Removes the most recently added registration of `listener`, as Node does. */
  removeListener<K extends Key<T>>(event: K, listener: (...args: Args<T, K>) => void): this {
    const list = this.#events.get(event);
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn !== listener) continue;
      const next = list.slice(0, i).concat(list.slice(i + 1));
      if (next.length === 0) this.#events.delete(event);
      else this.#events.set(event, next);
      if (this.#events.has('removeListener') && event !== 'removeListener') this.#emit('removeListener', [event, listener]);
      break;
    }
    return this;
  }
  removeAllListeners(event?: Key<T>): this {
    if (event === undefined) this.#events.clear();
    else this.#events.delete(event);
    return this;
  }

  /** Calls the listeners in order; returns whether there were any. An unheard `error` is thrown. */
  emit<K extends Key<T>>(event: K, ...args: Args<T, K>): boolean {
    return this.#emit(event, args);
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
      if (e.once) this.removeListener(event as Key<T>, e.fn as never);
      e.fn.apply(this, args);
    }
    return true;
  }

  listenerCount(event: Key<T>): number {
    return this.#events.get(event)?.length ?? 0;
  }
  listeners(event: Key<T>): Listener[] {
    return (this.#events.get(event) ?? []).map((e) => e.fn);
  }
  rawListeners(event: Key<T>): Listener[] {
    return this.listeners(event);
  }
  eventNames(): (string | symbol)[] {
    return [...this.#events.keys()];
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
