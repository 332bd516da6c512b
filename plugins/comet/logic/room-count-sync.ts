import { chunkByBytes, wireBytes } from '../wire-size.ts';

export type RoomCounts = Array<[room: string, count: number]>;

/**
 * The cluster-wide counts each node's heartbeat replies need, sent as changes: per node, what it was
 * told last, so a quiet cluster costs nothing and a node with many rooms gets only those that moved.
 * Rooms a node no longer holds are not retracted (its gateway dropped the room already); after a
 * snapshot of the node, or when it leaves, it is told everything again.
 */
export class RoomCountSync {
  private readonly told = new Map<string, Map<string, number>>();

  /** The messages (each under the link's bound) that bring `nodeId` up to `current`; none when nothing changed. */
  changes(nodeId: string, current: ReadonlyMap<string, number>): RoomCounts[] {
    let told = this.told.get(nodeId);
    if (!told) this.told.set(nodeId, (told = new Map()));
    const diff: RoomCounts = [];
    for (const [room, n] of current) if (told.get(room) !== n) diff.push([room, n]);
    if (diff.length === 0) return [];
    // Forget rooms the node left, so the map stays the size of what it holds.
    for (const room of told.keys()) if (!current.has(room)) told.delete(room);
    for (const [room, n] of diff) told.set(room, n);
    return chunkByBytes(diff, undefined, ([room]) => wireBytes(room) + 12);
  }

  /** The node's gateway may have restarted or the message may be lost: tell it everything next time. */
  forget(nodeId: string): void {
    this.told.delete(nodeId);
  }
}
