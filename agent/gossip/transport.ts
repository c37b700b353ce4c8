/**
 * The gossip transport: how frames get between agents, and nothing else (memberlist transport.go).
 * The protocol (membership.ts) only sees this interface, so a whole cluster can run over the
 * in-memory network (memory-transport.ts) in one test, and over WebSocket (ws-transport.ts) for real.
 */
export interface Transport {
  /** This agent's address, as peers send to it: its ws URL, e.g. ws://127.0.0.1:7946. */
  readonly addr: string;
  /** Send one frame, best effort: it may be lost, delayed or dropped; never throws. */
  send(to: string, frame: Uint8Array): void;
  /** Frames from peers. `from` is the sender's address when known (the frame itself says who sent it). */
  onFrame(h: (from: string, frame: Uint8Array) => void): void;
  /**
   * A connection to `addr` closed or could not be opened. A hint (the process there may have
   * died), not proof: the protocol probes the member at once rather than waiting for its turn.
   */
  onPeerClosed(h: (addr: string) => void): void;
  close(): Promise<void>;
}
