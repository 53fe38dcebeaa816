/** `svcbuild install`: server-side apply of the WorkflowTemplates and RBAC into a cluster. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { CliContext } from '../context.js';
import { InputError } from '../../errors.js';
import { readTemplateSources, renderWorkflowTemplates, settingsFromConfig } from '../../render/index.js';
import { applyObjects, defaultChartDir, renderRbac } from '../../executors/argo/install.js';

const HELP = `usage: svcbuild install --namespace NS [--kubeconfig FILE] [--tenant-namespace NS]... [--no-rbac]

Applies (server-side, field manager "svcbuild") into the build namespace NS:
  - the WorkflowTemplates rendered from this installation's config (see \`svcbuild render\`);
  - the build accounts and RBAC of charts/svcbuild (\`helm template\`): svcbuild-build,
    svcbuild-executor (and its token Secret), svcbuild-deploy with a Role in each tenant namespace.

  --namespace NS          build namespace (must exist)
  --kubeconfig FILE       default: $KUBECONFIG or ~/.kube/config
  --tenant-namespace NS   a namespace the deploy step may deploy into (repeatable; must exist)
  --step-image REF        the svcbuild step image
  --no-rbac               apply only the WorkflowTemplates
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      'tenant-namespace': { type: 'string', multiple: true },
      'step-image': { type: 'string' },
      'no-rbac': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (!values.namespace) throw new InputError('--namespace is required', [{ path: 'namespace', message: 'the build namespace' }]);
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const config = await ctx.config();
  const settings = settingsFromConfig(config, values['step-image'] ? { stepImage: values['step-image'] } : {});
  const objects = [
    ...(values['no-rbac']
      ? []
      : await renderRbac({
          namespace: values.namespace,
          tenantNamespaces: values['tenant-namespace'] ?? [],
          chartDir: defaultChartDir(ctx.home),
        })),
    ...renderWorkflowTemplates(settings, readTemplateSources(join(ctx.home, 'workflow-templates'))),
  ];
  for (const what of await applyObjects(kc, objects, values.namespace)) ctx.stdout.write(`applied ${what}\n`);
  return 0;
}
