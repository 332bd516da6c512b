/**
 * Tells a live link from a dead one. A frozen controller (SIGSTOP, a hung host, a route that silently
 * drops packets) leaves the TCP connection established and writable for minutes: the kernel acks, nothing
 * answers. So the agent pings every heartbeat interval (uWS answers pings by itself, without JavaScript) and
 * counts any pong or message as a sign of life; two intervals without one mean the link is dead. Checking
 * every half interval reports it within 2.5 intervals of the last answer (DESIGN §4: within 3).
 */
export class LinkLiveness {
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private lastHeard = 0;
  private lastPing = 0;
  private lastTick = 0;

  constructor(
    private readonly ping: () => void,
    private readonly onDead: (silentMs: number) => void,
  ) {}

  /** (Re)starts watching with this heartbeat interval; the link counts as just heard from. */
  start(intervalMs: number): void {
    this.stop();
    this.intervalMs = intervalMs;
    const now = Date.now();
    this.lastHeard = now;
    this.lastTick = now;
    this.lastPing = 0;
    const tickMs = Math.max(25, Math.floor(intervalMs / 2));
    this.timer = setInterval(() => this.tick(tickMs), tickMs);
    this.tick(tickMs);
  }

  heard(): void {
    this.lastHeard = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(tickMs: number): void {
    const now = Date.now();
    const stalled = now - this.lastTick > tickMs * 2;
    this.lastTick = now;
    // After our own event loop was blocked, timers run before the socket's pending pongs are read:
    // skip one check so a busy agent does not blame the controller.
    if (stalled) return;
    const silent = now - this.lastHeard;
    if (silent > 2 * this.intervalMs) {
      this.stop();
      this.onDead(silent);
      return;
    }
    if (now - this.lastPing >= this.intervalMs) {
      this.lastPing = now;
      this.ping();
    }
  }
}
