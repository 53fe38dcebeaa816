/**
 * I/O shell of the service chart: copy the platform-service chart, write the build's
 * values and Chart.yaml, `helm lint`, `helm package`, `helm push` to the OCI registry.
 * Plus the argument lists of `helm upgrade --install` for the deploy step.
 *
 * Helm runs with its own config, cache and registry-credentials files under `workDir`, so
 * a publish never reads or writes the user's ~/.config/helm.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { plainHttpAllowed, plainHttpRefusal } from '../config/schema.js';
import { InputError, UpstreamError, type Issue } from '../errors.js';
import { runOk, type ExecOptions } from '../util/exec.js';
import { DIGEST_RE, mergeValues } from './values.js';

export interface ChartRegistry {
  /** host[:port] */
  host: string;
  /** Plain HTTP; only for loopback hosts. */
  plainHttp: boolean;
  /** Repository prefix: charts go to oci://<host>/<namespace>/charts/<name>. */
  namespace: string;
  username?: string;
  password?: string;
}

export interface PublishChartOptions {
  /** The chart to copy, normally <svcbuild home>/charts/platform-service. */
  chartSrcDir: string;
  /** The build's values, e.g. from renderServiceValues(); merged onto the chart's defaults. */
  values: object;
  /** Chart name: the service name (e.g. `acme-shop`). */
  name: string;
  /** SemVer chart version, e.g. from chartVersionFor(buildId). */
  version: string;
  /** Chart.yaml appVersion; default: the version. */
  appVersion?: string;
  registry: ChartRegistry;
  /** A scratch directory this call may fill (the chart copy, the .tgz, helm's own files). */
  workDir: string;
  /** The helm binary; default `helm` on PATH. */
  helm?: string;
  /** Every line helm prints, for build logs. */
  onLine?: (line: string) => void;
}

export interface PublishedChart {
  /** oci://<host>/<namespace>/charts/<name>: what `helm upgrade --install` and `helm pull` take. */
  ref: string;
  version: string;
  /** The chart manifest's digest in the registry. */
  digest: string;
}

const CHART_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$/;

/** Pure: oci://<host>/<namespace>/charts, the push target of every service chart. */
export function chartRepositoryUrl(registry: Pick<ChartRegistry, 'host' | 'namespace'>): string {
  return `oci://${registry.host}/${registry.namespace}/charts`;
}

/** Pure: the `Digest:` line of `helm push` output. */
export function parsePushDigest(output: string): string | undefined {
  const m = /^Digest:\s*(sha256:[a-f0-9]{64})\s*$/m.exec(output);
  return m?.[1];
}

/** The environment helm runs in: its config, cache and data kept under workDir. */
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

/**
 * Copies the chart, writes values.yaml and Chart.yaml (name, version, appVersion), lints,
 * packages and pushes it. Returns the chart's OCI reference, version and digest.
 * Throws InputError for a bad name, version or registry, UpstreamError when helm fails
 * (with helm's own words, e.g. a values.schema.json violation from `helm lint`).
 *
 * @example
 * const chart = await publishServiceChart({ chartSrcDir: join(home, 'charts/platform-service'),
 *   values: renderServiceValues(input), name: 'acme-shop', version: chartVersionFor(buildId),
 *   registry: { ...config.registry }, workDir });
 * // chart.ref === 'oci://127.0.0.1:5000/svcbuild/charts/acme-shop'
 */
