/**
 * An OCI distribution client on Node's global `fetch`: manifests, blobs, tags, artifacts and
 * referrers, with anonymous, basic and bearer-token auth. Every registry failure becomes an
 * UpstreamError carrying the HTTP status and the registry's own error body; a missing
 * manifest or blob becomes a NotFoundError.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import { InputError, NotFoundError, UpstreamError } from '../errors.js';
import { isLoopbackHost, plainHttpAllowed, plainHttpRefusal } from '../config/schema.js';
import { isDigest } from './ref.js';
import {
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPES,
  isIndexMediaType,
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './types.js';

export interface RegistryClientOptions {
  /** host[:port] of the registry. */
  host: string;
  /** Use http:// instead of https://; only allowed for loopback and private IP hosts (`plainHttpAllowed`). */
  plainHttp: boolean;
  username?: string;
  password?: string;
  /** Injected fetch; defaults to the global one. */
  fetch?: typeof fetch;
}

/** A manifest as stored: its exact bytes (what its digest is computed over) and parsed JSON. */
export interface ManifestResult<T = ImageManifest | ImageIndex> {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: T;
}

/** An image resolved to one platform: its manifest and its config. */
export interface ImageResult {
  manifest: ManifestResult<ImageManifest>;
  config: ImageConfig;
  configBytes: Buffer;
  /** The index the manifest was picked from, when the reference named an index. */
  index?: ManifestResult<ImageIndex>;
}

export interface ArtifactFile {
  mediaType: string;
  bytes: Uint8Array;
  annotations?: Record<string, string>;
}

export interface PushArtifactOptions {
  repo: string;
  artifactType: string;
  files: ArtifactFile[];
  /** The manifest this artifact refers to (OCI 1.1 `subject`). */
  subject?: Pick<Descriptor, 'digest' | 'mediaType' | 'size'>;
  annotations?: Record<string, string>;
  /** Also tag the artifact manifest. */
  tag?: string;
}

export interface PushBlobOptions {
  /** Expected digest; required to skip an existing blob or mount a stream. */
  digest?: string;
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string;
}

