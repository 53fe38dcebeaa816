/**
 * Starts a real OCI registry (Debian's docker-registry) on a free loopback port for a
 * test file, and stops it afterwards. Tests never share a registry with the user's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr && typeof addr === 'object') {
        const { port } = addr;
        srv.close(() => resolve(port));
      } else reject(new Error('no port'));
    });
  });
}

/** Token auth: the registry trusts JWTs from `issuer` for `service` signed under `rootcertbundle`. */
export interface RegistryTokenAuth {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the certificate(s) the token signer's chain must end in. */
  rootcertbundle: string;
}

export interface StartRegistryOptions {
  auth?: { htpasswd: string } | { token: RegistryTokenAuth };
  /** Address to listen on (default 127.0.0.1); e.g. the test bed's bridge gateway, for pods. */
  address?: string;
  /** Port (default: a free one). */
  port?: number;
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'svcbuild-registry-'));
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  const auth = !opts.auth
    ? ''
    : 'token' in opts.auth
      ? `auth:\n  token:\n    realm: ${JSON.stringify(opts.auth.token.realm)}\n    service: ${JSON.stringify(opts.auth.token.service)}\n    issuer: ${JSON.stringify(opts.auth.token.issuer)}\n    rootcertbundle: ${JSON.stringify(opts.auth.token.rootcertbundle)}\n`
      : `auth:\n  htpasswd:\n    realm: svcbuild-test\n    path: ${opts.auth.htpasswd}\n`;
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${address}:${port}\n  secret: svcbuild-test\n${auth}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const host = `${address}:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    dir,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
