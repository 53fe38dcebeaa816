/**
 * `svcbuild install`: server-side apply of the rendered WorkflowTemplates and of the build
 * namespace's accounts and RBAC (from `helm template charts/svcbuild`) into a cluster.
 * Server-side apply with one field manager makes a second install a no-op and an upgrade
 * a precise update.
 *
 * The concurrency ConfigMap is the exception: operators tune its values, so svcbuild only
 * ever adds the keys it lacks ({@link ensureConfigMapKeys}), never applies the whole object.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ConflictError, type Issue } from '../../errors.js';
import { BASE_IMAGES_CONCURRENCY_KEY, CA_BUNDLE_KEY } from '../../render/settings.js';
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

/** The ConfigMap `install --ca-bundle` writes: key `ca-certificates.crt`, the PEM bundle. */
export const CA_BUNDLE_CONFIGMAP = 'svcbuild-ca-bundle';
/** A ConfigMap holds at most 1 MiB. */
const CONFIGMAP_MAX_BYTES = 1024 * 1024;
const LABELS = { 'app.kubernetes.io/name': 'svcbuild' };

/**
 * Pure: checks a CA bundle (PEM certificates, nothing else) for the ConfigMap; every problem
 * is an issue of `flag`.
 */
export function checkCaBundle(text: string, flag = '--ca-bundle'): Issue[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length)
    return [
      {
        path: flag,
        message: 'holds no PEM certificate (-----BEGIN CERTIFICATE-----); give a CA bundle such as /etc/ssl/certs/ca-certificates.crt',
      },
    ];
  const issues: Issue[] = [];
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (e) {
      issues.push({
        path: flag,
        message: `certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate (${(e as Error).message})`,
      });
    }
  });
  if (Buffer.byteLength(text) > CONFIGMAP_MAX_BYTES) {
    issues.push({
      path: flag,
      message: `${Buffer.byteLength(text)} bytes: a ConfigMap holds at most 1 MiB; give only the CAs the builds need`,
    });
  }
  return issues;
}

/** Pure: the ConfigMap `svcbuild-ca-bundle` holding a bundle checked by {@link checkCaBundle}. */
export function caBundleConfigMap(pem: string, name = CA_BUNDLE_CONFIGMAP): KubernetesObject & { data: Record<string, string> } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, labels: { ...LABELS, 'app.kubernetes.io/component': 'ca-bundle' } },
    data: { [CA_BUNDLE_KEY]: pem },
  };
}

/**
 * Pure: the semaphore keys of the concurrency ConfigMap: `perTenant` builds for each tenant,
 * one base image build at a time.
 */
export function concurrencyKeys(tenants: string[], perTenant: number, baseImageKey = BASE_IMAGES_CONCURRENCY_KEY): Record<string, string> {
  return { [baseImageKey]: '1', ...Object.fromEntries(tenants.map((t) => [t, String(perTenant)])) };
}

/** Pure: the entries of `wanted` whose keys `existing` lacks (a key that is there is never changed). */
export function missingKeys(existing: Record<string, string> | undefined, wanted: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(wanted).filter(([k]) => existing?.[k] === undefined));
}

export interface EnsuredKeys {
  /** The ConfigMap did not exist and was created. */
  created: boolean;
  /** Keys added, sorted. */
  added: string[];
  /** Keys of `wanted` that were already there, left as they are, sorted. */
  kept: string[];
}

const isStatus = (e: unknown, code: number) => e instanceof ApiException && e.code === code;

/**
 * Adds to ConfigMap `namespace/name` the keys of `wanted` it lacks, creating it when it does
 * not exist; a key already there keeps its value. Not server-side apply, which would take
 * ownership of the values and delete keys a later call leaves out: a create, or a merge patch
 * of the missing keys only, conditional on the resourceVersion read (a concurrent change makes
 * it read again).
 *
 * @example await ensureConfigMapKeys(core, 'svcbuild-builds', 'svcbuild-concurrency', { acme: '2' })
 */
export async function ensureConfigMapKeys(
  core: CoreV1Api,
  namespace: string,
  name: string,
  wanted: Record<string, string>,
): Promise<EnsuredKeys> {
  const what = `ConfigMap ${namespace}/${name}`;
  const sorted = (keys: string[]) => [...keys].sort();
  for (let attempt = 0; attempt < 5; attempt++) {
    let current: V1ConfigMap | undefined;
    try {
      current = await core.readNamespacedConfigMap({ name, namespace });
    } catch (err) {
      if (!isStatus(err, 404)) throw kubeError(err, `read ${what}`);
    }
    if (!current) {
      try {
        await core.createNamespacedConfigMap({
          namespace,
          fieldManager: FIELD_MANAGER,
          body: { metadata: { name, labels: { ...LABELS, 'app.kubernetes.io/component': 'concurrency' } }, data: wanted },
        });
        return { created: true, added: sorted(Object.keys(wanted)), kept: [] };
      } catch (err) {
        if (isStatus(err, 409)) continue; // created meanwhile: read it again
        throw kubeError(err, `create ${what}`);
      }
    }
    const missing = missingKeys(current.data, wanted);
    const kept = sorted(Object.keys(wanted).filter((k) => !(k in missing)));
    if (!Object.keys(missing).length) return { created: false, added: [], kept };
    try {
      await core.patchNamespacedConfigMap(
        {
          name,
          namespace,
          fieldManager: FIELD_MANAGER,
          body: { metadata: { resourceVersion: current.metadata?.resourceVersion }, data: missing },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return { created: false, added: sorted(Object.keys(missing)), kept };
    } catch (err) {
      if (isStatus(err, 409)) continue; // changed meanwhile: read it again
      throw kubeError(err, `add keys ${Object.keys(missing).join(', ')} to ${what}`);
    }
  }
  throw new ConflictError(`${what} kept changing while svcbuild added keys to it; try again`);
}
