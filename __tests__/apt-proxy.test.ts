import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AptProxy, cachePath, isArchivePath, isInternalAddress } from '../src/host/apt-proxy.js';
import { GUESTFWD_BRIDGE } from '../src/vm/guest-network.js';

/* The proxy between the installers (and guests, through their unix socket) and the mirror: a real HTTP server plays the mirror. */
const root = mkdtempSync(join(tmpdir(), 'dvc-apt-proxy-test-'));
let mirror: Server;
let mirrorPort = 0;
let served = 0;
// The test's mirror listens on 127.0.0.1 (a random port): that is the configured mirror, the one internal host
// and the one port besides 80 and 443 the proxy relays to.
let proxy: AptProxy;
let port = 0;

beforeAll(async () => {
  mirror = createServer((req, res) => {
    served += 1;
    const body = `mirror says ${req.url}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
  mirrorPort = (mirror.address() as AddressInfo).port;
  proxy = AptProxy.forMirror(join(root, 'cache'), `http://127.0.0.1:${mirrorPort}/debian`);
  port = await proxy.start();
});
afterAll(async () => {
  await proxy.stop();
  await new Promise((r) => mirror.close(r));
  rmSync(root, { recursive: true, force: true });
});

/** A GET through the proxy with a raw request line, as apt sends it (absolute URL). */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: `http://127.0.0.1:${mirrorPort}${path}` }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the apt proxy', () => {
  it('caches a package file once and serves it from the cache the second time', async () => {
    const before = served;
    expect(await get('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')).toEqual({
      status: 200,
      body: 'mirror says /debian/pool/main/h/hello/hello_2.10-3_amd64.deb',
    });
    await new Promise((r) => setTimeout(r, 100)); // the cache file is renamed into place when the write ends
    expect((await get('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')).body).toMatch(/^mirror says /);
    expect(served - before).toBe(1);
    expect(proxy.stats.hits).toBeGreaterThanOrEqual(1);
  });

  it('survives a malformed escape in the path (it killed the run before) and keeps serving', async () => {
    const r = await get('/debian/pool/main/x/%zz.deb');
    expect(r.status).toBe(200); // not cacheable, passed on as it came
    expect((await get('/debian/dists/trixie/InRelease')).status).toBe(200);
  });

  it('never maps a URL outside its cache directory', () => {
    // The URL parser resolves dot segments; an encoded slash survives it and is decoded here.
    expect(cachePath('/c', new URL('http://m/%2e%2e%2f%2e%2e%2fetc%2fpasswd.deb'))).toBeUndefined();
    expect(cachePath('/c', new URL('http://m/debian/pool/%2e%2e/%2e%2e/x.deb'))).toBe('/c/m/x.deb');
    expect(cachePath('/c', new URL('http://m/debian/pool/a%00b.deb'))).toBeUndefined();
    expect(cachePath('/c', new URL('http://m/debian/pool/%zz.deb'))).toBeUndefined();
    expect(cachePath('/c', new URL('http://m:80/debian/pool/a.deb'))).toBe('/c/m/debian/pool/a.deb');
  });
});