export async function publishServiceChart(opts: PublishChartOptions): Promise<PublishedChart> {
  const { registry, name, version } = opts;
  const issues: Issue[] = [];
  if (!CHART_NAME_RE.test(name) || name.length > 53) {
    issues.push({ path: 'name', message: `"${name}" must be lower-case letters, digits and hyphens (at most 53)` });
  }
  if (!SEMVER_RE.test(version)) issues.push({ path: 'version', message: `"${version}" is not a SemVer 2 version without build metadata` });
  if (registry.plainHttp && !plainHttpAllowed(registry.host)) {
    issues.push({ path: 'registry.plainHttp', message: plainHttpRefusal(registry.host) });
  }
  if ((registry.username === undefined) !== (registry.password === undefined)) {
    issues.push({ path: 'registry.password', message: 'set both username and password, or neither' });
  }
  if (issues.length) throw new InputError('cannot publish the service chart', issues);

  const helm = opts.helm ?? 'helm';
  const exec: ExecOptions = { env: helmEnv(opts.workDir), onLine: opts.onLine };
  const plain = registry.plainHttp ? ['--plain-http'] : [];

  // The copy is named after the chart: helm package names the .tgz after Chart.yaml anyway.
  const chartDir = join(opts.workDir, 'chart', name);
  await rm(chartDir, { recursive: true, force: true });
  await mkdir(join(opts.workDir, 'chart'), { recursive: true });
  await cp(opts.chartSrcDir, chartDir, { recursive: true });

  const chartYamlPath = join(chartDir, 'Chart.yaml');
  const chartYaml = parseYaml(await readFile(chartYamlPath, 'utf8')) as Record<string, unknown>;
  chartYaml.name = name;
  chartYaml.version = version;
  chartYaml.appVersion = opts.appVersion ?? version;
  await writeFile(chartYamlPath, stringifyYaml(chartYaml));
  // The pushed values.yaml replaces the chart's own: it must hold the defaults too.
  const valuesPath = join(chartDir, 'values.yaml');
  const defaults: unknown = parseYaml(await readFile(valuesPath, 'utf8')) ?? {};
  await writeFile(valuesPath, stringifyYaml(mergeValues(defaults, opts.values)));

  await runOk(helm, ['lint', '--strict', chartDir], exec);
  const pkgDir = join(opts.workDir, 'package');
  await mkdir(pkgDir, { recursive: true });
  await runOk(helm, ['package', chartDir, '--destination', pkgDir], exec);
  const tgz = join(pkgDir, `${name}-${version}.tgz`);

  if (registry.username !== undefined && registry.password !== undefined) {
    await runOk(helm, ['registry', 'login', registry.host, '--username', registry.username, '--password-stdin', ...plain], {
      ...exec,
      input: registry.password,
    });
  }
  const repo = chartRepositoryUrl(registry);
  const pushed = await runOk(helm, ['push', tgz, repo, ...plain], exec);
  const digest = parsePushDigest(pushed.output);
  if (!digest || !DIGEST_RE.test(digest)) {
    throw new UpstreamError(`helm push printed no Digest line:\n${pushed.output}`);
  }
  return { ref: `${repo}/${name}`, version, digest };
}

export interface DeployArgsOptions {
  /** Release name, normally the service name. */
  release: string;
  /** oci://.../charts/<name> (PublishedChart.ref). */
  chartRef: string;
  version: string;
  namespace: string;
  /** Extra values on top of the chart's own (a config change without a rebuild). */
  valuesFile?: string;
  /** Go duration; default 5m. */
  timeout?: string;
  /** Pull the chart over plain HTTP (loopback registries). */
  plainHttp?: boolean;
}

/**
 * Pure: the arguments of `helm upgrade --install` that deploy a service chart: wait until
 * it is ready (helm 4's kstatus `watcher`), and roll back to the last good release when it
 * is not, so the old version serves until the new one is ready.
 *
 * @example
 * deployArgs({ release: 'acme-shop', chartRef: chart.ref, version: chart.version, namespace: 'acme' })
 * // ['upgrade', '--install', 'acme-shop', 'oci://…/charts/acme-shop', '--version', '0.1.0-build-…',
 * //  '--namespace', 'acme', '--rollback-on-failure', '--wait=watcher', '--timeout', '5m']
 */
export function deployArgs(opts: DeployArgsOptions): string[] {
  return [
    'upgrade',
    '--install',
    opts.release,
    opts.chartRef,
    '--version',
    opts.version,
    '--namespace',
    opts.namespace,
    '--rollback-on-failure',
    // --wait takes an optional value, so it must be attached with `=`.
    '--wait=watcher',
    '--timeout',
    opts.timeout ?? '5m',
    ...(opts.valuesFile ? ['--values', opts.valuesFile] : []),
    ...(opts.plainHttp ? ['--plain-http'] : []),
  ];
}

/** Positional form of deployArgs. */
export function helmUpgradeArgs(release: string, chartRef: string, version: string, namespace: string, valuesFile?: string): string[] {
  return deployArgs({ release, chartRef, version, namespace, valuesFile });
}
