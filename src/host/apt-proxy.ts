import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, createReadStream } from 'node:fs';
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { dirname, join, normalize } from 'node:path';

export interface AptProxyStats {
  requests: number;
  hits: number;
  misses: number;
  bytesFromCache: number;
  bytesFromUpstream: number;
  /** Upstream failures, most recent last (host and error), at most 20. */
  errors: string[];
}

/** Files that never change once published under a name: safe to serve from the cache forever. */
export function isImmutable(path: string): boolean {
  return /\/pool\/.+\.(u?deb|dsc|tar\.[a-z0-9]+|diff\.gz)$/.test(path) || /\/by-hash\/[A-Za-z0-9]+\/[0-9a-f]{32,}$/.test(path);
}

/** Where a URL lives in the cache; undefined for anything that could escape the cache dir. */
export function cachePath(root: string, url: URL): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return undefined; // a malformed escape (%zz): not cached, passed on as it came
  }
  const rel = normalize(`${url.host.replace(/[^A-Za-z0-9.-]/g, '_')}/${path}`);
  if (rel.startsWith('..') || rel.includes('/../') || rel.includes('\0')) return undefined;
  return join(root, rel);
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * A caching forward HTTP proxy for apt, on the host's loopback. Guests reach it at 10.0.2.2 (QEMU's and
 * libslirp's address for the host), so the mirror's name is resolved here, on the host, and never needs
 * to resolve inside a guest. Package files are cached under `root` for the next run (and the GitHub cache);
 * index files pass through. HTTPS mirrors are tunnelled (CONNECT) without caching.
 */
export class AptProxy {
  readonly stats: AptProxyStats = { requests: 0, hits: 0, misses: 0, bytesFromCache: 0, bytesFromUpstream: 0, errors: [] };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly root: string) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(host = '127.0.0.1'): Promise<number> {
    mkdirSync(this.root, { recursive: true });
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => this.tunnel(req, client, head));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    return this.port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private noteError(what: string): void {
    this.stats.errors.push(what);
    if (this.stats.errors.length > 20) this.stats.errors.shift();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // One bad request must never take the run down with it: the guest and the installers are untrusted.
    try {
      this.relay(req, res);
    } catch (e) {
      this.noteError(`${req.method} ${String(req.url).slice(0, 200)}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' }).end('debian-vm-ci apt proxy: bad request\n');
      else res.destroy();
    }
  }

  private relay(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests += 1;
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end('debian-vm-ci apt proxy: send absolute http:// URLs (use it as an HTTP proxy)\n');
      return;
    }
    const file = req.method === 'GET' && isImmutable(url.pathname) ? cachePath(this.root, url) : undefined;
    if (file && existsSync(file)) {
      const size = statSync(file).size;
      this.stats.hits += 1;
      this.stats.bytesFromCache += size;
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
      return;
    }
    if (file) this.stats.misses += 1;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    headers.host = url.host;
    const upstream = httpRequest(url, { method: req.method, headers, timeout: 60_000 }, (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      const cacheIt = file && up.statusCode === 200;
      const tmp = cacheIt ? `${file}.part-${process.pid}-${Math.random().toString(36).slice(2)}` : undefined;
      const sink = tmp ? (mkdirSync(dirname(tmp), { recursive: true }), createWriteStream(tmp)) : undefined;
      let bytes = 0;
      up.on('data', (d: Buffer) => {
        bytes += d.length;
        sink?.write(d);
      });
      up.pipe(res);
      up.on('end', () => {
        this.stats.bytesFromUpstream += bytes;
        const expected = Number(up.headers['content-length'] ?? bytes);
        sink?.end(() => {
          if (tmp && file && bytes === expected) renameSync(tmp, file);
          else if (tmp) rmSync(tmp, { force: true });
        });
      });
      up.on('error', () => {
        sink?.destroy();
        if (tmp) rmSync(tmp, { force: true });
      });
    });
    upstream.on('timeout', () => upstream.destroy(new Error('no answer within 60s')));
    upstream.on('error', (e) => {
      this.noteError(`${url.origin}: ${(e as NodeJS.ErrnoException).code ?? e.message}`);
      if (!res.headersSent) {
        res
          .writeHead(502, { 'content-type': 'text/plain' })
          .end(`debian-vm-ci apt proxy: ${url.origin} is unreachable: ${e.message}\n`);
      } else {
        res.destroy();
      }
    });
    req.pipe(upstream);
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    this.stats.requests += 1;
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port) || 443, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (e) => {
      this.noteError(`${req.url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`);
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    client.on('error', () => upstream.destroy());
  }
}
