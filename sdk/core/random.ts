/**
 * All randomness goes through a Random source so tests can seed it (ARCHITECTURE.md, practice 3).
 * The default is xorshift128+ seeded from the OS: fast, allocation-free, and good enough for
 * load-balancing choices (never for keys or nonces: those use a CSPRNG). The seed comes from
 * `globalThis.crypto.getRandomValues` (Web Crypto: browsers, Deno, Bun, Node ≥ 19).
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
}

export class XorShiftRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed?: number) {
    if (seed === undefined) {
      const b = globalThis.crypto.getRandomValues(new Uint32Array(4));
      this.s0 = b[0]! | 1;
      this.s1 = b[1]!;
      this.s2 = b[2]!;
      this.s3 = b[3]!;
    } else {
      // splitmix32 to spread a small seed over the state
      let s = seed >>> 0;
      const mix = () => {
        s = (s + 0x9e3779b9) >>> 0;
        let z = s;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        return (z ^ (z >>> 16)) >>> 0;
      };
      this.s0 = mix() | 1;
      this.s1 = mix();
      this.s2 = mix();
      this.s3 = mix();
    }
  }

  /** xoshiro128** step: 32 random bits. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  next(): number {
    return this.u32() / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export const defaultRandom = (): Random => new XorShiftRandom();
