/**
 * Runs an image as a real container (podman with runc, host network) and waits for its
 * HTTP answer. podman's default limits ask for more than these machines allow, hence the
 * explicit ulimits; crun does not support this kernel's hybrid cgroups, hence runc.
 */
import { run, runOk } from '../../src/util/exec.js';
import { freePort } from './registry.js';

const PODMAN = ['--runtime', 'runc'];
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface Running {
  port: number;
  name: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export async function runImage(image: string, env: Record<string, string> = {}, opts: { rootfs?: boolean } = {}): Promise<Running> {
  const port = await freePort();
  const name = `svcbuild-test-${port}`;
  const envArgs = Object.entries({ PORT: String(port), ...env }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const target = opts.rootfs ? ['--rootfs', image] : ['--tls-verify=false', image];
  await runOk('podman', [...PODMAN, 'run', '-d', '--name', name, '--network', 'host', ...LIMITS, ...envArgs, ...target]);
  return {
    port,
    name,
    logs: async () => (await run('podman', [...PODMAN, 'logs', name])).output,
    stop: async () => {
      await run('podman', [...PODMAN, 'rm', '-f', '-t', '2', name]);
    },
  };
}

/** GETs the URL until it answers (or 30 s pass); returns status and body. */
export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: await res.text() };
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`no answer from ${url}: ${String(last)}`);
}