/** The digest of the two-byte empty JSON `{}` (OCI 1.1 empty descriptor). */
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one `WWW-Authenticate` value, e.g. `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): Challenge {
  const m = /^\s*(\S+)\s*(.*)$/s.exec(header);
  if (!m) return { scheme: '', params: {} };
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2] ?? '')) !== null) {
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: (m[1] as string).toLowerCase(), params };
}

interface SendOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | Readable;
  /** The token scope(s) this request needs, space-separated. */
  scope: string;
}

/**
 * Client for one registry host.
 *
 * @example
 * const client = new RegistryClient({ host: '127.0.0.1:5000', plainHttp: true });
 * const { manifest, config } = await client.getImage('svcbuild/app', 'build-42');
 */
export class RegistryClient {
  readonly host: string;
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly username?: string;
  private readonly password?: string;
  /** Bearer tokens by scope string. */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Set once the registry asked for basic auth: every request then carries it. */
  private useBasic = false;

  constructor(opts: RegistryClientOptions) {
    if (!opts.host) throw new InputError('registry host is empty', [{ path: 'registry.host', message: 'required' }]);
    if (opts.plainHttp && !plainHttpAllowed(opts.host)) {
      throw new InputError(plainHttpRefusal(opts.host), [{ path: 'registry.plainHttp', message: `not allowed for ${opts.host}; use TLS` }]);
    }
    if ((opts.username === undefined) !== (opts.password === undefined)) {
      throw new InputError('set both registry username and password, or neither', [
        { path: 'registry.password', message: 'set both or neither' },
      ]);
    }
    this.host = opts.host;
    this.baseUrl = `${opts.plainHttp ? 'http' : 'https'}://${opts.host}`;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    if (opts.username !== undefined) this.username = opts.username;
    if (opts.password !== undefined) this.password = opts.password;
  }

  // ---------------------------------------------------------------- manifests

  /**
   * Fetches a manifest or index by tag or digest, accepting OCI and Docker v2 media types.
   * When `ref` is a digest, the bytes are verified against it.
   */
  async getManifest(repo: string, ref: string): Promise<ManifestResult> {
    const res = await this.send('GET', `/v2/${repo}/manifests/${ref}`, {
      scope: pullScope(repo),
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    if (res.status === 404) {
      const body = await readErrorBody(res);
      throw new NotFoundError(`manifest ${this.host}/${repo}:${ref} not found${body.summary ? ` (${body.summary})` : ''}`, body.json);
    }
    if (!res.ok) throw await this.upstreamError(res, `GET manifest ${repo}:${ref}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = sha256Digest(bytes);
    if (isDigest(ref) && digest !== ref) {
      throw new UpstreamError(`registry ${this.host} returned manifest ${repo}@${ref} whose content has digest ${digest}`, res.status);
    }
    let json: ImageManifest | ImageIndex;
    try {
      json = JSON.parse(bytes.toString('utf8')) as ImageManifest | ImageIndex;
    } catch (e) {
      throw new UpstreamError(
        `registry ${this.host} returned a manifest for ${repo}:${ref} that is not JSON: ${(e as Error).message}`,
        res.status,
      );
    }
    const headerType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const mediaType =
      json.mediaType ??
      (MANIFEST_MEDIA_TYPES.includes(headerType) ? headerType : 'manifests' in json ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
    if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
      throw new UpstreamError(`manifest ${this.host}/${repo}:${ref} has unsupported media type ${mediaType}`, res.status);
    }
    return { digest, mediaType, bytes, json };
  }

  /**
   * Resolves `ref` to an image manifest for `platform` (linux/amd64 by default), following
   * an index when `ref` names one, and fetches the image config.
   */
  async getImage(repo: string, ref: string, platform: Platform = DEFAULT_PLATFORM): Promise<ImageResult> {
    const first = await this.getManifest(repo, ref);
    let manifest = first;
    let index: ManifestResult<ImageIndex> | undefined;
    if (isIndexMediaType(first.mediaType)) {
      index = first as ManifestResult<ImageIndex>;
      const pick = index.json.manifests.find(
        (d) =>
          d.platform?.os === platform.os &&
          d.platform.architecture === platform.architecture &&
          (platform.variant === undefined || d.platform.variant === platform.variant),
      );
      if (!pick) {
        const have = index.json.manifests.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : '?')).join(', ');
        throw new NotFoundError(
          `image ${this.host}/${repo}:${ref} has no ${platform.os}/${platform.architecture} manifest (has: ${have || 'none'})`,
        );
      }
      manifest = await this.getManifest(repo, pick.digest);
      if (isIndexMediaType(manifest.mediaType)) {
        throw new UpstreamError(`image ${this.host}/${repo}:${ref}: nested indexes are not supported`);
      }
    }
    const m = manifest as ManifestResult<ImageManifest>;
    const configBytes = await this.readBlob(repo, m.json.config.digest);
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch (e) {
      throw new UpstreamError(`config ${m.json.config.digest} of ${repo}:${ref} is not JSON: ${(e as Error).message}`);
    }
    const out: ImageResult = { manifest: m, config, configBytes };
    if (index) out.index = index;
    return out;
  }

  /** Uploads a manifest under `ref` (a tag or its digest); returns its digest. */
  async putManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    return (await this.putManifestWithInfo(repo, ref, bytes, mediaType)).digest;
  }

  private async putManifestWithInfo(
    repo: string,
    ref: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: string; subjectProcessed: boolean }> {
    const digest = sha256Digest(bytes);
    if (isDigest(ref) && ref !== digest) throw new InputError(`manifest bytes have digest ${digest}, not ${ref}`);
    const res = await this.send('PUT', `/v2/${repo}/manifests/${ref}`, {
      scope: pushScope(repo),
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.status !== 201 && res.status !== 200) throw await this.upstreamError(res, `PUT manifest ${repo}:${ref}`);
    await res.body?.cancel();
    const returned = res.headers.get('docker-content-digest');
    if (returned && returned !== digest) {
      throw new UpstreamError(`registry ${this.host} stored manifest ${repo}:${ref} as ${returned}, expected ${digest}`, res.status);
    }
    return { digest, subjectProcessed: res.headers.has('oci-subject') };
  }

  /**
   * Deletes a manifest by digest (distribution deletes by digest only, and with it every tag
   * pointing at it). A missing manifest is a NotFoundError; a registry with deletes disabled
   * answers 405, an UpstreamError saying so.
   */
  async deleteManifest(repo: string, digest: string): Promise<void> {
    checkDigest(digest);
    const res = await this.send('DELETE', `/v2/${repo}/manifests/${digest}`, { scope: deleteScope(repo) });
    if (res.status === 404) {
      const body = await readErrorBody(res);
      throw new NotFoundError(`manifest ${this.host}/${repo}@${digest} not found${body.summary ? ` (${body.summary})` : ''}`, body.json);
    }
    if (res.status === 405) {
      const err = await this.upstreamError(res, `DELETE manifest ${repo}@${digest}`);
      throw new UpstreamError(`${err.message} (the registry does not allow deletes: enable storage.delete)`, 405, err.details);
    }
    if (res.status !== 202 && res.status !== 200) throw await this.upstreamError(res, `DELETE manifest ${repo}@${digest}`);
    await res.body?.cancel();
  }

  /** Tags the manifest `digest` of `repo` as `tag` (same bytes, same digest); returns the digest. */
  async tagManifest(repo: string, digest: string, tag: string): Promise<string> {
    checkDigest(digest);
    const m = await this.getManifest(repo, digest);
    return this.putManifest(repo, tag, m.bytes, m.mediaType);
  }

  /** All tags of a repository, following pagination. */
  async listTags(repo: string): Promise<string[]> {
    const tags: string[] = [];
    let path: string | null = `/v2/${repo}/tags/list?n=1000`;
    while (path) {
      const res = await this.send('GET', path, { scope: pullScope(repo) });
      if (res.status === 404) {
        const body = await readErrorBody(res);
        throw new NotFoundError(`repository ${this.host}/${repo} not found${body.summary ? ` (${body.summary})` : ''}`, body.json);
      }
      if (!res.ok) throw await this.upstreamError(res, `GET tags of ${repo}`);
      const json = (await res.json()) as { tags?: string[] | null };
      tags.push(...(json.tags ?? []));
      path = nextLink(res.headers.get('link'));
    }
    return tags;
  }

  // ---------------------------------------------------------------- blobs

  /** True when the blob exists in the repository. */
  async blobExists(repo: string, digest: string): Promise<boolean> {
    checkDigest(digest);
    const res = await this.send('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: pullScope(repo) });
    await res.body?.cancel();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.upstreamError(res, `HEAD blob ${repo}@${digest}`);
  }

  /**
   * Streams a blob. Its sha256 is checked as it flows: the stream fails at its end with an
   * UpstreamError when the content does not match `digest`.
   */
  async fetchBlob(repo: string, digest: string): Promise<Readable> {
    checkDigest(digest);
    const res = await this.send('GET', `/v2/${repo}/blobs/${digest}`, { scope: pullScope(repo) });
    if (res.status === 404) {
      const body = await readErrorBody(res);
      throw new NotFoundError(`blob ${this.host}/${repo}@${digest} not found${body.summary ? ` (${body.summary})` : ''}`, body.json);
    }
    if (!res.ok || !res.body) throw await this.upstreamError(res, `GET blob ${repo}@${digest}`);
    const hash = createHash('sha256');
    const host = this.host;
    const verify = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        cb(got === digest ? null : new UpstreamError(`blob ${host}/${repo}@${digest} has content with digest ${got}`));
      },
    });
    const source = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    // pipeline destroys `verify` with any source error, so the consumer sees it.
    pipeline(source, verify, () => undefined);
    return verify;
  }

  /** A whole blob in memory, verified. For small blobs (configs, manifests' files). */
  async readBlob(repo: string, digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.fetchBlob(repo, digest)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Uploads a blob unless the repository already has it: a cross-repository mount first when
   * `mountFrom` is given, else POST then a monolithic PUT (bytes) or PATCH + PUT (stream).
   */
  async pushBlob(repo: string, data: Uint8Array | Readable, opts: PushBlobOptions = {}): Promise<{ digest: string; size: number }> {
    let digest = opts.digest;
    if (digest !== undefined) checkDigest(digest);
    if (data instanceof Uint8Array) {
      const actual = sha256Digest(data);
      if (digest && digest !== actual) throw new InputError(`blob content has digest ${actual}, not ${digest}`);
      digest = actual;
    }
    if (digest && (await this.blobExists(repo, digest))) {
      return { digest, size: data instanceof Uint8Array ? data.length : await this.blobSize(repo, digest) };
    }
    let location: string;
    if (digest && opts.mountFrom && opts.mountFrom !== repo) {
      const res = await this.send(
        'POST',
        `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(opts.mountFrom)}`,
        {
          scope: `${pushScope(repo)} ${pullScope(opts.mountFrom)}`,
        },
      );
      if (res.status !== 201 && res.status !== 202)
        throw await this.upstreamError(res, `mount blob ${digest} from ${opts.mountFrom} into ${repo}`);
      await res.body?.cancel();
      if (res.status === 201) {
        return { digest, size: data instanceof Uint8Array ? data.length : await this.blobSize(repo, digest) };
      }
      location = this.uploadLocation(res);
    } else {
      const res = await this.send('POST', `/v2/${repo}/blobs/uploads/`, { scope: pushScope(repo) });
      if (res.status !== 202) throw await this.upstreamError(res, `start blob upload to ${repo}`);
      await res.body?.cancel();
      location = this.uploadLocation(res);
    }
    if (data instanceof Uint8Array) {
      const res = await this.send('PUT', withQuery(location, 'digest', digest as string), {
        scope: pushScope(repo),
        headers: { 'content-type': 'application/octet-stream' },
        body: data,
      });
      if (res.status !== 201) throw await this.upstreamError(res, `upload blob ${digest} to ${repo}`);
      await res.body?.cancel();
      return { digest: digest as string, size: data.length };
    }
    // A stream of unknown digest: send it in one PATCH, hashing as it goes, then close the upload.
    // A stream cannot be resent after a 401, so settle auth for this scope first (upload status).
    const status = await this.send('GET', location, { scope: pushScope(repo) });
    await status.body?.cancel();
    const hash = createHash('sha256');
    let size = 0;
    const counted = data.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      }),
    );
    const patch = await this.send('PATCH', location, {
      scope: pushScope(repo),
      headers: { 'content-type': 'application/octet-stream' },
      body: counted,
    });
    if (patch.status !== 202) throw await this.upstreamError(patch, `upload blob data to ${repo}`);
    await patch.body?.cancel();
    const actual = `sha256:${hash.digest('hex')}`;
    if (digest && digest !== actual) throw new InputError(`blob stream has digest ${actual}, not ${digest}`);
    const put = await this.send('PUT', withQuery(this.uploadLocation(patch), 'digest', actual), { scope: pushScope(repo) });
    if (put.status !== 201) throw await this.upstreamError(put, `finish blob upload ${actual} to ${repo}`);
    await put.body?.cancel();
    return { digest: actual, size };
  }

  private async blobSize(repo: string, digest: string): Promise<number> {
    const res = await this.send('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: pullScope(repo) });
    await res.body?.cancel();
    if (!res.ok) throw await this.upstreamError(res, `HEAD blob ${repo}@${digest}`);
    return Number(res.headers.get('content-length') ?? '0');
  }

  // ---------------------------------------------------------------- artifacts and referrers

  /**
   * Pushes an OCI 1.1 artifact: an image manifest with `artifactType`, the empty config and
   * one layer per file, optionally referring to `subject`. When the registry does not process
   * `subject` itself (no `OCI-Subject` response header), the referrers tag schema fallback
   * index `sha256-<hex>` of the subject is updated. That update is read-modify-write, so two
   * artifacts pushed for the same subject at the same instant can lose one entry.
   */
  async pushArtifact(opts: PushArtifactOptions): Promise<Descriptor> {
    const { repo } = opts;
    await this.pushBlob(repo, Buffer.from('{}'));
    const layers: Descriptor[] = [];
    for (const f of opts.files) {
      const { digest, size } = await this.pushBlob(repo, f.bytes);
      const d: Descriptor = { mediaType: f.mediaType, digest, size };
      if (f.annotations && Object.keys(f.annotations).length) d.annotations = f.annotations;
      layers.push(d);
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: opts.artifactType,
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: EMPTY_JSON_DIGEST, size: 2, data: 'e30=' },
      layers,
    };
    if (opts.subject) manifest.subject = { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size };
    if (opts.annotations && Object.keys(opts.annotations).length) manifest.annotations = opts.annotations;
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = sha256Digest(bytes);
    const { subjectProcessed } = await this.putManifestWithInfo(repo, digest, bytes, MEDIA_TYPES.ociManifest);
    if (opts.tag) await this.putManifest(repo, opts.tag, bytes, MEDIA_TYPES.ociManifest);
    const desc: Descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest, size: bytes.length, artifactType: opts.artifactType };
    if (manifest.annotations) desc.annotations = manifest.annotations;
    if (opts.subject && !subjectProcessed) await this.addFallbackReferrer(repo, opts.subject.digest, desc);
    return desc;
  }

  private async addFallbackReferrer(repo: string, subject: string, desc: Descriptor): Promise<void> {
    const tag = fallbackTag(subject);
    let index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
    try {
      const cur = await this.getManifest(repo, tag);
      if (!isIndexMediaType(cur.mediaType))
        throw new UpstreamError(`referrers fallback tag ${repo}:${tag} holds a ${cur.mediaType}, not an index`);
      index = cur.json as ImageIndex;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    if (index.manifests.some((m) => m.digest === desc.digest)) return;
    index = { ...index, mediaType: MEDIA_TYPES.ociIndex, manifests: [...index.manifests, desc] };
    await this.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), MEDIA_TYPES.ociIndex);
  }

  /**
   * The artifacts referring to `digest`, optionally only those of `artifactType`: from the
   * referrers API when the registry has it, else from the `sha256-<hex>` fallback tag.
   */
  async listReferrers(repo: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    checkDigest(digest);
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.send('GET', `/v2/${repo}/referrers/${digest}${query}`, {
      scope: pullScope(repo),
      headers: { accept: MEDIA_TYPES.ociIndex },
    });
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim();
    let manifests: Descriptor[];
    if (res.status === 200 && type === MEDIA_TYPES.ociIndex) {
      manifests = ((await res.json()) as ImageIndex).manifests ?? [];
    } else if (res.status === 404 || res.status === 200) {
      // No referrers API (a 404, or some other page): use the tag schema.
      await res.body?.cancel();
      try {
        manifests = ((await this.getManifest(repo, fallbackTag(digest))).json as ImageIndex).manifests ?? [];
      } catch (e) {
        if (e instanceof NotFoundError) return [];
        throw e;
      }
    } else {
      throw await this.upstreamError(res, `GET referrers of ${repo}@${digest}`);
    }
    return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
  }

  // ---------------------------------------------------------------- transport and auth

  private uploadLocation(res: Response): string {
    const loc = res.headers.get('location');
    if (!loc) throw new UpstreamError(`registry ${this.host} started an upload without a Location header`, res.status);
    return new URL(loc, this.baseUrl).toString();
  }

  private authorization(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
    if (this.useBasic && this.username !== undefined) {
      return `Basic ${Buffer.from(`${this.username}:${this.password ?? ''}`).toString('base64')}`;
    }
    return undefined;
  }

  /**
   * Sends one request; on a 401 answers the challenge (basic or bearer) and retries once.
   * A streamed body cannot be resent, so callers send one only after an earlier request of
   * the same scope has settled the auth.
   */
  private async send(method: string, pathOrUrl: string, opts: SendOptions): Promise<Response> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    const attempt = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...opts.headers };
      const auth = this.authorization(opts.scope);
      if (auth) headers.authorization = auth;
      const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'follow' };
      if (opts.body instanceof Readable) {
        init.body = opts.body as unknown as NonNullable<RequestInit['body']>;
        init.duplex = 'half';
      } else if (opts.body) {
        init.body = opts.body as NonNullable<RequestInit['body']>;
      }
      try {
        return await this.fetchImpl(url, init);
      } catch (e) {
        const cause = (e as { cause?: { message?: string } }).cause?.message;
        throw new UpstreamError(
          `registry ${this.host} unreachable: ${method} ${url}: ${(e as Error).message}${cause ? ` (${cause})` : ''}`,
        );
      }
    };
    let res = await attempt();
    if (res.status !== 401 || opts.body instanceof Readable) return res;
    const header = res.headers.get('www-authenticate');
    if (!header) return res;
    const challenge = parseChallenge(header);
    if (challenge.scheme === 'basic') {
      if (this.username === undefined || this.useBasic) return res;
      await res.body?.cancel();
      this.useBasic = true;
    } else if (challenge.scheme === 'bearer') {
      await res.body?.cancel();
      await this.fetchToken(challenge, opts.scope);
    } else {
      return res;
    }
    res = await attempt();
    return res;
  }

  private async fetchToken(challenge: Challenge, scope: string): Promise<void> {
    const realm = challenge.params.realm;
    if (!realm) throw new UpstreamError(`registry ${this.host} asked for a bearer token without a realm`, 401);
    const url = new URL(realm);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.host)) {
      throw new UpstreamError(
        `registry ${this.host} token realm ${realm} is plain HTTP on a non-loopback host; refusing to send credentials`,
        401,
      );
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set([...scope.split(' '), ...(challenge.params.scope ?? '').split(' ')].filter(Boolean));
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.username !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${this.username}:${this.password ?? ''}`).toString('base64')}`;
    }
    let res: Response;
    try {
      res = await this.fetchImpl(url, { headers });
    } catch (e) {
      throw new UpstreamError(`token service ${url.origin} of registry ${this.host} unreachable: ${(e as Error).message}`);
    }
    if (!res.ok) throw await this.upstreamError(res, `get token for ${[...scopes].join(' ')}`);
    const json = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = json.token ?? json.access_token;
    if (!token) throw new UpstreamError(`token service of registry ${this.host} returned no token`, res.status);
    // Renew a little early; the default lifetime is 60 s per the token spec.
    const ttl = Math.max(10, (json.expires_in ?? 60) - 5);
    this.tokens.set(scope, { token, expiresAt: Date.now() + ttl * 1000 });
  }

  private async upstreamError(res: Response, what: string): Promise<UpstreamError> {
    const body = await readErrorBody(res);
    // A bearer challenge with error="insufficient_scope" means the token is valid but lacks the access.
    const denied = res.status === 401 && parseChallenge(res.headers.get('www-authenticate') ?? '').params.error === 'insufficient_scope';
    const hint =
      res.status === 401
        ? this.username === undefined
          ? ' (no credentials configured)'
          : denied
            ? ' (credentials accepted but not granted this access)'
            : ' (credentials rejected)'
        : '';
    return new UpstreamError(
      `registry ${this.host}: ${what} failed: HTTP ${res.status}${hint}${body.summary ? `: ${body.summary}` : ''}`,
      res.status,
      body.json ?? body.text,
    );
  }
}

function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`;
}

