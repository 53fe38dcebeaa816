import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, NotFoundError, UpstreamError } from '../../src/errors.js';
import { EMPTY_JSON_DIGEST, RegistryClient, parseChallenge, sha256Digest } from '../../src/registry/client.js';
import { parseImageRef } from '../../src/registry/ref.js';
import { MEDIA_TYPES } from '../../src/registry/types.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeLayer, pushImage } from '../overlay/image-builder.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('parseImageRef', () => {
  it('parses host, repo, tag and digest', () => {
    // GIVEN references with a port, a tag, a digest, both
    // WHEN parsed THEN each part is split out exactly
    expect(parseImageRef(`127.0.0.1:5000/svcbuild/x@${D('a')}`)).toEqual({ host: '127.0.0.1:5000', repo: 'svcbuild/x', digest: D('a') });
    expect(parseImageRef('localhost/a/b-c:v1.2')).toEqual({ host: 'localhost', repo: 'a/b-c', tag: 'v1.2' });
    expect(parseImageRef(`reg.example.com/a:t@${D('b')}`)).toEqual({ host: 'reg.example.com', repo: 'a', tag: 't', digest: D('b') });
    expect(parseImageRef('svcbuild/app:build-1', '127.0.0.1:5000')).toEqual({
      host: '127.0.0.1:5000',
      repo: 'svcbuild/app',
      tag: 'build-1',
    });
  });

  it('rejects malformed references, naming them', () => {
    // GIVEN bad references WHEN parsed THEN an InputError names the reference and the reason
    expect(() => parseImageRef('127.0.0.1:5000/Upper:t')).toThrow(
      'invalid image reference "127.0.0.1:5000/Upper:t": repository component "Upper"',
    );
    expect(() => parseImageRef('127.0.0.1:5000/a@sha256:abc')).toThrow('digest "sha256:abc" is not sha256:<64 lower-case hex>');
    expect(() => parseImageRef('127.0.0.1:5000/a')).toThrow('invalid image reference "127.0.0.1:5000/a": neither a tag nor a digest');
    expect(() => parseImageRef('a/b:t')).toThrow('no registry host');
    expect(() => parseImageRef('127.0.0.1:5000/a:-bad')).toThrow(InputError);
  });
});

describe('RegistryClient construction', () => {
  it('refuses plain HTTP to a name or a public address; allows it for loopback and private IP addresses', () => {
    // GIVEN a remote host WHEN plain HTTP is asked THEN InputError naming the rule and the fix
    for (const host of ['registry.example.com', '8.8.8.8:5000', '172.32.0.1:5000', '[2001:db8::1]:5000']) {
      expect(() => new RegistryClient({ host, plainHttp: true }), host).toThrow(
        `plain HTTP is only allowed for a registry on loopback or a private IP address (10/8, 172.16/12, 192.168/16, fc00::/7), not ${host}; use TLS`,
      );
    }
    // GIVEN loopback or a private IP literal (a cluster's bridge gateway) THEN plain HTTP is allowed
    for (const host of ['[::1]:5000', '127.0.0.1:5000', '10.244.0.1:5000', '172.16.5.4', '192.168.1.2:5000', '[fd00::1]:5000']) {
      expect(() => new RegistryClient({ host, plainHttp: true }), host).not.toThrow();
    }
  });

  it('parses bearer challenges', () => {
    // GIVEN a WWW-Authenticate header WHEN parsed THEN scheme and params are exact
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual(
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
      },
    );
  });
});

