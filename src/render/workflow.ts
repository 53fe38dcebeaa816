/**
 * Pure: a build submission -> the Argo Workflow that runs it. The Workflow only references the
 * installed WorkflowTemplate (`workflowTemplateRef`, as `templateReferencing: Strict` requires)
 * and carries the submission's values as `arguments.parameters`: plain strings that Argo
 * substitutes into argv elements, never template text and never a shell command.
 *
 * Its name is derived from a hash of what the build is, so submitting the same thing twice
 * names the same Workflow and the apiserver's AlreadyExists makes the second submit a no-op.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { Kind } from '../config/schema.js';
import { checkServiceName } from '../domain/names.js';
import { InputError, type Issue } from '../errors.js';

/** Where the project comes from: an uploaded archive already pushed by digest, or git. */
export type BuildSource = { kind: 'archive'; ref: string } | { kind: 'git'; url: string; ref: string; subdir?: string };

/** One service build to run on Argo. */
export interface BuildSubmission {
  tenant: string;
  service: string;
  language: Kind;
  source: BuildSource;
  /** Base image name (catalog key) and its reference by digest. */
  base: string;
  baseRef: string;
  /** Repository of the service image: `<registry>/<namespace>/<tenant>-<service>`. */
  imageRepo: string;
  /** Tenant namespace the service is deployed into. */
  namespace: string;
  /** Values of the service chart (route, port, env, resources, replicas). */
  chartValues?: Record<string, unknown>;
  scanThreshold?: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
  /**
   * A client's request key: when set, the build's identity is (tenant, service, key) instead of
   * the content of the submission.
   */
  idempotencyKey?: string;
  /** Namespace the Workflow is created in (where the WorkflowTemplates are installed). */
  buildNamespace?: string;
  /** Name of the WorkflowTemplate; default `svcbuild-build`. */
  template?: string;
}

/** A Workflow as submitted; Argo's schema (test/render) checks its full shape. */
export interface WorkflowObject {
  apiVersion: 'argoproj.io/v1alpha1';
  kind: 'Workflow';
  metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    workflowTemplateRef: { name: string };
    arguments: { parameters: Array<{ name: string; value: string }> };
  };
}

/** Labels every build Workflow carries (also set by the template's workflowMetadata). */
export const LABELS = {
  tenant: 'svcbuild.io/tenant',
  service: 'svcbuild.io/service',
  buildId: 'svcbuild.io/build-id',
  language: 'svcbuild.io/language',
  kind: 'svcbuild.io/kind',
} as const;

const TENANT_RE = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

/** True for a valid tenant: a lower-case DNS label of at most 30 characters (also a ConfigMap key). */
export function isTenantName(tenant: string): boolean {
  return TENANT_RE.test(tenant) && tenant.length <= 30;
}
const DIGEST_REF_RE = /@sha256:[0-9a-f]{64}$/;
const THRESHOLDS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

function checkSubmission(s: BuildSubmission): Issue[] {
  const issues: Issue[] = [];
  if (!isTenantName(s.tenant)) {
    issues.push({ path: 'tenant', message: `"${s.tenant}" is not a valid tenant: a lower-case DNS label of at most 30 characters` });
  } else {
    issues.push(...checkServiceName(s.service, s.tenant, 'service'));
  }
  if (s.source.kind === 'archive') {
    if (!DIGEST_REF_RE.test(s.source.ref))
      issues.push({ path: 'source.ref', message: 'must be a reference by digest (repo@sha256:<64 hex>)' });
  } else {
    if (!/^(https?|ssh|git):\/\/|^[\w.-]+@[\w.-]+:/.test(s.source.url))
      issues.push({ path: 'source.url', message: 'must be a git URL (https://, ssh://, git:// or user@host:path)' });
    if (!s.source.ref) issues.push({ path: 'source.ref', message: 'a branch, tag or commit is required' });
  }
  if (!DIGEST_REF_RE.test(s.baseRef)) issues.push({ path: 'baseRef', message: 'must be a reference by digest (repo@sha256:<64 hex>)' });
  if (!s.imageRepo || /[@:]\S*$/.test(s.imageRepo.replace(/^[^/]*\//, ''))) {
    issues.push({ path: 'imageRepo', message: 'must be a repository without tag or digest' });
  }
  if (!TENANT_RE.test(s.namespace)) issues.push({ path: 'namespace', message: `"${s.namespace}" is not a namespace name` });
  if (s.scanThreshold && !THRESHOLDS.includes(s.scanThreshold)) {
    issues.push({ path: 'scanThreshold', message: `one of ${THRESHOLDS.join(', ')}` });
  }
  return issues;
}

/** Pure: the submission's parameters, without build-id (which is derived from them). */
function parametersOf(s: BuildSubmission): Array<{ name: string; value: string }> {
  const git = s.source.kind === 'git' ? s.source : undefined;
  return [
    { name: 'tenant', value: s.tenant },
    { name: 'service', value: s.service },
    { name: 'language', value: s.language },
    { name: 'source-kind', value: s.source.kind },
    { name: 'source-ref', value: s.source.kind === 'archive' ? s.source.ref : '' },
    { name: 'git-url', value: git?.url ?? '' },
    { name: 'git-ref', value: git?.ref ?? '' },
    { name: 'git-subdir', value: git?.subdir ?? '' },
    { name: 'base', value: s.base },
    { name: 'base-ref', value: s.baseRef },
    { name: 'image-repo', value: s.imageRepo },
    { name: 'namespace', value: s.namespace },
    { name: 'chart-values', value: canonicalJson(s.chartValues ?? {}) },
    { name: 'scan-threshold', value: s.scanThreshold ?? 'HIGH' },
  ];
}

/** JSON with object keys sorted, so equal values hash equally. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Pure: the build id of a submission, 12 hex characters of a SHA-256 over its identity:
 * (tenant, service, idempotency key) when a key is given, else every parameter.
 */
export function buildIdOf(s: BuildSubmission): string {
  const identity = s.idempotencyKey !== undefined ? ['key', s.tenant, s.service, s.idempotencyKey] : ['content', parametersOf(s)];
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 12);
}

/**
 * Pure: the Workflow for a submission; throws one InputError listing every bad field.
 *
 * @example renderWorkflow({ tenant: 'acme', service: 'api', ... }).metadata.name // 'acme-api-3f9c0e12ab45'
 */
export function renderWorkflow(s: BuildSubmission): WorkflowObject {
  const issues = checkSubmission(s);
  if (issues.length) throw new InputError('invalid build submission', issues);
  const buildId = buildIdOf(s);
  const parameters = parametersOf(s);
  parameters.splice(2, 0, { name: 'build-id', value: buildId });
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name: `${s.tenant}-${s.service}-${buildId}`,
      ...(s.buildNamespace ? { namespace: s.buildNamespace } : {}),
      labels: {
        [LABELS.tenant]: s.tenant,
        [LABELS.service]: s.service,
        [LABELS.buildId]: buildId,
        [LABELS.language]: s.language,
        [LABELS.kind]: 'service-build',
      },
      annotations: {
        'workflows.argoproj.io/title': `build ${s.tenant}/${s.service}`,
        'workflows.argoproj.io/description': `build ${buildId} of ${s.tenant}/${s.service} (${s.language}) on ${s.base}`,
      },
    },
    spec: {
      workflowTemplateRef: { name: s.template ?? 'svcbuild-build' },
      arguments: { parameters },
    },
  };
}

/** Pure: {@link renderWorkflow} as YAML, for `kubectl create -f -` or `argo submit`. */
export function renderWorkflowYaml(s: BuildSubmission): string {
  return stringify(renderWorkflow(s));
}
