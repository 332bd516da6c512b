/** How long a key's connect time is remembered: claims arrive within a refresh round or two. */
const REMEMBER_MS = 30_000;

/**
 * goim's same-key rule across controllers (the older connection goes): keys that newly connected on
 * this controller's nodes, with when, to tell the other controllers; and when each was seen here, so
 * a peer's claim kicks this controller's connection only if that one is older. A key seen here longer
 * ago than REMEMBER_MS is older than any claim arriving now.
 */
export class KeyClaims {
  private pending: Array<[key: string, at: number, nodeId: string]> = [];
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Keys that connected on one of this controller's nodes just now. */
  note(nodeId: string, keys: readonly string[]): void {
    const at = this.now();
    for (const key of keys) {
      this.pending.push([key, at, nodeId]);
      this.seen.set(key, at);
    }
  }

  /** The claims to send (each once), forgetting connect times past REMEMBER_MS. */
  take(): Array<[key: string, at: number, nodeId: string]> {
    const out = this.pending;
    this.pending = [];
    const before = this.now() - REMEMBER_MS;
    for (const [key, at] of this.seen) if (at < before) this.seen.delete(key);
    return out;
  }

  /** Whether this controller's connection with `key` is older than a peer's that connected at `at` (ties: the peer with the smaller id keeps it). */
  olderThan(key: string, at: number, tieGoesToPeer: boolean): boolean {
    const mine = this.seen.get(key) ?? 0;
    return mine < at || (mine === at && tieGoesToPeer);
  }
}
