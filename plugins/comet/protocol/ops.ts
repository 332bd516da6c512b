/** goim's operations (api/protocol/operation.go); 10 and 11 are internal signals, never on the wire. */
export const OP = {
  handshake: 0,
  handshakeReply: 1,
  heartbeat: 2,
  heartbeatReply: 3,
  sendMsg: 4,
  sendMsgReply: 5,
  disconnectReply: 6,
  auth: 7,
  authReply: 8,
  raw: 9,
  changeRoom: 12,
  changeRoomReply: 13,
  sub: 14,
  subReply: 15,
  unsub: 16,
  unsubReply: 17,
} as const;

/** Ops below this are goim's own and reach a connection whatever its accepts (Channel.NeedPush). */
export const MIN_BUSINESS_OP = 1000;

/** goim's Channel.NeedPush: protocol ops always pass, business ops only when watched. */
export function needPush(op: number, watch: ReadonlySet<number>): boolean {
  return (op >= 0 && op < MIN_BUSINESS_OP) || watch.has(op);
}