describe('RegistryClient against docker-registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ host: reg.host, plainHttp: true });
  });
  afterAll(async () => reg?.stop());

  it('pushes, checks and streams blobs, from bytes and from a stream', async () => {
    // GIVEN some bytes
    const bytes = Buffer.from('hello blob\n');
    // WHEN pushed as bytes
    const a = await client.pushBlob('t/blobs', bytes);
    // THEN they exist and stream back identical
    expect(a).toEqual({ digest: sha256Digest(bytes), size: bytes.length });
    expect(await client.blobExists('t/blobs', a.digest)).toBe(true);
    expect(await client.blobExists('t/blobs', D('0'))).toBe(false);
    expect((await drain(await client.fetchBlob('t/blobs', a.digest))).toString()).toBe('hello blob\n');
    // WHEN a 3 MiB stream of unknown digest is pushed
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const b = await client.pushBlob('t/blobs', Readable.from([big.subarray(0, 1_000_000), big.subarray(1_000_000)]));
    // THEN its digest and size are computed on the way
    expect(b).toEqual({ digest: sha256Digest(big), size: big.length });
    expect((await drain(await client.fetchBlob('t/blobs', b.digest))).equals(big)).toBe(true);
    // WHEN mounted into another repository THEN it exists there
    expect(await client.pushBlob('t/other', bytes, { mountFrom: 't/blobs' })).toEqual(a);
    expect(await client.blobExists('t/other', a.digest)).toBe(true);
  });

  it('fails a blob stream whose content does not match its digest', async () => {
    // GIVEN a blob whose stored bytes are corrupted on the registry's disk
    const bytes = Buffer.from('to be corrupted');
    const { digest } = await client.pushBlob('t/corrupt', bytes);
    const hex = digest.slice(7);
    const file = join(reg.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    await writeFile(file, 'TO BE CORRUPTED');
    // WHEN fetched THEN the stream ends in an UpstreamError naming both digests
    const got = `sha256:${createHash('sha256').update('TO BE CORRUPTED').digest('hex')}`;
    await expect(drain(await client.fetchBlob('t/corrupt', digest))).rejects.toThrow(
      `blob ${reg.host}/t/corrupt@${digest} has content with digest ${got}`,
    );
  });

  it('puts and gets manifests, resolves an index to linux/amd64, lists tags', async () => {
    // GIVEN an amd64 and an arm64 image under one OCI index
    const amd = await pushImage(client, 't/img', 'amd', [await makeLayer([{ path: 'a.txt', content: 'amd' }])]);
    const arm = await pushImage(client, 't/img', 'arm', [await makeLayer([{ path: 'a.txt', content: 'arm' }])], { architecture: 'arm64' });
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        { mediaType: arm.mediaType, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: amd.mediaType, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const indexBytes = Buffer.from(JSON.stringify(index));
    const indexDigest = await client.putManifest('t/img', 'multi', indexBytes, MEDIA_TYPES.ociIndex);
    // WHEN the index is fetched by tag and by digest
    const byTag = await client.getManifest('t/img', 'multi');
    const byDigest = await client.getManifest('t/img', indexDigest);
    // THEN both are the exact bytes with their digest
    expect(byTag).toEqual({ digest: indexDigest, mediaType: MEDIA_TYPES.ociIndex, bytes: indexBytes, json: index });
    expect(byDigest.digest).toBe(indexDigest);
    // WHEN resolved as an image THEN the amd64 manifest and its config come back
    const img = await client.getImage('t/img', 'multi');
    expect(img.manifest.digest).toBe(amd.digest);
    expect(img.index?.digest).toBe(indexDigest);
    expect(img.config).toEqual(amd.config);
    // AND arm64 can be asked for; a missing platform is a NotFoundError
    expect((await client.getImage('t/img', 'multi', { os: 'linux', architecture: 'arm64' })).manifest.digest).toBe(arm.digest);
    await expect(client.getImage('t/img', 'multi', { os: 'linux', architecture: 's390x' })).rejects.toThrow(
      `image ${reg.host}/t/img:multi has no linux/s390x manifest (has: linux/arm64, linux/amd64)`,
    );
    // AND a Docker v2 manifest is read too
    const docker = await pushImage(client, 't/img', 'docker', [await makeLayer([{ path: 'd', content: 'd' }])], { docker: true });
    expect((await client.getManifest('t/img', 'docker')).mediaType).toBe(MEDIA_TYPES.dockerManifest);
    expect((await client.getImage('t/img', docker.digest)).config).toEqual(docker.config);
    // AND tags are listed
    expect((await client.listTags('t/img')).sort()).toEqual(['amd', 'arm', 'docker', 'multi']);
  });

  it('maps registry failures to NotFoundError and UpstreamError with status and body', async () => {
    // GIVEN nothing under these names WHEN fetched THEN NotFoundError
    await expect(client.getManifest('t/none', 'latest')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.getManifest('t/none', 'latest')).rejects.toThrow(
      `manifest ${reg.host}/t/none:latest not found (MANIFEST_UNKNOWN manifest unknown`,
    );
    await expect(client.fetchBlob('t/none', D('1'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.listTags('t/none')).rejects.toBeInstanceOf(NotFoundError);
    // GIVEN a manifest naming a blob the registry lacks WHEN put THEN UpstreamError 400 with the registry's code
    const bad = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: D('2'), size: 2 },
        layers: [],
      }),
    );
    const err = await client.putManifest('t/bad', 'x', bad, MEDIA_TYPES.ociManifest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).upstreamStatus).toBe(400);
    expect((err as UpstreamError).message).toMatch(
      new RegExp(`^registry ${reg.host}: PUT manifest t/bad:x failed: HTTP 400: MANIFEST_BLOB_UNKNOWN`),
    );
  });

  it('pushes OCI 1.1 artifacts and lists them as referrers through the tag fallback', async () => {
    // GIVEN an image
    const img = await pushImage(client, 't/ref', 'v1', [await makeLayer([{ path: 'x', content: 'x' }])]);
    const subject = { digest: img.digest, mediaType: img.mediaType, size: img.size };
    expect(await client.listReferrers('t/ref', img.digest)).toEqual([]);
    // WHEN two artifacts of two types refer to it
    const a = await client.pushArtifact({
      repo: 't/ref',
      artifactType: 'application/vnd.test.a',
      files: [{ mediaType: 'text/plain', bytes: Buffer.from('report'), annotations: { 'org.opencontainers.image.title': 'r.txt' } }],
      subject,
      annotations: { 'test.kind': 'a' },
    });
    const b = await client.pushArtifact({ repo: 't/ref', artifactType: 'application/vnd.test.b', files: [], subject });
    // THEN the artifact manifest is OCI 1.1 with the empty config and the subject
    const m = await client.getManifest('t/ref', a.digest);
    expect(m.json).toEqual({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: 'application/vnd.test.a',
      config: { mediaType: MEDIA_TYPES.ociEmpty, digest: EMPTY_JSON_DIGEST, size: 2, data: 'e30=' },
      layers: [
        {
          mediaType: 'text/plain',
          digest: sha256Digest(Buffer.from('report')),
          size: 6,
          annotations: { 'org.opencontainers.image.title': 'r.txt' },
        },
      ],
      subject,
      annotations: { 'test.kind': 'a' },
    });
    // AND both are referrers (docker-registry 2.8 has no referrers API: the sha256-<hex> tag holds them)
    expect(await client.listReferrers('t/ref', img.digest)).toEqual([a, b]);
    expect(await client.listReferrers('t/ref', img.digest, 'application/vnd.test.b')).toEqual([b]);
    expect(await client.listTags('t/ref')).toContain(img.digest.replace(':', '-'));
    // AND pushing the same artifact again does not list it twice
    await client.pushArtifact({ repo: 't/ref', artifactType: 'application/vnd.test.b', files: [], subject });
    expect(await client.listReferrers('t/ref', img.digest)).toEqual([a, b]);
  });
});

