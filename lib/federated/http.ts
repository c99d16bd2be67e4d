/** Small node:http helpers shared by the federated server: bounded body reads, replies, bearer tokens, connection caps. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { EdgeOptError } from '../errors';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The bearer token of a request, or null. */
export function bearer(req: IncomingMessage): string | null {
  const m = /^Bearer\s+(\S+)$/.exec(req.headers.authorization ?? '');
  return m ? m[1] : null;
}

/** Reads the whole body; rejects with E_VALUE past `limit` bytes and E_STATE if the peer goes away. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new EdgeOptError('E_VALUE', `body exceeds ${limit} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('aborted', () => reject(new EdgeOptError('E_STATE', 'the client went away mid-upload')));
    req.on('error', (err) => reject(err));
  });
}

/** A JSON reply; `close` ends the connection after it (for requests whose body is left unread). */
export function replyJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/**
 * Destroys a new connection when its address already has `max` open: one host
 * cannot hold every socket the server has. Returns the live count per address.
 */
export function limitConnectionsPerAddress(server: Server, max: number, onRefused: (address: string) => void): Map<string, number> {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?';
    const n = open.get(address) ?? 0;
    if (n >= max) {
      socket.destroy();
      onRefused(address);
      return;
    }
    open.set(address, n + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left) open.set(address, left);
      else open.delete(address);
    });
  });
  return open;
}

export function replyBytes(res: ServerResponse, bytes: Uint8Array): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
  res.end(bytes);
}
