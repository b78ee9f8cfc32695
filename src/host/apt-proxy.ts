import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, createReadStream } from 'node:fs';
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import {
  connect,
  createServer as createNetServer,
  isIP,
  type AddressInfo,
  type LookupFunction,
  type Server as NetServer,
  type Socket,
} from 'node:net';
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

/**
 * Addresses inside the runner or its network: loopback, unspecified, link-local (the cloud's metadata service,
 * 169.254.169.254), private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), multicast and broadcast.
 * The proxy serves guests and the installers run in them, which are untrusted: it does not connect there,
 * except to the host it is told is the mirror (a mirror or apt cache on the local network is one).
 */
export function isInternalAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (isIP(a) === 4) {
    const [x, y] = a.split('.').map(Number);
    return (
      x === 0 ||
      x === 10 ||
      x === 127 ||
      x >= 224 ||
      (x === 169 && y === 254) ||
      (x === 172 && y >= 16 && y <= 31) ||
      (x === 192 && y === 168) ||
      (x === 100 && y >= 64 && y <= 127)
    );
  }
  return a === '::1' || a === '::' || /^(fe[89ab][0-9a-f]|f[cd][0-9a-f]{2}|ff[0-9a-f]{2}):/.test(a);
}

/**
 * What apt, debootstrap and mmdebstrap fetch from a Debian archive: a path with a `dists/` or `pool/` segment
 * (`/debian/dists/trixie/InRelease`, `/debian-security/pool/…`, a snapshot's `/archive/debian/<date>/dists/…`).
 * The proxy relays nothing else, whatever the host: it is an archive proxy, not a web relay for the guest.
 */
export function isArchivePath(pathname: string): boolean {
  return /(^|\/)(dists|pool)\/[^/]/.test(pathname);
}

/** Ports the proxy relays to: HTTP's and HTTPS's, and the mirror's own when its URL names one. */
export const RELAYED_PORTS: readonly number[] = [80, 443];

export interface AptProxyOptions {
  /** The configured mirror: its host may be an internal one, its port is relayed. */
  mirror?: { host: string; port: number };
}

function bareHost(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '');
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
 * A caching forward HTTP proxy for apt, on the host's loopback. Guests reach it through a unix socket forwarded
 * into their walled network (vm/guest-network.ts), or at 10.0.2.2 from the UML builder (libslirp's address for the
 * host), so the mirror's name is resolved here, on the host, and never needs
 * to resolve inside a guest. Package files are cached under `root` for the next run (and the GitHub cache);
 * index files pass through. HTTPS mirrors are tunnelled (CONNECT) without caching.
 */
export class AptProxy {
  readonly stats: AptProxyStats = { requests: 0, hits: 0, misses: 0, bytesFromCache: 0, bytesFromUpstream: 0, errors: [] };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The unix sockets it serves VMs on (serveSocket). */
  private readonly socketServers: NetServer[] = [];

  private readonly mirrorHost: string | undefined;
  private readonly ports: Set<number>;

  constructor(
    private readonly root: string,
    opts: AptProxyOptions = {},
  ) {
    this.mirrorHost = opts.mirror ? bareHost(opts.mirror.host) : undefined;
    this.ports = new Set([...RELAYED_PORTS, ...(opts.mirror ? [opts.mirror.port] : [])]);
  }

  /** The run's proxy: the configured mirror's host may be an internal one, and its port is relayed. */
  static forMirror(root: string, mirror: string): AptProxy {
    try {
      const url = new URL(mirror);
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      return new AptProxy(root, { mirror: { host: url.hostname, port } });
    } catch {
      return new AptProxy(root); // no mirror configured: the installers' defaults, public hosts
    }
  }

  /** Why a connection to this host and port is refused, or undefined. IP literals are checked here, names at lookup. */
  private refusal(hostname: string, port: number): string | undefined {
    if (!this.ports.has(port)) return `port ${port} is not an archive's (${[...this.ports].join(', ')})`;
    const h = bareHost(hostname);
    if (h === this.mirrorHost) return undefined;
    return isIP(h) && isInternalAddress(h) ? `${h} is an internal address` : undefined;
  }

  /** dns.lookup, refusing names that resolve to an internal address (unless they are the mirror's). */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, options, (err, address: string | LookupAddress[], family?: number) => {
      if (err) return callback(err, address as string, family);
      const all = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const internal = all.find(isInternalAddress);
      if (internal && bareHost(hostname) !== this.mirrorHost) {
        const e: NodeJS.ErrnoException = new Error(`${hostname} resolves to an internal address (${internal}): not proxied`);
        e.code = 'EDVCINTERNAL';
        return callback(e, address as string, family);
      }
      callback(null, address as string, family);
    });
  };

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

  /**
   * Serves the proxy on a unix socket as well, at `path`: where a VM's guestfwd bridge connects (vm/guest-network.ts).
   * The socket is removed again by stop().
   */
  async serveSocket(path: string): Promise<void> {
    const server = this.server;
    if (!server) throw new Error('the apt proxy is not started');
    rmSync(path, { force: true });
    const unix = createNetServer((s) => server.emit('connection', s));
    this.socketServers.push(unix);
    await new Promise<void>((resolve, reject) => {
      unix.once('error', reject);
      unix.listen(path, () => resolve());
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const unix of this.socketServers.splice(0)) await new Promise<void>((resolve) => unix.close(() => resolve()));
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
    const refused =
      this.refusal(url.hostname, Number(url.port) || 80) ??
      (req.method !== 'GET' && req.method !== 'HEAD' ? `${String(req.method).slice(0, 20)} is not a download` : undefined) ??
      (isArchivePath(url.pathname) ? undefined : `${url.pathname.slice(0, 100)} is no Debian archive path (dists/…, pool/…)`);
    if (refused) {
      this.noteError(`${url.origin}: refused, ${refused}`);
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`debian-vm-ci apt proxy: ${refused}: not proxied\n`);
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
    const upstream = httpRequest(url, { method: req.method, headers, timeout: 60_000, lookup: this.lookup }, (up) => {
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
    const target = req.url ?? '';
    const cut = target.lastIndexOf(':');
    const host = bareHost(cut > 0 ? target.slice(0, cut) : target);
    const port = cut > 0 ? target.slice(cut + 1) : '';
    // A tunnel hides what goes through it: only to the configured mirror (an https:// one), nowhere else.
    const refused =
      this.refusal(host, Number(port) || 443) ??
      (host === this.mirrorHost ? undefined : `only the configured mirror is tunnelled (${this.mirrorHost ?? 'none is'})`);
    if (refused) {
      this.noteError(`${target.slice(0, 200)}: refused, ${refused}`);
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect({ port: Number(port) || 443, host, lookup: this.lookup }, () => {
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
