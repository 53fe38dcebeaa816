/**
 * Pipeline step `deploy`: `helm upgrade --install` of the published chart into the tenant
 * namespace, waiting for readiness and rolling back on failure; the release revision out.
 * The chart is checked against the digest publish wrote before helm sees it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { deployArgs } from '../chart/publish.js';
import type { Config } from '../config/schema.js';
import { BuildError, ConflictError, InputError, NotFoundError, UpstreamError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { run, tail } from '../util/exec.js';
import type { parseChartRef } from './publish.js';

export type ChartRef = NonNullable<ReturnType<typeof parseChartRef>>;

export interface DeployPlan {
  release: string;
  chart: ChartRef;
  namespace: string;
  valuesFile?: string;
  wait: boolean;
  rollbackOnFailure: boolean;
  timeout?: string;
  plainHttp: boolean;
}

/** Pure: the argv of `helm` for a deploy (deployArgs without what the flags turned off). */
export function deployCommand(p: DeployPlan): string[] {
  const args = deployArgs({
    release: p.release,
    chartRef: p.chart.url,
    version: p.chart.version,
    namespace: p.namespace,
    ...(p.valuesFile ? { valuesFile: p.valuesFile } : {}),
    ...(p.timeout ? { timeout: p.timeout } : {}),
    plainHttp: p.plainHttp,
  });
  return args.filter((a) => (p.wait || a !== '--wait=watcher') && (p.rollbackOnFailure || a !== '--rollback-on-failure'));
}

/**
 * Pure: whose fault a failed `helm upgrade` is. The cluster or registry not answering is
 * upstream (exit 6, retried); a release that never became ready is the service's (exit 7).
 */
export function helmFailureKind(output: string): 'upstream' | 'project' {
  if (
    /Kubernetes cluster unreachable|connection refused|no such host|TLS handshake|\bUnauthorized\b|\bforbidden\b/i.test(output) &&
    !/rolled back/i.test(output)
  ) {
    return 'upstream';
  }
  // A release that was rolled back, or resources that never became ready, mean helm reached
  // the cluster: the new version is at fault. Checked first, since such output also carries
  // digests and build ids whose digits must not be read as HTTP statuses.
  if (
    /context deadline exceeded|timed out waiting|not ready|CrashLoopBackOff|ImagePullBackOff|ErrImagePull|resource .* failed|release .* failed|rolled back/i.test(
      output,
    )
  ) {
    return 'project';
  }
  return 'upstream';
}

function helmEnv(workDir: string): NodeJS.ProcessEnv {
  const home = join(workDir, '.helm');
  return {
    ...process.env,
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
    HELM_REGISTRY_CONFIG: join(home, 'config', 'registry', 'config.json'),
  };
}

export interface RunDeployOptions {
  config: Config;
  client: RegistryClient;
  release: string;
  chart: ChartRef;
  namespace: string;
  /** Extra chart values (the service settings), written to a values file when not empty. */
  values: Record<string, unknown>;
  wait: boolean;
  rollbackOnFailure: boolean;
  timeout?: string;
  helm?: string;
}

export async function runDeployStep(opts: RunDeployOptions): Promise<{ revision: number; args: string[] }> {
  const { config, client, chart } = opts;
  // The tag may have moved since publish: deploy exactly what publish pushed.
  let got: string;
  try {
    got = (await client.getManifest(chart.repo, chart.version)).digest;
  } catch (e) {
    if (e instanceof NotFoundError) throw new InputError('the chart does not exist', [{ path: '--chart', message: e.message }]);
    throw e;
  }
  if (got !== chart.digest) {
    throw new ConflictError(`chart ${chart.url}:${chart.version} is now ${got}, not ${chart.digest} as published; refusing to deploy it`);
  }
  const helm = opts.helm ?? 'helm';
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-deploy-'));
  try {
    const env = helmEnv(work);
    if (config.registry.username !== undefined && config.registry.password !== undefined) {
      const login = await run(
        helm,
        [
          'registry',
          'login',
          config.registry.host,
          '--username',
          config.registry.username,
          '--password-stdin',
          ...(config.registry.plainHttp ? ['--plain-http'] : []),
        ],
        {
          env,
          input: config.registry.password,
        },
      );
      if (login.code !== 0) throw new UpstreamError(`helm registry login ${config.registry.host} failed:\n${tail(login.output, 10)}`);
    }
    let valuesFile: string | undefined;
    if (Object.keys(opts.values).length) {
      valuesFile = join(work, 'values.yaml');
      await writeFile(valuesFile, stringifyYaml(opts.values));
    }
    const args = deployCommand({
      release: opts.release,
      chart,
      namespace: opts.namespace,
      ...(valuesFile ? { valuesFile } : {}),
      wait: opts.wait,
      rollbackOnFailure: opts.rollbackOnFailure,
      ...(opts.timeout ? { timeout: opts.timeout } : {}),
      plainHttp: config.registry.plainHttp,
    });
    const res = await run(helm, args, { env, timeoutMs: 30 * 60_000 });
    if (res.code !== 0) {
      const what = `helm upgrade --install ${opts.release} (chart ${chart.url}:${chart.version}) in namespace ${opts.namespace} failed (exit ${res.code})`;
      const said = tail(res.output, 20);
      if (helmFailureKind(res.output) === 'project')
        throw new BuildError(
          `${what}; the release was not ready${opts.rollbackOnFailure ? ' and was rolled back' : ''}:\n${said}`,
          'deploy',
        );
      throw new UpstreamError(`${what}:\n${said}`);
    }
    const status = await run(helm, ['status', opts.release, '--namespace', opts.namespace, '--output', 'json'], {
      env,
      timeoutMs: 120_000,
    });
    if (status.code !== 0) throw new UpstreamError(`helm status ${opts.release} failed after the upgrade:\n${tail(status.output, 10)}`);
    let revision: unknown;
    try {
      revision = (JSON.parse(status.stdout) as { version?: unknown }).version;
    } catch {
      revision = undefined;
    }
    if (typeof revision !== 'number') throw new UpstreamError(`helm status ${opts.release} printed no release version`);
    return { revision, args };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
