/**
 * Local health awareness (Lifeguard LHA-Probe, §IV-A; memberlist awareness.go). A member that
 * misses acks and nacks, or has to refute suspicions of itself, is more likely the slow one: it
 * scales its own probe interval (and so its probe deadline) by `score + 1`, so a struggling member
 * stops accusing healthy ones.
 */
export class Awareness {
  private s = 0;

  /** `max`: the score stays in [0, max − 1] (memberlist AwarenessMaxMultiplier, default 8). */
  constructor(private readonly max: number) {}

  get score(): number {
    return this.s;
  }

  /** Apply a change, clamped to [0, max − 1]. Returns the new score. */
  applyDelta(delta: number): number {
    this.s = Math.min(this.max - 1, Math.max(0, this.s + delta));
    return this.s;
  }

  scaleTimeout(ms: number): number {
    return scaleTimeout(ms, this.s);
  }
}

/** `ms × (score + 1)`. Pure. */
export function scaleTimeout(ms: number, score: number): number {
  return ms * (score + 1);
}

/**
 * How a finished probe moves the score (memberlist state.go probeNode): −1 for a direct ack; for a
 * failed probe, one point per indirect helper that sent no nack (each missing nack suggests our
 * own messages are getting lost), or 1 when there was nobody to ask. Pure.
 */
export function probeAwarenessDelta(outcome: 'direct-ack' | 'indirect-ack' | 'failed', expectedNacks: number, nacks: number): number {
  if (outcome === 'direct-ack') return -1;
  if (outcome === 'indirect-ack') return 0;
  if (expectedNacks > 0) return Math.max(0, expectedNacks - nacks);
  return 1;
}
