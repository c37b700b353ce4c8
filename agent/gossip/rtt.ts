/**
 * Round-trip estimate of the probes this member sends, as TCP's retransmission timer (Jacobson and
 * Karels; RFC 6298): srtt and rttvar from every answered probe, and a timeout of srtt + 4·rttvar.
 *
 * Why (beyond memberlist, whose timeouts are fixed per profile): gossip runs over WebSocket, so a
 * lost packet is not a lost probe but a late one — it arrives after a TCP retransmission timeout
 * (≥ 200 ms on Linux, more on a slow path). On a link with 50 ms of delay each way and 20% loss, a
 * third of the round trips take 300 ms or more: fixed LAN timeouts of 100–150 ms would suspect
 * healthy members all the time. The membership waits at least the configured probe timeout and at
 * most a cap, and scales its suspicion time with it, so a slow network slows the failure detector
 * instead of fooling it. On a fast network the estimate stays below the configured timeout and
 * nothing changes. A silent member adds no samples: the estimate comes from the members that answer.
 */
export class RttEstimator {
  private srtt = NaN;
  private rttvar = 0;
  private count = 0;

  /** One answered probe, `ms` after its first ping. */
  sample(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.count++;
    if (Number.isNaN(this.srtt)) {
      this.srtt = ms;
      this.rttvar = ms / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }

  /** srtt + 4·rttvar within [floorMs, capMs]; floorMs before any sample. */
  timeout(floorMs: number, capMs: number): number {
    if (this.count === 0) return floorMs;
    return Math.floor(Math.min(capMs, Math.max(floorMs, this.srtt + 4 * this.rttvar)));
  }

  /** The smoothed round trip (NaN before any sample). */
  get smoothedMs(): number {
    return this.srtt;
  }
}
