/** `svcbuild install`: server-side apply of the WorkflowTemplates, RBAC and ConfigMaps into a cluster. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { CliContext } from '../context.js';
import { InputError, type Issue } from '../../errors.js';
import { isTenantName, readTemplateSources, renderWorkflowTemplates, settingsFromConfig } from '../../render/index.js';
import {
  CA_BUNDLE_CONFIGMAP,
  applyObjects,
  caBundleConfigMap,
  checkCaBundle,
  concurrencyKeys,
  defaultChartDir,
  ensureConfigMapKeys,
  renderRbac,
} from '../../executors/argo/install.js';
import { tenantNamespaceOf } from '../../executors/argo/build-executor.js';

const HELP = `usage: svcbuild install --namespace NS [--kubeconfig FILE] [--tenant NAME]... [--tenant-namespace NS]...
                        [--concurrency N] [--ca-bundle FILE] [--step-image REF] [--no-rbac]

Applies (server-side, field manager "svcbuild") into the build namespace NS:
  - the WorkflowTemplates rendered from this installation's config (see \`svcbuild render\`);
  - the build accounts and RBAC of charts/svcbuild (\`helm template\`): svcbuild-build,
    svcbuild-executor (and its token Secret), svcbuild-deploy with a Role in each tenant namespace;
  - with --ca-bundle, ConfigMap ${CA_BUNDLE_CONFIGMAP} (key ca-certificates.crt), mounted over the
    builder's CA bundle so installers in RUN steps trust those CAs;
and adds to ConfigMap svcbuild-concurrency (created if missing) the semaphore keys it lacks:
base-images=1 and <tenant>=N for each --tenant. A key already there keeps its value.

  --namespace NS          build namespace (must exist)
  --kubeconfig FILE       default: $KUBECONFIG or ~/.kube/config
  --tenant NAME           a tenant (repeatable): its concurrency key, and the deploy Role in its
                          namespace (config executor.tenantNamespace, default tenant-{tenant}; must exist)
  --tenant-namespace NS   another namespace the deploy step may deploy into (repeatable; must exist)
  --concurrency N         concurrent builds of each new tenant key (default: config
                          executor.tenantConcurrency, 2)
  --ca-bundle FILE        PEM CA bundle for the builder, e.g. /etc/ssl/certs/ca-certificates.crt
  --step-image REF        the svcbuild step image
  --no-rbac               apply no accounts or RBAC
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      'tenant-namespace': { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      'ca-bundle': { type: 'string' },
      'step-image': { type: 'string' },
      'no-rbac': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const config = await ctx.config();
  const issues: Issue[] = [];
  const namespace = values.namespace;
  if (!namespace) issues.push({ path: '--namespace', message: 'required: the build namespace, e.g. --namespace svcbuild-builds' });
  const tenants = [...new Set(values.tenant ?? [])];
  for (const t of tenants) {
    if (!isTenantName(t))
      issues.push({ path: '--tenant', message: `"${t}" is not a tenant: a lower-case DNS label of at most 30 characters` });
  }
  const concurrency = values.concurrency === undefined ? config.executor.tenantConcurrency : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    issues.push({ path: '--concurrency', message: `"${values.concurrency}" is not a whole number of builds from 1 to 1000` });
  }
  let caBundle: string | undefined;
  if (values['ca-bundle'] !== undefined) {
    const file = resolve(values['ca-bundle']);
    try {
      caBundle = await readFile(file, 'utf8');
      issues.push(...checkCaBundle(caBundle).map((i) => ({ ...i, message: `${file} ${i.message}` })));
    } catch (e) {
      issues.push({ path: '--ca-bundle', message: `cannot read ${file} (${(e as Error).message}); give a readable PEM file` });
    }
  }
  if (issues.length || !namespace) throw new InputError('bad arguments (see `svcbuild install --help`)', issues);

  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const settings = settingsFromConfig(config, {
    ...(values['step-image'] ? { stepImage: values['step-image'] } : {}),
    ...(caBundle !== undefined ? { builder: { caBundleConfigMap: CA_BUNDLE_CONFIGMAP } } : {}),
  });
  const tenantNamespaces = [
    ...new Set([...tenants.map((t) => tenantNamespaceOf(config.executor.tenantNamespace, t)), ...(values['tenant-namespace'] ?? [])]),
  ];
  const first: KubernetesObject[] = [
    ...(values['no-rbac'] ? [] : await renderRbac({ namespace, tenantNamespaces, chartDir: defaultChartDir(ctx.home) })),
    ...(caBundle !== undefined ? [caBundleConfigMap(caBundle)] : []),
  ];
  for (const what of await applyObjects(kc, first, namespace)) ctx.stdout.write(`applied ${what}\n`);

  // Before the templates: a Workflow submitted the moment they exist finds its semaphore key.
  const { configMap, baseImageKey } = settings.concurrency;
  const wanted = concurrencyKeys(tenants, concurrency, baseImageKey);
  const keys = await ensureConfigMapKeys(kc.makeApiClient(CoreV1Api), namespace, configMap, wanted);
  const detail = [
    ...(keys.added.length ? [`added ${keys.added.map((k) => `${k}=${wanted[k]}`).join(', ')}`] : []),
    ...(keys.kept.length ? [`kept ${keys.kept.join(', ')}`] : []),
  ];
  ctx.stdout.write(`applied ConfigMap/${configMap} (${detail.join('; ')})\n`);

  const templates = renderWorkflowTemplates(settings, readTemplateSources(join(ctx.home, 'workflow-templates')));
  for (const what of await applyObjects(kc, templates, namespace)) ctx.stdout.write(`applied ${what}\n`);
  return 0;
}