function deleteScope(repo: string): string {
  return `repository:${repo}:delete`;
}

/** The referrers tag schema's tag for a subject digest: `sha256-<hex>`. */
export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

function checkDigest(digest: string): void {
  if (!isDigest(digest)) throw new InputError(`"${digest}" is not a sha256:<64 hex> digest`);
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

function nextLink(link: string | null): string | null {
  if (!link) return null;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return m ? (m[1] as string) : null;
}

/** Reads a registry error body: `{errors:[{code,message,detail}]}` summarized, else its text. */
async function readErrorBody(res: Response): Promise<{ summary: string; json?: unknown; text: string }> {
  let text = '';
  try {
    text = (await res.text()).slice(0, 4096);
  } catch {
    // body unreadable: the status says enough
  }
  try {
    const json = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const summary = (json.errors ?? [])
      .map((e) => [e.code, e.message, e.detail !== undefined ? JSON.stringify(e.detail) : undefined].filter(Boolean).join(' '))
      .join('; ');
    return { summary: summary || text.trim(), json, text };
  } catch {
    return { summary: text.trim().slice(0, 500), text };
  }
}

/** The client of a configured registry (host, plain HTTP where allowed, credentials). */
export function registryClientFor(registry: { host: string; plainHttp: boolean; username?: string; password?: string }): RegistryClient {
  const { host, plainHttp, username, password } = registry;
  return new RegistryClient({
    host,
    plainHttp,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  });
}
