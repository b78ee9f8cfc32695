import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BlobSASPermissions, generateBlobSASQueryParameters } from '@azure/storage-blob';
import type { Azurite } from './azurite.js';

/**
 * A stand-in for GitHub's results service: the Twirp JSON endpoints that @actions/artifact (v2 protocol)
 * and @actions/cache (cache service v2) call, with the blobs themselves in Azurite behind real SAS URLs.
 * Field names follow the libraries' generated clients (lib/generated/results/api/v1/*.js, proto names).
 */

const ARTIFACT_SERVICE = 'github.actions.results.api.v1.ArtifactService';
const CACHE_SERVICE = 'github.actions.results.api.v1.CacheService';
const ARTIFACT_CONTAINER = 'actions-results';
const CACHE_CONTAINER = 'actions-cache';

export interface StoredArtifact {
  id: number;
  runBackendId: string;
  jobBackendId: string;
  name: string;
  blobName: string;
  size?: number;
  digest?: string;
  finalized: boolean;
  createdAt: Date;
  expiresAt?: string;
  mimeType?: string;
}

export interface StoredCacheEntry {
  id: number;
  key: string;
  version: string;
  blobName: string;
  size?: number;
  finalized: boolean;
  createdAt: number;
}

export interface ServiceCall {
  service: 'artifact' | 'cache';
  method: string;
  request: Record<string, unknown>;
  status: number;
}

class TwirpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export class ResultsService {
  readonly runBackendId = randomUUID();
  readonly artifacts: StoredArtifact[] = [];
  readonly caches: StoredCacheEntry[] = [];
  readonly calls: ServiceCall[] = [];
  private readonly secret = randomBytes(32);
  private nextId = 1000;
  private server?: Server;
  url = '';

  constructor(private readonly azurite: Azurite) {}

