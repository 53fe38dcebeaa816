/**
 * `svcbuild install`: server-side apply of the rendered WorkflowTemplates and of the build
 * namespace's accounts and RBAC (from `helm template charts/svcbuild`) into a cluster.
 * Server-side apply with one field manager makes a second install a no-op and an upgrade
 * a precise update.
 */
import { join } from 'node:path';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { runOk } from '../../util/exec.js';
import { kubeError } from './executor.js';

export const FIELD_MANAGER = 'svcbuild';

/** Kinds of the chart `install` applies: accounts, RBAC and the executor's token Secret. */
export const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'Secret']);

export interface InstallOptions {
  namespace: string;
  tenantNamespaces?: string[];
  /** Directory of charts/svcbuild; RBAC is skipped when null. */
  chartDir?: string | null;
  helm?: string;
}

/** Renders the chart's accounts and RBAC with the real `helm template`. */
export async function renderRbac(opts: InstallOptions & { chartDir: string }): Promise<KubernetesObject[]> {
  const args = ['template', 'svcbuild', opts.chartDir, '--namespace', opts.namespace];
  (opts.tenantNamespaces ?? []).forEach((ns, i) => args.push('--set-string', `tenantNamespaces[${i}]=${ns}`));
  const { stdout } = await runOk(opts.helm ?? 'helm', args);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => !!o && RBAC_KINDS.has(o.kind ?? ''));
}

/** Server-side applies objects (namespaced ones default to `namespace`); returns "Kind/name" of each. */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], namespace: string): Promise<string[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: string[] = [];
  for (const obj of objects) {
    const body = { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? namespace } };
    const what = `${body.kind}/${body.metadata.name}`;
    try {
      await api.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw kubeError(err, `apply ${body.metadata.namespace}/${what}`);
    }
    applied.push(what);
  }
  return applied;
}

/** The chart shipped with this installation. */
export function defaultChartDir(home: string): string {
  return join(home, 'charts', 'svcbuild');
}
