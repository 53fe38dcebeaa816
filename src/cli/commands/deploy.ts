/**
 * `svcbuild deploy`: the workflow's deploy step. `helm upgrade --install` of the chart publish
 * pushed (checked by digest) into the tenant namespace; writes `<outputs>/revision`.
 */
import { parseArgs } from 'node:util';
import { qualifiedName, checkServiceName } from '../../domain/names.js';
import { InputError } from '../../errors.js';
import { runDeployStep } from '../../steps/deploy.js';
import { parseChartRef } from '../../steps/publish.js';
import { FlagIssues, dirFlag, jsonObjectFlag, stepRegistryClient, writeOutput } from '../../steps/common.js';
import { parseChartSettings, renderStepValues, type ChartSettings } from '../../steps/values.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild deploy --chart=oci://HOST/PATH/NAME:VERSION@DIGEST --namespace=NS
                       --tenant=T --service=S [--values=JSON] [--wait] [--rollback-on-failure]
                       [--timeout=5m] --outputs=DIR [--json]

Installs or upgrades the release <tenant>-<service> from the chart publish pushed (its digest
is checked first) with helm, in namespace NS. Writes DIR/revision. Needs a kubeconfig
(KUBECONFIG) or the pod's service account.

options:
  --chart REF            the chart-ref publish wrote
  --namespace NS         the tenant namespace
  --tenant T, --service S  name the release (<tenant>-<service>, also the chart's name)
  --values JSON          the service settings, applied on top of the chart's values
  --wait                 wait until the release is ready
  --rollback-on-failure  roll back to the last good release when it does not become ready
  --timeout D            how long to wait (Go duration, default 5m)
  --outputs DIR          directory of the output files
  --json                 print the result as JSON
  -h, --help             show this help

Exit 6 when the cluster or registry fails (retried), 7 when the release never became ready.`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      chart: { type: 'string' },
      namespace: { type: 'string' },
      tenant: { type: 'string' },
      service: { type: 'string' },
      values: { type: 'string' },
      wait: { type: 'boolean', default: false },
      'rollback-on-failure': { type: 'boolean', default: false },
      timeout: { type: 'string' },
      outputs: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    ctx.stdout.write(USAGE + '\n');
    return 0;
  }
  const config = await ctx.config();
  const issues = new FlagIssues('deploy', USAGE);
  const chartValue = issues.required(values, 'chart');
  const chart = chartValue !== undefined ? parseChartRef(chartValue) : undefined;
  if (chartValue !== undefined && !chart)
    issues.add('chart', `"${chartValue}" is not oci://host/path/name:version@sha256:<64 hex> (the chart-ref publish writes)`);
  if (chart && chart.host !== config.registry.host)
    issues.add('chart', `is on registry ${chart.host}, not on the configured registry ${config.registry.host}`);
  const namespace = issues.required(values, 'namespace');
  if (namespace !== undefined && (!DNS_LABEL.test(namespace) || namespace.length > 63))
    issues.add('namespace', `"${namespace}" is not a namespace name`);
  const tenant = issues.required(values, 'tenant');
  const service = issues.required(values, 'service');
  if (tenant !== undefined && service !== undefined) {
    const bad = checkServiceName(service, tenant, '--service');
    issues.issues.push(...bad);
    if (!bad.length && chart && chart.name !== qualifiedName(tenant, service)) {
      issues.add('chart', `is the chart of ${chart.name}, not of ${qualifiedName(tenant, service)}`);
    }
  }
  if (values.timeout !== undefined && !/^(\d+(ms|s|m|h))+$/.test(values.timeout))
    issues.add('timeout', `"${values.timeout}" is not a duration like 90s or 5m`);
  const outputs = dirFlag(issues, 'outputs', issues.required(values, 'outputs'));
  const raw = jsonObjectFlag(issues, 'values', values.values);
  let settings: Partial<ChartSettings> = {};
  if (raw) {
    try {
      settings = parseChartSettings(raw);
      // The same checks publish made, so a bad value fails here before helm runs.
      renderStepValues({
        mode: 'image',
        image: { repository: 'registry.invalid/check', digest: `sha256:${'0'.repeat(64)}` },
        port: 8080,
        ...settings,
      });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      issues.issues.push(...e.issues);
    }
  }
  issues.check();

  const res = await runDeployStep({
    config,
    client: stepRegistryClient(config),
    release: qualifiedName(tenant!, service!),
    chart: chart!,
    namespace: namespace!,
    values: chartValuesOf(settings),
    wait: values.wait,
    rollbackOnFailure: values['rollback-on-failure'],
    ...(values.timeout ? { timeout: values.timeout } : {}),
  });
  await writeOutput(outputs!, 'revision', String(res.revision));
  if (values.json)
    ctx.stdout.write(JSON.stringify({ release: qualifiedName(tenant!, service!), namespace, revision: res.revision }) + '\n');
  else ctx.stdout.write(`deployed ${qualifiedName(tenant!, service!)} in ${namespace}: revision ${res.revision}\n`);
  return 0;
}

/** The service settings as chart values (a route path becomes a route object). */
function chartValuesOf(s: Partial<ChartSettings>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined));
}