  async start(): Promise<this> {
    for (const container of [ARTIFACT_CONTAINER, CACHE_CONTAINER]) {
      await this.azurite.service.getContainerClient(container).createIfNotExists();
    }
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** An ACTIONS_RUNTIME_TOKEN for one job of this run: a signed JWT whose scp claim names the run and the job. */
  tokenFor(jobBackendId: string): string {
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = base64url(
      JSON.stringify({
        scp: `Actions.ExampleScope Actions.Results:${this.runBackendId}:${jobBackendId}`,
        exp: Math.floor(Date.now() / 1000) + 3600,
      }),
    );
    const signature = createHmac('sha256', this.secret).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${signature}`;
  }

  /** The job a request's bearer token was issued to; throws unauthenticated otherwise. */
  private jobOf(req: IncomingMessage): string {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const [header, payload, signature] = token.split('.');
    const expected = createHmac('sha256', this.secret).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature ?? '', 'base64url');
    if (!payload || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TwirpError(401, 'unauthenticated', 'invalid runtime token');
    }
    const scp = (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { scp: string }).scp;
    const scope = scp.split(' ').find((s) => s.startsWith('Actions.Results:'));
    const [, run, job] = scope?.split(':') ?? [];
    if (run !== this.runBackendId || !job) throw new TwirpError(403, 'permission_denied', 'token is for another run');
    return job;
  }

  private sasUrl(container: string, blobName: string, permissions: string): string {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: container,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 60_000),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      this.azurite.credential,
    ).toString();
    return `${this.azurite.blobEndpoint}/${container}/${blobName}?${sas}`;
  }

  /** The bytes of an artifact's blob (the zip the library uploaded). */
  async artifactBlob(name: string): Promise<Buffer> {
    const artifact = this.artifacts.find((a) => a.name === name && a.finalized);
    if (!artifact) throw new Error(`no finalized artifact ${name}; have ${this.artifacts.map((a) => a.name).join(', ')}`);
    return this.azurite.service.getContainerClient(ARTIFACT_CONTAINER).getBlobClient(artifact.blobName).downloadToBuffer();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/twirp\/([\w.]+)\/(\w+)$/.exec(req.url ?? '');
    let request: Record<string, unknown> = {};
    let status = 200;
    let body: unknown;
    try {
      if (req.method !== 'POST' || !match) throw new TwirpError(404, 'bad_route', `no route ${req.method} ${req.url}`);
      request = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      const job = this.jobOf(req);
      if (match[1] === ARTIFACT_SERVICE) body = this.artifactMethod(match[2], request, job);
      else if (match[1] === CACHE_SERVICE) body = this.cacheMethod(match[2], request);
      else throw new TwirpError(404, 'bad_route', `no service ${match[1]}`);
    } catch (error) {
      const twirp = error instanceof TwirpError ? error : new TwirpError(500, 'internal', String(error));
      status = twirp.status;
      body = { code: twirp.code, msg: twirp.message };
    }
    this.calls.push({
      service: match?.[1] === CACHE_SERVICE ? 'cache' : 'artifact',
      method: match?.[2] ?? String(req.url),
      request,
      status,
    });
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  private artifactMethod(method: string, request: Record<string, unknown>, job: string): unknown {
    const ownIds = (): void => {
      if (request.workflow_run_backend_id !== this.runBackendId || request.workflow_job_run_backend_id !== job) {
        throw new TwirpError(403, 'permission_denied', 'backend ids do not match the token');
      }
    };
    const name = String(request.name ?? '');
    switch (method) {
      case 'CreateArtifact': {
        ownIds();
        if (request.version !== 7)
          throw new TwirpError(400, 'invalid_argument', `unsupported version ${String(request.version)}`);
        if (this.artifacts.some((a) => a.name === name)) {
          throw new TwirpError(409, 'already_exists', 'an artifact with this name already exists on the workflow run');
        }
        const artifact: StoredArtifact = {
          id: this.nextId++,
          runBackendId: this.runBackendId,
          jobBackendId: job,
          name,
          blobName: `${this.runBackendId}/${job}/${name}.zip`,
          finalized: false,
          createdAt: new Date(),
          expiresAt: typeof request.expires_at === 'string' ? request.expires_at : undefined,
          mimeType: typeof request.mime_type === 'string' ? request.mime_type : undefined,
        };
        this.artifacts.push(artifact);
        return { ok: true, signed_upload_url: this.sasUrl(ARTIFACT_CONTAINER, artifact.blobName, 'cw') };
      }
      case 'FinalizeArtifact': {
        ownIds();
        const artifact = this.artifacts.find((a) => a.name === name && a.jobBackendId === job && !a.finalized);
        if (!artifact) throw new TwirpError(404, 'not_found', `no artifact ${name} being uploaded`);
        artifact.finalized = true;
        artifact.size = Number(request.size);
        artifact.digest = typeof request.hash === 'string' ? request.hash : undefined;
        return { ok: true, artifact_id: String(artifact.id) };
      }
      case 'ListArtifacts': {
        if (request.workflow_run_backend_id !== this.runBackendId) return { artifacts: [] };
        const listed = this.artifacts.filter(
          (a) =>
            a.finalized &&
            (request.name_filter === undefined || a.name === request.name_filter) &&
            (request.id_filter === undefined || String(a.id) === String(request.id_filter)),
        );
        return {
          artifacts: listed.map((a) => ({
            workflow_run_backend_id: a.runBackendId,
            workflow_job_run_backend_id: a.jobBackendId,
            database_id: String(a.id),
            name: a.name,
            size: String(a.size ?? 0),
            created_at: a.createdAt.toISOString(),
            ...(a.digest ? { digest: a.digest } : {}),
          })),
        };
      }
      case 'GetSignedArtifactURL': {
        const artifact = this.artifacts.find(
          (a) => a.finalized && a.name === name && a.jobBackendId === request.workflow_job_run_backend_id,
        );
        if (!artifact) throw new TwirpError(404, 'not_found', `no artifact ${name}`);
        return { signed_url: this.sasUrl(ARTIFACT_CONTAINER, artifact.blobName, 'r') };
      }
      case 'DeleteArtifact': {
        ownIds();
        const index = this.artifacts.findIndex((a) => a.name === name && a.finalized);
        if (index < 0) throw new TwirpError(404, 'not_found', `no artifact ${name}`);
        const [deleted] = this.artifacts.splice(index, 1);
        return { ok: true, artifact_id: String(deleted.id) };
      }
      default:
        throw new TwirpError(404, 'bad_route', `no method ${method}`);
    }
  }

  private cacheMethod(method: string, request: Record<string, unknown>): unknown {
    const key = String(request.key ?? '');
    const version = String(request.version ?? '');
    switch (method) {
      case 'CreateCacheEntry': {
        if (this.caches.some((c) => c.key === key && c.version === version)) {
          return { ok: false, message: `cache entry ${key} already exists` };
        }
        const entry: StoredCacheEntry = {
          id: this.nextId++,
          key,
          version,
          blobName: `${version}/${encodeURIComponent(key)}`,
          finalized: false,
          createdAt: Date.now(),
        };
        this.caches.push(entry);
        return { ok: true, signed_upload_url: this.sasUrl(CACHE_CONTAINER, entry.blobName, 'cw') };
      }
      case 'FinalizeCacheEntryUpload': {
        const entry = this.caches.find((c) => c.key === key && c.version === version && !c.finalized);
        if (!entry) return { ok: false, message: `no cache entry ${key} being uploaded` };
        entry.finalized = true;
        entry.size = Number(request.size_bytes);
        return { ok: true, entry_id: String(entry.id) };
      }
      case 'GetCacheEntryDownloadURL': {
        // GitHub's order: the exact key, then each restore key as a prefix, newest entry first.
        const usable = this.caches.filter((c) => c.finalized && c.version === version).sort((a, b) => b.createdAt - a.createdAt);
        const restoreKeys = Array.isArray(request.restore_keys) ? request.restore_keys.map(String) : [];
        const entry =
          usable.find((c) => c.key === key) ??
          restoreKeys.map((prefix) => usable.find((c) => c.key.startsWith(prefix))).find((c) => c !== undefined);
        if (!entry) return { ok: false };
        return { ok: true, signed_download_url: this.sasUrl(CACHE_CONTAINER, entry.blobName, 'r'), matched_key: entry.key };
      }
      default:
        throw new TwirpError(404, 'bad_route', `no method ${method}`);
    }
  }
}
