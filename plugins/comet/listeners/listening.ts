/** What a listener function returns; the SDK's ctx.listen will own these later. */
export interface Listening {
  port: number;
  /** Stops accepting and closes this listener's connections. */
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** WSS only: PEM files. */
  tls?: { cert: string; key: string };
}