/** One request to the proxy on `proxyPort` (a CONNECT answers with its status only). */
function through(proxyPort: number, path: string, method: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the apt proxy is no open relay for the guest', () => {
  it('knows the addresses of the runner and its network: loopback, link-local (the metadata service), private', () => {
    for (const a of [
      '127.0.0.1',
      '127.5.6.7',
      '0.0.0.0',
      '169.254.169.254',
      '10.0.2.2',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc12::3',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:10.1.2.3',
    ])
      expect(isInternalAddress(a), a).toBe(true);
    for (const a of ['203.0.113.80', '172.15.0.1', '172.32.0.1', '100.63.0.1', '192.169.0.1', '2001:db8::1', '::ffff:8.8.8.8'])
      expect(isInternalAddress(a), a).toBe(false);
  });

  it('refuses internal destinations other than the mirror: by address, by name, and through CONNECT', async () => {
    const strict = AptProxy.forMirror(join(root, 'cache-strict'), `http://mirror.invalid:${mirrorPort}/debian`);
    const p = await strict.start();
    try {
      const via = async (path: string, method = 'GET'): Promise<number> => (await through(p, path, method)).status;
      const before = served;
      expect(await via(`http://127.0.0.1:${mirrorPort}/debian/dists/x/Release`)).toBe(403);
      expect(await via(`http://[::1]:${mirrorPort}/`)).toBe(403);
      expect(await via(`http://169.254.169.254/latest/meta-data/`)).toBe(403);
      expect(await via(`http://10.1.2.3/debian/dists/x/Release`)).toBe(403);
      expect(await via(`http://192.168.0.1/`)).toBe(403);
      // A name that resolves to loopback: refused at lookup, answered 502 with the reason in the stats.
      expect(await via(`http://localhost:${mirrorPort}/debian/dists/x/Release`)).toBe(502);
      expect(strict.stats.errors.at(-1)).toMatch(/EDVCINTERNAL/);
      expect(await via(`127.0.0.1:${mirrorPort}`, 'CONNECT')).toBe(403);
      expect(await via(`10.0.0.1:443`, 'CONNECT')).toBe(403);
      expect(served).toBe(before);
    } finally {
      await strict.stop();
    }
  });

  it('relays only what apt fetches from an archive: downloads of dists/ and pool/ paths', async () => {
    for (const p of [
      '/debian/dists/trixie/InRelease',
      '/debian-security/pool/updates/main/o/openssl/x.deb',
      '/archive/debian/20261101T000000Z/dists/sid/Release',
      '/dists/x/by-hash/SHA256/ab',
    ])
      expect(isArchivePath(p), p).toBe(true);
    for (const p of ['/', '/latest/meta-data/', '/debian/', '/debian/README', '/distsx/a', '/pool', '/debian/pool/', '/x/dists/'])
      expect(isArchivePath(p), p).toBe(false);
    const via = (path: string, method = 'GET'): Promise<{ status: number; body: string }> =>
      through(port, `http://127.0.0.1:${mirrorPort}${path}`, method);
    const before = served;
    const page = await via('/index.html');
    expect(page.status).toBe(403);
    expect(page.body).toMatch(/\/index\.html is no Debian archive path/);
    expect((await via('/debian/dists/trixie/InRelease', 'POST')).status).toBe(403);
    expect((await via('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb', 'DELETE')).body).toMatch(/DELETE is not a download/);
    expect(served).toBe(before);
    expect((await via('/debian/dists/trixie/InRelease', 'HEAD')).status).toBe(200);
    expect(served).toBe(before + 1);
  });

  it('tunnels (CONNECT) to the configured mirror only', async () => {
    // The test mirror is the configured one: its tunnel opens. Any other host, public or not, gets none.
    expect((await through(port, `127.0.0.1:${mirrorPort}`, 'CONNECT')).status).toBe(200);
    const refused = await through(port, 'deb.example.invalid:443', 'CONNECT');
    expect(refused.status).toBe(403);
    expect(proxy.stats.errors.at(-1)).toMatch(/deb\.example\.invalid:443: refused, only the configured mirror is tunnelled/);
    // Without a configured mirror (the installers' defaults are http://): no tunnel at all.
    const none = AptProxy.forMirror(join(root, 'cache-none'), '');
    const p = await none.start();
    try {
      expect((await through(p, 'deb.example.invalid:443', 'CONNECT')).status).toBe(403);
      expect(none.stats.errors.at(-1)).toMatch(/only the configured mirror is tunnelled \(none is\)/);
    } finally {
      await none.stop();
    }
  });

  it('relays only to the ports of HTTP, HTTPS and the mirror', async () => {
    // No mirror configured (the installers' defaults): 80 and 443 only, whatever the host.
    const open = AptProxy.forMirror(join(root, 'cache-ports'), '');
    const p = await open.start();
    try {
      const via = (path: string, method = 'GET'): Promise<{ status: number; body: string }> => through(p, path, method);
      const before = served;
      const smtp = await via('http://mail.example.invalid:25/');
      expect(smtp.status).toBe(403);
      expect(smtp.body).toMatch(/port 25 is not an archive's \(80, 443\)/);
      expect((await via('ssh.example.invalid:22', 'CONNECT')).status).toBe(403);
      // The test mirror's own port is refused here: this proxy was not told it is the mirror.
      expect((await via(`http://127.0.0.1:${mirrorPort}/debian/dists/x/Release`)).status).toBe(403);
      expect(open.stats.errors.at(-1)).toMatch(/refused, port \d+ is not an archive's/);
      expect(served).toBe(before);
    } finally {
      await open.stop();
    }
  });
});

/** The bridge QEMU runs per guest connection, as QEMU would (the connection on stdin and stdout). */
function bridge(socket: string): ChildProcessWithoutNullStreams {
  const file = join(root, 'guestfwd-bridge.mjs');
  writeFileSync(file, GUESTFWD_BRIDGE);
  return spawn(process.execPath, [file, socket]);
}

function answer(child: ChildProcessWithoutNullStreams): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) => resolve({ out, code }));
  });
}

describe("the apt proxy on a VM's unix socket, through the guestfwd bridge", () => {
  it('serves a guest connection joined to its socket, ends when the proxy does, and removes the socket on stop', async () => {
    const own = AptProxy.forMirror(join(root, 'cache'), `http://127.0.0.1:${mirrorPort}/debian`);
    await own.start();
    const socket = join(root, 'apt-proxy.sock');
    await own.serveSocket(socket);
    const child = bridge(socket);
    const done = answer(child);
    child.stdin.write(
      `GET http://127.0.0.1:${mirrorPort}/debian/dists/trixie/Release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const { out, code } = await done;
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(out).toMatch(/mirror says \/debian\/dists\/trixie\/Release$/);
    expect(code).toBe(0);
    // The same rules as on the loopback port: no relay to other paths.
    const refused = bridge(socket);
    const denied = answer(refused);
    refused.stdin.end(`GET http://127.0.0.1:${mirrorPort}/index.html HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect((await denied).out).toMatch(/^HTTP\/1\.1 403 /);
    await own.stop();
    expect(existsSync(socket)).toBe(false);
  });

  it('closes the guest connection at once when no proxy serves the socket (between guest jobs)', async () => {
    const started = performance.now();
    const { out, code } = await answer(bridge(join(root, 'nobody-listens.sock')));
    expect(out).toBe('');
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
