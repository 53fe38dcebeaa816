/**
 * A minimal registry token service (the Docker/OCI "token authentication" realm) for tests:
 * it checks HTTP basic credentials on `GET <realm>?service=…&scope=…`, and answers with a
 * JWT (RS256, signed by a throw-away key whose self-signed certificate is sent in the `x5c`
 * header) granting only the actions `grants` allows. docker-registry trusts it when started
 * with `auth.token.rootcertbundle` pointing at `certPath`. Every token request is recorded.
 */
import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TokenRequestRecord {
  /** The user of the Authorization: Basic header, undefined when none was sent. */
  user: string | undefined;
  service: string | null;
  /** The `scope` parameters, in order. */
  scopes: string[];
  /** The HTTP status answered. */
  status: number;
  /** The access granted in the token (empty unless status is 200). */
  access: TokenAccess[];
}

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServerOptions {
  /** name → password. */
  users: Record<string, string>;
  /**
   * The actions `user` may have on a scope such as `repository:a/b:pull,push` (the scope's
   * own actions are what was asked). Defaults to everything asked. The token grants the
   * intersection of asked and allowed.
   */
  grants?: (user: string, scope: { type: string; name: string; actions: string[] }) => string[];
  /** Token lifetime in seconds; 300 by default. */
  expiresIn?: number;
}

export interface TokenServer {
  /** http://127.0.0.1:<port>/token */
  realm: string;
  /** The `aud` of issued tokens; configure the registry's `auth.token.service` with it. */
  service: string;
  /** The `iss` of issued tokens. */
  issuer: string;
  /** PEM certificate of the signing key: the registry's `rootcertbundle`. */
  certPath: string;
  /** Every token request, in order. */
  requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** `repository:a/b:pull,push` → parts; the name may not contain ':' in practice, but keep it whole. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  return { user: text.slice(0, i), password: text.slice(i + 1) };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'svcbuild-token-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=svcbuild-test-token-signer',
    ],
    { stdio: 'ignore' },
  );
  const key = await readFile(keyPath, 'utf8');
  const certDer = new X509Certificate(await readFile(certPath)).raw;
  const service = 'svcbuild-test-registry';
  const issuer = 'svcbuild-test-token-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];

  const sign = (claims: object): string => {
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${b64url(sig)}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scopes = url.searchParams.getAll('scope');
    const creds = parseBasic(req.headers.authorization);
    const record: TokenRequestRecord = { user: creds?.user, service: url.searchParams.get('service'), scopes, status: 0, access: [] };
    requests.push(record);
    const reply = (status: number, body: object, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || url.pathname !== '/token') {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: `no ${req.method} ${url.pathname}` }] });
      return;
    }
    if (record.service !== service) {
      reply(400, { errors: [{ code: 'INVALID_REQUEST', message: `unknown service ${JSON.stringify(record.service)}` }] });
      return;
    }
    if (!creds) {
      reply(
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'credentials required' }] },
        { 'www-authenticate': 'Basic realm="svcbuild-test-token"' },
      );
      return;
    }
    if (opts.users[creds.user] === undefined || opts.users[creds.user] !== creds.password) {
      reply(
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
        { 'www-authenticate': 'Basic realm="svcbuild-test-token"' },
      );
      return;
    }
    // One access entry per resource, merging repeated scopes (the registry's challenge may
    // name `push,pull` where the client asked `pull,push`); actions sorted.
    for (const s of scopes) {
      const parsed = parseScope(s);
      if (!parsed) continue;
      const allowed = new Set(opts.grants ? opts.grants(creds.user, parsed) : parsed.actions);
      const actions = parsed.actions.filter((a) => allowed.has(a));
      let entry = record.access.find((a) => a.type === parsed.type && a.name === parsed.name);
      if (!entry) record.access.push((entry = { type: parsed.type, name: parsed.name, actions: [] }));
      entry.actions = [...new Set([...entry.actions, ...actions])].sort();
    }
    const now = Math.floor(Date.now() / 1000);
    const token = sign({
      iss: issuer,
      sub: creds.user,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access: record.access,
    });
    reply(200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('token server has no port');
  return {
    realm: `http://127.0.0.1:${addr.port}/token`,
    service,
    issuer,
    certPath,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