describe('RegistryClient with basic auth', () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    dir = await mkdtemp(join(tmpdir(), 'svcbuild-htpasswd-'));
    const line = execFileSync('htpasswd', ['-Bbn', 'alice', 's3cret'], { encoding: 'utf8' });
    await writeFile(join(dir, 'htpasswd'), line);
    reg = await startRegistry({ auth: { htpasswd: join(dir, 'htpasswd') } });
  });
  afterAll(async () => {
    await reg?.stop();
    expect(await readdir(dir)).toEqual(['htpasswd']);
  });

  it('pushes and pulls with the right credentials, fails with none or wrong ones', async () => {
    // GIVEN a registry behind htpasswd
    const good = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 's3cret' });
    // WHEN the right user pushes an image (including a streamed blob) THEN it reads it back
    const img = await pushImage(good, 'auth/app', 'v1', [await makeLayer([{ path: 'f', content: 'secret file' }])]);
    await good.pushBlob('auth/app', Readable.from([Buffer.from('streamed')]));
    expect((await good.getImage('auth/app', 'v1')).manifest.digest).toBe(img.digest);
    // WHEN no credentials are sent THEN UpstreamError 401 saying so
    const anon = new RegistryClient({ host: reg.host, plainHttp: true });
    const e1 = await anon.getManifest('auth/app', 'v1').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(UpstreamError);
    expect((e1 as UpstreamError).upstreamStatus).toBe(401);
    expect((e1 as UpstreamError).message).toBe(
      `registry ${reg.host}: GET manifest auth/app:v1 failed: HTTP 401 (no credentials configured): UNAUTHORIZED authentication required [{"Type":"repository","Class":"","Name":"auth/app","Action":"pull"}]`,
    );
    // WHEN wrong credentials are sent THEN UpstreamError 401 saying they were rejected
    const wrong = new RegistryClient({ host: reg.host, plainHttp: true, username: 'alice', password: 'nope' });
    await expect(wrong.listTags('auth/app')).rejects.toThrow(
      `registry ${reg.host}: GET tags of auth/app failed: HTTP 401 (credentials rejected)`,
    );
  });
});
