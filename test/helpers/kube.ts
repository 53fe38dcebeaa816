/**
 * A private Kubernetes API for a test file (issue 7, level 1): etcd + kube-apiserver built
 * from their Go modules (scripts/bed/build.sh, cached in $SVCBUILD_BED_CACHE or
 * ~/.cache/svcbuild-bed) and started by scripts/bed/apiserver.sh on free loopback ports, in a
 * run dir of its own, with Argo Workflows' full CRDs installed and Established.
 *
 * The first call on a fresh machine builds kube-apiserver (several minutes on 2 cores): give
 * the calling beforeAll a generous timeout (the repo's hookTimeout is 10 minutes).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BED_SCRIPTS = join(ROOT, 'scripts/bed');

export interface TestKube {
  /** Path of the admin kubeconfig (client certificate in group system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The bed's run dir (pki/, etcd data, logs: etcd.log, apiserver.log). */
  runDir: string;
  /** PEM file of the CA that signed the serving and client certificates. */
  caFile: string;
  /**
   * A kubeconfig for user `name` (client certificate signed by the bed CA, organisation per
   * group) with no rights unless a (Cluster)RoleBinding grants them.
   */
  userKubeconfig(name: string, groups?: string[]): Promise<string>;
  /** Stops etcd and kube-apiserver and removes the run dir. Idempotent. */
  stop(): Promise<void>;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      } else {
        resolvePromise({ stdout, stderr });
      }
    });
  });
}

/** Builds etcd, kube-apiserver and the Argo CRDs (cached: seconds when nothing changed). */
export async function buildBed(components: string[] = []): Promise<void> {
  await run(join(BED_SCRIPTS, 'build.sh'), components, process.env, 30 * 60_000);
}

/** Starts a private etcd + kube-apiserver with the Argo CRDs for the calling test file. */
export async function startKube(): Promise<TestKube> {
  await buildBed(['etcd', 'kube-apiserver', 'argo-crds']);
  const runDir = await mkdtemp(join(tmpdir(), 'svcbuild-kube-'));
  // apiserver.sh refuses to take over a directory that is not a bed run dir: start from an
  // empty one it creates itself.
  await rm(runDir, { recursive: true, force: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SVCBUILD_BED_RUN: runDir,
    SVCBUILD_BED_SKIP_BUILD: '1',
    // If this test process dies without stop(), a watchdog tears the bed down.
    SVCBUILD_BED_OWNER_PID: String(process.pid),
  };
  for (const k of ['SVCBUILD_BED_APISERVER_PORT', 'SVCBUILD_BED_ETCD_PORT', 'SVCBUILD_BED_ETCD_PEER_PORT']) {
    delete env[k];
  }
  const script = join(BED_SCRIPTS, 'apiserver.sh');
  const up = await run(script, ['up'], env, 5 * 60_000);
  const kubeconfig = up.stdout.trim().split('\n').pop() ?? '';
  const envOut = (await run(script, ['env'], env, 30_000)).stdout;
  const server = /SVCBUILD_BED_SERVER=(\S+)/.exec(envOut)?.[1];
  if (!kubeconfig.endsWith('admin.kubeconfig') || !server) {
    await run(script, ['down'], env, 60_000).catch(() => undefined);
    throw new Error(`apiserver.sh up gave no kubeconfig/server:\n${up.stdout}\n${up.stderr}\n${envOut}`);
  }
  let stopped = false;
  return {
    kubeconfig,
    server,
    runDir,
    caFile: join(runDir, 'pki/ca.crt'),
    async userKubeconfig(name: string, groups: string[] = []): Promise<string> {
      const out = await run(script, ['user', name, ...groups], env, 30_000);
      return out.stdout.trim().split('\n').pop() ?? '';
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await run(script, ['down'], env, 60_000);
    },
  };
}
