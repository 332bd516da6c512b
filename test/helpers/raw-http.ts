import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes request bytes as given (fetch would refuse or repair a malformed request line) and parses
 * the one response; rejects when the server closes without a complete one or stays silent.
 */
export function rawRequest(port: number, request: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${timeoutMs} ms to ${JSON.stringify(request.slice(0, 60))}; got ${JSON.stringify(data.slice(0, 200))}`));
    }, timeoutMs);
    const done = (r: RawResponse) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const r = parse(data);
      if (r) done(r);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const r = parse(data);
      if (r) return done(r);
      clearTimeout(timer);
      reject(new Error(`connection closed without a complete response to ${JSON.stringify(request.slice(0, 60))}; got ${JSON.stringify(data.slice(0, 200))}`));
    });
  });
}

/** A complete response with a Content-Length body, or undefined while bytes are missing. */
function parse(data: string): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = data.slice(end + 4);
  const length = Number(headers['content-length'] ?? 0);
  if (Buffer.byteLength(body) < length) return undefined;
  return { status: Number(m[1]), headers, body };
}
