/**
 * The local default's registry: Debian's docker-registry on loopback, its data in the state
 * directory. Started detached so it outlives the command that started it.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, UpstreamError } from '../../errors.js';
import { isLoopbackHost } from '../../config/schema.js';

export async function registryUp(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

/** Starts the registry on `host` (loopback only) unless one already answers there. */
export async function startLocalRegistry(stateDir: string, host: string): Promise<'started' | 'running'> {
  if (!isLoopbackHost(host)) {
    throw new InputError(`the local registry only listens on loopback, not ${host}`, [
      { path: 'registry.host', message: 'use 127.0.0.1:<port>' },
    ]);
  }
  if (await registryUp(host)) return 'running';
  const dir = join(stateDir, 'registry');
  await mkdir(join(dir, 'data'), { recursive: true });
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(dir, 'data'))}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${JSON.stringify(host)}`,
    '  secret: svcbuild-local-registry',
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const log = openSync(join(dir, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { detached: true, stdio: ['ignore', log, log] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', (e) =>
      reject(new UpstreamError(`cannot start docker-registry (${e.message}); run scripts/setup.sh to install it`)),
    );
    child.once('spawn', () => resolve());
  });
  child.unref();
  await writeFile(join(dir, 'pid'), String(child.pid));
  for (let i = 0; i < 100; i++) {
    if (await registryUp(host)) return 'started';
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new UpstreamError(`docker-registry did not answer on ${host}; see ${join(dir, 'registry.log')}`);
}

export async function stopLocalRegistry(stateDir: string): Promise<boolean> {
  const pidFile = join(stateDir, 'registry', 'pid');
  let pid: number;
  try {
    pid = Number(await readFile(pidFile, 'utf8'));
  } catch {
    return false;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  await rm(pidFile, { force: true });
  return true;
}
