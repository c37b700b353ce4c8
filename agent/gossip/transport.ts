/**
 * The gossip transport: how frames get between agents, and nothing else (memberlist transport.go).
 * The protocol (membership.ts) only sees this interface, so a whole cluster can run over the
 * in-memory network (memory-transport.ts) in one test, and over WebSocket (ws-transport.ts) for real.
 */
/** The socket a frame came in on. */
export interface Via {
  /** Send a frame back on that socket (dropped when it closed or is too far behind); never throws. */
  reply(frame: Uint8Array): void;
  /**
   * The socket is one this side opened to `from`: whatever answers on it is reachable at that
   * address (an inbound socket's `from` is only what the peer claims).
   */
  dialed: boolean;
}

export interface Transport {
  /** This agent's address, as peers send to it: its ws URL, e.g. ws://127.0.0.1:7946. */
  readonly addr: string;
  /** Send one frame, best effort: it may be lost, delayed or dropped; never throws. */
  send(to: string, frame: Uint8Array): void;
  /**
   * Frames from peers. `from` is the sender's address when known (the frame itself says who sent
   * it); `via`, the socket it came on, to answer there instead of dialing a claimed address.
   */
  onFrame(h: (from: string, frame: Uint8Array, via?: Via) => void): void;
  /**
   * A connection to `addr` closed or could not be opened. A hint (the process there may have
   * died), not proof: the protocol probes the member at once rather than waiting for its turn.
   */
  onPeerClosed(h: (addr: string) => void): void;
  close(): Promise<void>;
}
