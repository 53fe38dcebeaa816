/**
 * `svcbuild publish`: renders the service chart of a build (image and overlay by digest, the
 * service settings of --values), pushes it, promotes the image, writes `<outputs>/chart-ref`.
 */
import { parseArgs } from 'node:util';
import { chartVersionFor } from '../../chart/values.js';
import { checkServiceName } from '../../domain/names.js';
import { InputError } from '../../errors.js';
import { runPublishStep } from '../../steps/publish.js';
import { FlagIssues, dirFlag, jsonObjectFlag, refFlag, stepRegistryClient, writeOutput } from '../../steps/common.js';
import { parseChartSettings, type ChartSettings } from '../../steps/values.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild publish --image=REPO@DIGEST --overlay=REPO@DIGEST --base=REF@DIGEST
                        --tenant=T --service=S --build-id=ID [--values=JSON] --outputs=DIR
                        [--fetcher-image=REF@DIGEST] [--json]

Renders the platform-service chart of the build and pushes it to the registry
(oci://<registry>/<namespace>/charts/<tenant>-<service>, version 0.1.0-build-<id>), then
promotes the image (tag release-<id>). Writes DIR/chart-ref: oci://...:<version>@<digest>.

options:
  --image REF          the built image, by digest
  --overlay REF        its overlay artifact, by digest
  --base REF           its base image, by digest
  --tenant T           tenant of the service
  --service S          service name (without the tenant prefix)
  --build-id ID        the build id (letters, digits, -)
  --values JSON        the service settings: {"port", "route", "env", "envFrom", "resources",
                       "replicas", "imagePullSecrets"}; default {}
  --outputs DIR        directory of the output files
  --fetcher-image REF  init-container image of overlay mode (default: svcbuild's fetcher)
  --json               print the result as JSON
  -h, --help           show this help`;

const TENANT_RE = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      image: { type: 'string' },
      overlay: { type: 'string' },
      base: { type: 'string' },
      tenant: { type: 'string' },
      service: { type: 'string' },
      'build-id': { type: 'string' },
      values: { type: 'string' },
      outputs: { type: 'string' },
      'fetcher-image': { type: 'string' },
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
  const host = config.registry.host;
  const issues = new FlagIssues('publish', USAGE);
  const image = refFlag(issues, 'image', issues.required(values, 'image'), host, { digest: 'required' });
  const overlay = refFlag(issues, 'overlay', issues.required(values, 'overlay'), host, { digest: 'required' });
  const base = refFlag(issues, 'base', issues.required(values, 'base'), host, { digest: 'required' });
  if (image && overlay && overlay.repo !== image.repo)
    issues.add('overlay', `must be in the image's repository ${image.host}/${image.repo}`);
  const tenant = issues.required(values, 'tenant');
  if (tenant !== undefined && (!TENANT_RE.test(tenant) || tenant.length > 30))
    issues.add('tenant', `"${tenant}" is not a tenant: a lower-case DNS label of at most 30 characters`);
  const service = issues.required(values, 'service');
  if (service !== undefined && tenant !== undefined) for (const i of checkServiceName(service, tenant, '--service')) issues.issues.push(i);
  const buildId = issues.required(values, 'build-id');
  if (buildId !== undefined) {
    try {
      chartVersionFor(buildId);
    } catch {
      issues.add('build-id', `"${buildId}" must be 1 to 64 letters, digits or hyphens`);
    }
  }
  const fetcher = values['fetcher-image'];
  if (fetcher !== undefined) refFlag(issues, 'fetcher-image', fetcher, host, { digest: 'required', anyHost: true });
  const outputs = dirFlag(issues, 'outputs', issues.required(values, 'outputs'));
  const raw = jsonObjectFlag(issues, 'values', values.values);
  let settings: Partial<ChartSettings> = {};
  if (raw) {
    try {
      settings = parseChartSettings(raw);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      issues.issues.push(...e.issues);
    }
  }
  issues.check();

  const res = await runPublishStep({
    config,
    home: ctx.home,
    client: stepRegistryClient(config),
    image: { ...image!, digest: image!.digest! },
    overlay: { ...overlay!, digest: overlay!.digest! },
    base: { ...base!, digest: base!.digest! },
    tenant: tenant!,
    service: service!,
    buildId: buildId!,
    settings,
    ...(fetcher !== undefined ? { fetcherImage: fetcher } : {}),
  });
  await writeOutput(outputs!, 'chart-ref', res.chartRef);
  if (values.json) ctx.stdout.write(JSON.stringify(res) + '\n');
  else ctx.stdout.write(`chart ${res.chartRef}\npromoted ${res.promoted}\n`);
  return 0;
}
