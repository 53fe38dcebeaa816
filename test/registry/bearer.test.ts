/**
 * RegistryClient's bearer-token auth against a real docker-registry in token mode: the
 * registry answers 401 with a `Bearer realm=…,service=…,scope=…` challenge, the client gets
 * a JWT from the in-test token server (test/helpers/token-server.ts) and the registry
 * verifies its signature, issuer, audience, lifetime and access claims.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/errors.js';
import { RegistryClient, sha256Digest } from '../../src/registry/client.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const PULL = (repo: string) => `repository:${repo}:pull`;
const PUSH = (repo: string) => `repository:${repo}:pull,push`;

/**
 * The scopes of one token request as a sorted list of `type:name:actions` with each resource's
 * actions merged and sorted: the client sends its own scope plus the registry challenge's, and
 * docker-registry orders a challenge's actions at random (`pull,push` or `push,pull`).
 */
function norm(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    const set = byResource.get(s.slice(0, i)) ?? new Set<string>();
    for (const a of s.slice(i + 1).split(',')) set.add(a);
    byResource.set(s.slice(0, i), set);
  }
  return [...byResource].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

describe('RegistryClient with bearer-token auth against docker-registry', () => {
  let tokens: TokenServer;
  let reg: TestRegistry;
  beforeAll(async () => {
    tokens = await startTokenServer({
      users: { alice: 's3cret', reader: 'r3ad' },
      // reader may only pull; everyone else gets what they ask for
      grants: (user, scope) => (user === 'reader' ? scope.actions.filter((a) => a === 'pull') : scope.actions),
    });
    reg = await startRegistry({
      auth: { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootcertbundle: tokens.certPath } },
    });
  });
  afterAll(async () => {
    await reg?.stop();
    await tokens?.stop();
  });
  beforeEach(() => {
    tokens.requests.length = 0;
  });

  it('challenges anonymous requests with the token realm, service and scope', async () => {
    // GIVEN a registry in token mode WHEN a manifest is asked for without a token
    const res = await fetch(`http://${reg.host}/v2/tok/app/manifests/v1`);
    await res.body?.cancel();
    // THEN it answers 401 with a Bearer challenge naming the token server
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:tok/app:pull"`,
    );
  });

  it('pushes a blob and a manifest with the right credentials and reads them back, caching tokens per scope', async () => {
    // GIVEN a client with alice's credentials
    const client = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 's3cret' });
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256Digest(config), size: config.length },
        layers: [],
      }),
    );

    // WHEN it pushes a blob and a manifest
    expect(await client.pushBlob('tok/app', config)).toEqual({ digest: sha256Digest(config), size: config.length });
    const digest = await client.putManifest('tok/app', 'v1', manifest, MEDIA_TYPES.ociManifest);
    // THEN it fetched exactly two tokens, as alice, for the registry's service: pull (the
    // existence check) then pull,push (the upload and the manifest), each granting what was asked
    expect(digest).toBe(sha256Digest(manifest));
    expect(tokens.requests.map((r) => ({ ...r, scopes: norm(r.scopes) }))).toEqual([
      {
        user: 'alice',
        service: tokens.service,
        scopes: [PULL('tok/app')],
        status: 200,
        access: [{ type: 'repository', name: 'tok/app', actions: ['pull'] }],
      },
      {
        user: 'alice',
        service: tokens.service,
        scopes: [PUSH('tok/app')],
        status: 200,
        access: [{ type: 'repository', name: 'tok/app', actions: ['pull', 'push'] }],
      },
    ]);

    // WHEN it reads the manifest and the blob back
    const got = await client.getManifest('tok/app', 'v1');
    const blob = await client.readBlob('tok/app', sha256Digest(config));
    // THEN both are the exact bytes, and the cached pull token served them: no new token request
    expect(got.digest).toBe(digest);
    expect(got.bytes.equals(manifest)).toBe(true);
    expect(blob.equals(config)).toBe(true);
    expect(tokens.requests).toHaveLength(2);

    // WHEN the same scope is read a second time THEN still no new token request
    expect((await client.getImage('tok/app', 'v1')).manifest.digest).toBe(digest);
    expect(await client.listTags('tok/app')).toEqual(['v1']);
    expect(tokens.requests).toHaveLength(2);

    // WHEN a different repository is read THEN exactly one new token is fetched, for its scope
    await client.pushBlob('tok/other', Buffer.from('other'));
    expect(await client.blobExists('tok/other', sha256Digest(Buffer.from('other')))).toBe(true);
    expect(tokens.requests.map((r) => norm(r.scopes))).toEqual([
      [PULL('tok/app')],
      [PUSH('tok/app')],
      [PULL('tok/other')],
      [PUSH('tok/other')],
    ]);
  });

  it('streams a blob of unknown digest and mounts a blob across repositories with tokens', async () => {
    // GIVEN alice's client
    const client = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 's3cret' });
    // WHEN a stream is pushed (the auth is settled before the body, which cannot be resent)
    const big = Buffer.alloc(256 * 1024, 3);
    const pushed = await client.pushBlob('tok/stream', Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
    // THEN it lands, with one push token
    expect(pushed).toEqual({ digest: sha256Digest(big), size: big.length });
    expect((await client.readBlob('tok/stream', pushed.digest)).equals(big)).toBe(true);
    expect(tokens.requests.map((r) => norm(r.scopes))).toEqual([[PUSH('tok/stream')], [PULL('tok/stream')]]);

    // WHEN the blob is mounted into another repository
    tokens.requests.length = 0;
    expect(await client.pushBlob('tok/mounted', big, { mountFrom: 'tok/stream' })).toEqual(pushed);
    // THEN the mount's token covers both repositories and the blob is there
    expect(tokens.requests.map((r) => norm(r.scopes))).toEqual([[PULL('tok/mounted')], [PUSH('tok/mounted'), PULL('tok/stream')]]);
    expect(tokens.requests[1]?.access).toEqual([
      { type: 'repository', name: 'tok/mounted', actions: ['pull', 'push'] },
      { type: 'repository', name: 'tok/stream', actions: ['pull'] },
    ]);
    expect(await client.blobExists('tok/mounted', pushed.digest)).toBe(true);
  });

  it('fails with a wrong password, saying the credentials were rejected', async () => {
    // GIVEN a client with a wrong password
    const wrong = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 'nope' });
    // WHEN it reads THEN the token request fails: UpstreamError 401 saying the credentials were rejected
    const err = await wrong.getManifest('tok/app', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).upstreamStatus).toBe(401);
    expect((err as UpstreamError).message).toBe(
      `registry ${reg.host}: get token for repository:tok/app:pull failed: HTTP 401 (credentials rejected): UNAUTHORIZED invalid username or password`,
    );
    expect(tokens.requests).toEqual([{ user: 'alice', service: tokens.service, scopes: [PULL('tok/app')], status: 401, access: [] }]);
  });

  it('fails without credentials, saying none are configured', async () => {
    // GIVEN an anonymous client
    const anon = new RegistryClient({ host: reg.host, plainHttp: true });
    // WHEN it reads THEN UpstreamError 401 saying no credentials are configured
    const err = await anon.listTags('tok/app').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).upstreamStatus).toBe(401);
    expect((err as UpstreamError).message).toBe(
      `registry ${reg.host}: get token for repository:tok/app:pull failed: HTTP 401 (no credentials configured): UNAUTHORIZED credentials required`,
    );
    expect(tokens.requests).toEqual([{ user: undefined, service: tokens.service, scopes: [PULL('tok/app')], status: 401, access: [] }]);
  });

  it('pulls but cannot push with a token granting only pull', async () => {
    // GIVEN reader, whose tokens grant pull only, and an image alice pushed
    const alice = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 's3cret' });
    const bytes = Buffer.from('readable');
    const { digest } = await alice.pushBlob('tok/ro', bytes);
    tokens.requests.length = 0;
    const reader = new RegistryClient({ host: reg.host, plainHttp: true, username: 'reader', password: 'r3ad' });
    // WHEN reader reads THEN it gets the blob
    expect((await reader.readBlob('tok/ro', digest)).toString()).toBe('readable');
    // WHEN reader pushes THEN UpstreamError 401: the token lacks push
    const err = await reader.pushBlob('tok/ro', Buffer.from('not allowed')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).upstreamStatus).toBe(401);
    expect((err as UpstreamError).message).toBe(
      `registry ${reg.host}: start blob upload to tok/ro failed: HTTP 401 (credentials accepted but not granted this access): ` +
        `UNAUTHORIZED authentication required [{"Type":"repository","Class":"","Name":"tok/ro","Action":"pull"},{"Type":"repository","Class":"","Name":"tok/ro","Action":"push"}]`,
    );
    // AND the token server was asked for pull (the read), then pull,push, and granted only pull
    expect(tokens.requests.map((r) => ({ ...r, scopes: norm(r.scopes) }))).toEqual([
      {
        user: 'reader',
        service: tokens.service,
        scopes: [PULL('tok/ro')],
        status: 200,
        access: [{ type: 'repository', name: 'tok/ro', actions: ['pull'] }],
      },
      {
        user: 'reader',
        service: tokens.service,
        scopes: [PUSH('tok/ro')],
        status: 200,
        access: [{ type: 'repository', name: 'tok/ro', actions: ['pull'] }],
      },
    ]);
    // AND the blob was not stored
    expect(await alice.blobExists('tok/ro', sha256Digest(Buffer.from('not allowed')))).toBe(false);
  });
});
