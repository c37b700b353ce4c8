/**
 * A binary min-heap of (time, value): the mDNS cache's expiry and refresh times and the browser's
 * instance times, so a timer looks at what is due and never walks every entry. Stale items are
 * skipped by the reader (lazy deletion). Pure.
 */
export class TimeHeap<T> {
  private at: number[] = [];
  private v: T[] = [];

  get size(): number {
    return this.at.length;
  }

  push(at: number, value: T): void {
    const a = this.at;
    const v = this.v;
    let i = a.length;
    a.push(at);
    v.push(value);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= at) break;
      a[i] = a[p]!;
      v[i] = v[p]!;
      i = p;
    }
    a[i] = at;
    v[i] = value;
  }

  /** The earliest time, or Infinity. */
  peek(): number {
    return this.at.length > 0 ? this.at[0]! : Infinity;
  }

  /** The value at the earliest time. */
  peekValue(): T | undefined {
    return this.v[0];
  }

  pop(): [number, T] | undefined {
    const a = this.at;
    const v = this.v;
    if (a.length === 0) return undefined;
    const top: [number, T] = [a[0]!, v[0]!];
    const lastAt = a.pop()!;
    const lastV = v.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]! < a[l]! ? r : l;
        if (a[c]! >= lastAt) break;
        a[i] = a[c]!;
        v[i] = v[c]!;
        i = c;
      }
      a[i] = lastAt;
      v[i] = lastV;
    }
    return top;
  }

  clear(): void {
    this.at = [];
    this.v = [];
  }
}
