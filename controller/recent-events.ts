/** A ring of the latest bus events, for the REST event log and the dashboard. */
export class RecentEvents {
  private readonly ring: Array<{ ts: string; event: string; data: unknown }> = [];
  constructor(private readonly size = 500) {}

  push(event: string, data: unknown): void {
    this.ring.push({ ts: new Date().toISOString(), event, data });
    if (this.ring.length > this.size) this.ring.shift();
  }

  list(limit: number): Array<{ ts: string; event: string; data: unknown }> {
    return this.ring.slice(-limit).reverse();
  }
}
