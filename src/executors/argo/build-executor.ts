/**
 * The argo executor behind the API: implements {@link Executor} with builds as Argo Workflows.
 * The Workflow objects are the only state: a record is always read back from its Workflow.
 *
 * - submit (archive): the uploaded project is read just enough to decide the service name and
 *   kind (staged and planned like a local build), packed as a deterministic tar.gz and pushed
 *   as an OCI artifact (`application/vnd.svcbuild.source.v1`) into the service's repository
 *   `<registry>/<namespace>/<tenant>-<service>`; the Workflow gets it by digest. Git sources
 *   pass through: the pipeline's source step clones them, so `spec.kind` is required and the
 *   name defaults to the repository's.
 * - base images are resolved by digest from the tag `current`:
 *   `<registry>/<namespace>/base/<name>:current` must point at the newest build of each catalog
 *   image (the base-image workflow or `svcbuild base` push it); a missing tag is an InputError
 *   telling the operator to build and push the base images.
 * - the build id is the Workflow's name, derived by renderWorkflow from what the build is (or
 *   from tenant, service and Idempotency-Key): submitting the same thing twice gives one build.
 * - before a Workflow is created, the tenant's key in the semaphore ConfigMap
 *   `svcbuild-concurrency` is added if missing (`executor.tenantConcurrency` builds; a key
 *   that is there is never changed): without it Argo fails the Workflow ("failed to
 *   initialize semaphore"). An account that may not do so (403) leaves it to the operator
 *   (`svcbuild install --tenant`).
 * - get/list read Workflows by their labels; another tenant's Workflow is not found.
 * - services: deployed releases live in the tenant namespace and are managed with helm there;
 *   this executor does not track them. getService is NotFoundError, listServices is empty,
 *   updateService and deleteService are ConflictError.
 */
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Config, Kind } from '../../config/schema.js';
import { KINDS } from '../../config/schema.js';
import { TERMINAL, type BuildRecord, type BuildSpec, type BuildStatus, type SourceInfo } from '../../domain/build.js';
import { checkServiceName, qualifiedName, suggestName } from '../../domain/names.js';
import type { StepRecord } from '../../domain/progress.js';
import { ConflictError, InputError, NotFoundError, UpstreamError, type Issue } from '../../errors.js';
import { selectProvider } from '../../providers/index.js';
import { stageProject } from '../../providers/project.js';
import { registryClientFor, type RegistryClient } from '../../registry/client.js';
import { MEDIA_TYPES } from '../../registry/types.js';
import { CONCURRENCY_CONFIGMAP } from '../../render/settings.js';
import { LABELS, isTenantName, type BuildSubmission } from '../../render/workflow.js';
import type { ScanSummary } from '../../scan/step.js';
import { packProject, readProjectConfig } from '../../steps/project.js';
import { parseChartRef } from '../../steps/publish.js';
import { SOURCE_ARTIFACT_TYPE } from '../../steps/source.js';
import type { BuildFilter, Executor, ServiceConfig, ServiceRecord, Submission } from '../executor.js';
import { checkGitUrl } from '../local/executor.js';
import { resolveTag } from '../local/registry-probe.js';
import { BASE_CURRENT_TAG } from '../local/base-images.js';
import { ArgoExecutor, RETRY_OF_LABEL, kubeError } from './executor.js';
import { ensureConfigMapKeys } from './install.js';
import { PIPELINE_STEPS, viewOf, type ArgoWorkflow, type BuildView, type PipelineStep } from './status.js';

export { BASE_CURRENT_TAG };
/** Annotations the executor adds to a Workflow it created: the request as the API got it. */
export const SPEC_ANNOTATION = 'svcbuild.io/spec';
export const SOURCE_ANNOTATION = 'svcbuild.io/source';
const SERVICES_MESSAGE = 'services are managed with helm in the tenant namespace when the argo executor is used';
const BUILD_TEMPLATE = 'svcbuild-build';
/** Names the API may be asked for: anything else is simply not found. */
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,251}[a-z0-9])?$/;

export interface ArgoBuildExecutorOptions {
  config: Config;
  kubeConfig: KubeConfig;
  /** Namespace of the WorkflowTemplates, where build Workflows run; default config.executor.buildNamespace. */
  buildNamespace?: string;
  /** Tenant namespace template with `{tenant}`; default config.executor.tenantNamespace. */
  tenantNamespace?: string;
  argo?: ArgoExecutor;
  registry?: RegistryClient;
  core?: CoreV1Api;
  /** The semaphore ConfigMap of the installed templates; default `svcbuild-concurrency`. */
  concurrencyConfigMap?: string;
}

/** Pure: the tenant namespace of a template such as `tenant-{tenant}`. */
export function tenantNamespaceOf(template: string, tenant: string): string {
  return template.replaceAll('{tenant}', tenant);
}

export class ArgoBuildExecutor implements Executor {
  readonly name = 'argo' as const;
  readonly argo: ArgoExecutor;
  private readonly config: Config;
  private readonly namespace: string;
  private readonly tenantNamespace: string;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly registry: RegistryClient;
  private readonly concurrencyConfigMap: string;

  constructor(opts: ArgoBuildExecutorOptions) {
    this.config = opts.config;
    this.namespace = opts.buildNamespace ?? opts.config.executor.buildNamespace;
    this.tenantNamespace = opts.tenantNamespace ?? opts.config.executor.tenantNamespace;
    this.argo = opts.argo ?? new ArgoExecutor({ kubeConfig: opts.kubeConfig, namespace: this.namespace });
    this.custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = opts.core ?? opts.kubeConfig.makeApiClient(CoreV1Api);
    this.concurrencyConfigMap = opts.concurrencyConfigMap ?? CONCURRENCY_CONFIGMAP;
    this.registry = opts.registry ?? registryClientFor(opts.config.registry);
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** Ready when the apiserver answers and the build WorkflowTemplate is installed. */
  async ready(): Promise<boolean> {
    try {
      await this.custom.getNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: this.namespace,
        plural: 'workflowtemplates',
        name: BUILD_TEMPLATE,
      });
      return true;
    } catch {
      return false;
    }
  }

  async submit(s: Submission): Promise<{ record: BuildRecord; created: boolean }> {
    let submission: BuildSubmission;
    let source: SourceInfo;
    if (s.source.type === 'archive') {
      try {
        submission = await this.prepareArchive(s, s.source.dir);
      } finally {
        // The executor takes the directory over; the pushed artifact is all it keeps.
        await rm(s.source.dir, { recursive: true, force: true });
      }
      source = s.source.info;
    } else {
      submission = await this.prepareGit(s);
      const g = s.source.git;
      source = { type: 'git', url: g.url, ref: g.ref, subdirectory: g.subdirectory };
    }
    await this.ensureConcurrencyKey(submission.tenant);
    const res = await this.argo.submit(submission);
    let wf = res.workflow;
    if (res.created)
      wf = await this.annotate(res.name, { [SPEC_ANNOTATION]: JSON.stringify(s.spec), [SOURCE_ANNOTATION]: JSON.stringify(source) });
    return { record: recordOf(wf), created: res.created };
  }

  /** Decides name and kind from the project, pushes it, and resolves the base. */
  private async prepareArchive(s: Submission, dir: string): Promise<BuildSubmission> {
    const work = await mkdtemp(join(tmpdir(), 'svcbuild-argo-'));
    try {
      const project = await stageProject(dir, join(work, 'staged'));
      const pcfg = await readProjectConfig(project);
      const provider = selectProvider(
        project,
        s.spec.kind ?? pcfg.kind,
        this.config.enabledKinds,
        s.spec.kind ? 'spec.kind' : 'svcbuild.yaml.kind',
      );
      const baseName = s.spec.base ?? pcfg.base ?? this.config.defaults.base[provider.kind];
      const issues = this.checkBase(baseName, provider.kind);
      const spec = this.config.baseImages[baseName];
      const plan = await provider.plan(
        project,
        { name: baseName, kind: spec?.kind ?? provider.kind, ref: '', languageVersion: spec?.languageVersion },
        pcfg,
      );
      const name =
        s.spec.name ?? pcfg.name ?? (suggestName(plan.suggestedName ?? '') || suggestName(dir.split('/').filter(Boolean).pop() ?? ''));
      issues.push(...checkServiceName(name, s.tenant, s.spec.name ? 'spec.name' : 'name (from the project; set spec.name)'));
      if (issues.length) throw new InputError('the build request is invalid', issues);
      const baseRef = await this.baseRef(baseName);
      const repo = `${this.config.registry.namespace}/${qualifiedName(s.tenant, name)}`;
      const bytes = await packProject(project.root);
      const pushed = await this.registry.pushArtifact({
        repo,
        artifactType: SOURCE_ARTIFACT_TYPE,
        files: [{ mediaType: MEDIA_TYPES.ociLayerGzip, bytes }],
        annotations: { 'svcbuild.io/tenant': s.tenant, 'svcbuild.io/service': name },
      });
      return {
        tenant: s.tenant,
        service: name,
        language: provider.kind,
        source: { kind: 'archive', ref: `${this.config.registry.host}/${repo}@${pushed.digest}` },
        base: baseName,
        baseRef,
        imageRepo: `${this.config.registry.host}/${repo}`,
        namespace: tenantNamespaceOf(this.tenantNamespace, s.tenant),
        chartValues: this.chartValues(s.spec, pcfg),
        ...(s.idempotencyKey !== undefined ? { idempotencyKey: s.idempotencyKey } : {}),
      };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private async prepareGit(s: Submission): Promise<BuildSubmission> {
    if (s.source.type !== 'git') throw new Error('unreachable');
    const git = s.source.git;
    checkGitUrl(git.url);
    const issues: Issue[] = [];
    const kind = s.spec.kind;
    if (kind === undefined) {
      issues.push({ path: 'spec.kind', message: `required for a git source with the argo executor: one of ${KINDS.join(', ')}` });
    } else if (!(KINDS as readonly string[]).includes(kind)) {
      issues.push({ path: 'spec.kind', message: `"${kind}" is not a project kind; known kinds: ${KINDS.join(', ')}` });
    } else if (!this.config.enabledKinds.includes(kind as Kind)) {
      issues.push({ path: 'spec.kind', message: `"${kind}" is not enabled here (enabled: ${this.config.enabledKinds.join(', ')})` });
    }
    const repoName = (git.subdirectory.split('/').filter(Boolean).pop() ?? git.url.split('/').filter(Boolean).pop() ?? '').replace(
      /\.git$/,
      '',
    );
    const name = s.spec.name ?? suggestName(repoName);
    issues.push(...checkServiceName(name, s.tenant, s.spec.name ? 'spec.name' : 'spec.name (from the repository name)'));
    if (issues.length) throw new InputError('the build request is invalid', issues);
    const language = kind as Kind;
    const baseName = s.spec.base ?? this.config.defaults.base[language];
    const baseIssues = this.checkBase(baseName, language);
    if (baseIssues.length) throw new InputError('the build request is invalid', baseIssues);
    const baseRef = await this.baseRef(baseName);
    const repo = `${this.config.registry.namespace}/${qualifiedName(s.tenant, name)}`;
    return {
      tenant: s.tenant,
      service: name,
      language,
      source: { kind: 'git', url: git.url, ref: git.ref, ...(git.subdirectory ? { subdir: git.subdirectory } : {}) },
      base: baseName,
      baseRef,
      imageRepo: `${this.config.registry.host}/${repo}`,
      namespace: tenantNamespaceOf(this.tenantNamespace, s.tenant),
      chartValues: this.chartValues(s.spec, {}),
      ...(s.idempotencyKey !== undefined ? { idempotencyKey: s.idempotencyKey } : {}),
    };
  }

  /** Adds the tenant's semaphore key if missing; a 403 leaves it to the operator. */
  private async ensureConcurrencyKey(tenant: string): Promise<void> {
    // An invalid tenant is refused by renderWorkflow, with the reason.
    if (!isTenantName(tenant)) return;
    try {
      await ensureConfigMapKeys(this.core, this.namespace, this.concurrencyConfigMap, {
        [tenant]: String(this.config.executor.tenantConcurrency),
      });
    } catch (e) {
      if (e instanceof UpstreamError && e.upstreamStatus === 403) return;
      throw e;
    }
  }

  private checkBase(baseName: string, kind: Kind): Issue[] {
    const spec = this.config.baseImages[baseName];
    if (!spec)
      return [
        {
          path: 'spec.base',
          message: `"${baseName}" is not in the catalog; choose one of: ${Object.keys(this.config.baseImages).join(', ')}`,
        },
      ];
    if (spec.kind !== kind) {
      const fits = Object.entries(this.config.baseImages)
        .filter(([, b]) => b.kind === kind)
        .map(([n]) => n);
      return [
        {
          path: 'spec.base',
          message: `base image "${baseName}" is for ${spec.kind} projects, not ${kind}; choose one of: ${fits.join(', ')}`,
        },
      ];
    }
    return [];
  }

  /** `<registry>/<namespace>/base/<name>@<digest of :current>`. */
  private async baseRef(baseName: string): Promise<string> {
    const repo = `${this.config.registry.namespace}/base/${baseName}`;
    const digest = await resolveTag(this.config.registry, repo, BASE_CURRENT_TAG);
    if (!digest) {
      throw new InputError(`base image "${baseName}" is not in the registry`, [
        {
          path: 'spec.base',
          message: `${this.config.registry.host}/${repo}:${BASE_CURRENT_TAG} does not exist: the operator must build and push the base images (tag ${BASE_CURRENT_TAG}) first`,
        },
      ]);
    }
    return `${this.config.registry.host}/${repo}@${digest}`;
  }

  private chartValues(spec: BuildSpec, pcfg: { port?: number; route?: string; env?: Record<string, string> }): Record<string, unknown> {
    const values: Record<string, unknown> = { port: spec.port ?? pcfg.port ?? this.config.defaults.port };
    const route = spec.route ?? pcfg.route;
    if (route !== undefined) values.route = route;
    const env = { ...(pcfg.env ?? {}), ...(spec.env ?? {}) };
    if (Object.keys(env).length) values.env = env;
    return values;
  }

  private async annotate(name: string, annotations: Record<string, string>): Promise<ArgoWorkflow> {
    try {
      return (await this.custom.patchNamespacedCustomObject(
        {
          group: 'argoproj.io',
          version: 'v1alpha1',
          namespace: this.namespace,
          plural: 'workflows',
          name,
          body: { metadata: { annotations } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as ArgoWorkflow;
    } catch (err) {
      throw kubeError(err, `annotate Workflow ${this.namespace}/${name}`);
    }
  }

  /** The tenant's Workflow, or NotFoundError (also for another tenant's). */
  private async workflow(tenant: string, id: string): Promise<ArgoWorkflow> {
    if (!NAME_RE.test(id)) throw new NotFoundError(`no build ${id.slice(0, 64)}`);
    let wf: ArgoWorkflow;
    try {
      wf = await this.argo.get(id);
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`no build ${id}`);
      throw e;
    }
    if (wf.metadata.labels?.[LABELS.tenant] !== tenant) throw new NotFoundError(`no build ${id}`);
    return wf;
  }

  async get(tenant: string, id: string): Promise<BuildRecord> {
    return recordOf(await this.workflow(tenant, id));
  }

  async list(tenant: string, filter: BuildFilter): Promise<BuildRecord[]> {
    if (!NAME_RE.test(tenant)) return [];
    const selector = [`${LABELS.tenant}=${tenant}`, `${LABELS.kind}=service-build`];
    if (filter.service !== undefined) {
      // Either the name or the qualified name; a value no label can hold matches nothing.
      const prefix = `${tenant}-`;
      const names = [filter.service, ...(filter.service.startsWith(prefix) ? [filter.service.slice(prefix.length)] : [])].filter(
        (n) => NAME_RE.test(n) && n.length <= 63,
      );
      if (!names.length) return [];
      selector.push(`${LABELS.service} in (${names.join(',')})`);
    }
    let items: ArgoWorkflow[];
    try {
      const res = (await this.custom.listNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: this.namespace,
        plural: 'workflows',
        labelSelector: selector.join(','),
      })) as { items: ArgoWorkflow[] };
      items = res.items;
    } catch (err) {
      throw kubeError(err, `list Workflows in ${this.namespace}`);
    }
    let records = items.map(recordOf);
    if (filter.service !== undefined) records = records.filter((r) => r.name === filter.service || r.service === filter.service);
    if (filter.status) records = records.filter((r) => r.status === filter.status);
    records.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
    return records.slice(0, filter.limit ?? 100);
  }

  /**
   * Each step's log, prefixed `[step]`, in pipeline order. With follow, waits (watching the
   * Workflow) for each step to start and streams its log until it ends, until the build ends.
   */
  async *logs(tenant: string, id: string, opts: { follow: boolean; signal?: AbortSignal }): AsyncIterable<string> {
    const wf = await this.workflow(tenant, id);
    if (!opts.follow) {
      for (const step of PIPELINE_STEPS) {
        const s = viewOf(wf).steps.find((x) => x.step === step)!;
        if (s.attempts === 0) continue;
        const text = await this.argo.logs(id, step);
        for (const line of text.split('\n')) if (line) yield `[${step}] ${line}`;
      }
      return;
    }
    const views = this.argo.watch(id, opts.signal);
    let view: BuildView | undefined;
    const next = async (): Promise<boolean> => {
      const r = await views.next();
      if (r.done) return false;
      view = r.value;
      return true;
    };
    try {
      let more = await next();
      for (const step of PIPELINE_STEPS) {
        const stepView = () => view?.steps.find((x) => x.step === step);
        while (more && !opts.signal?.aborted && stepView()?.status === 'pending' && !view?.done) more = await next();
        if (opts.signal?.aborted) return;
        if (!stepView() || stepView()!.attempts === 0) continue;
        yield* this.followStep(id, step, opts.signal);
      }
    } finally {
      await views.return(undefined);
    }
  }

  private async *followStep(id: string, step: PipelineStep, signal?: AbortSignal): AsyncGenerator<string> {
    const out = new PassThrough();
    let failure: unknown;
    // Never left rejected: a consumer that stops early must not leave an unhandled rejection.
    const finished = this.argo
      .followLogs(id, step, out, signal)
      .catch((e: unknown) => {
        failure = e;
      })
      .finally(() => out.end());
    for await (const line of createInterface({ input: out, crlfDelay: Infinity })) yield `[${step}] ${line}`;
    await finished;
    if (failure) throw failure;
  }

  async cancel(tenant: string, id: string): Promise<BuildRecord> {
    const rec = recordOf(await this.workflow(tenant, id));
    if (TERMINAL.has(rec.status))
      throw new ConflictError(`build ${id} has already ${rec.status === 'cancelled' ? 'been cancelled' : rec.status}`);
    // Stop: the steps stop, the exit handler still runs (status report, image cleanup).
    return recordOf(await this.argo.cancel(id, 'Stop'));
  }

  async retry(tenant: string, id: string): Promise<BuildRecord> {
    const old = await this.workflow(tenant, id);
    const rec = recordOf(old);
    if (rec.status !== 'failed' && rec.status !== 'cancelled') {
      throw new ConflictError(`build ${id} is ${rec.status}; only failed or cancelled builds can be retried`);
    }
    const res = await this.argo.retry(id);
    let wf = res.workflow;
    const keep = Object.fromEntries(
      [SPEC_ANNOTATION, SOURCE_ANNOTATION].flatMap((k) =>
        old.metadata.annotations?.[k] !== undefined ? [[k, old.metadata.annotations[k]!]] : [],
      ),
    );
    if (res.created && Object.keys(keep).length) wf = await this.annotate(res.name, keep);
    return recordOf(wf);
  }

  async getService(_tenant: string, name: string): Promise<ServiceRecord> {
    throw new NotFoundError(`no service ${name}: ${SERVICES_MESSAGE}`);
  }

  async listServices(_tenant: string): Promise<ServiceRecord[]> {
    return [];
  }

  async updateService(_tenant: string, _name: string, _patch: Partial<ServiceConfig>): Promise<ServiceRecord> {
    throw new ConflictError(SERVICES_MESSAGE);
  }

  async deleteService(_tenant: string, _name: string): Promise<void> {
    throw new ConflictError(SERVICES_MESSAGE);
  }
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function seconds(from?: string, to?: string): number | undefined {
  if (!from || !to) return undefined;
  const s = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(s) && s >= 0 ? Math.round(s * 10) / 10 : undefined;
}

/** Pure: Workflow phase (and a requested shutdown) -> build status. */
export function buildStatusOf(wf: ArgoWorkflow): BuildStatus {
  const view = viewOf(wf);
  if (view.done && view.phase === 'failed' && wf.spec?.shutdown) return 'cancelled';
  if (view.phase === 'pending') return 'queued';
  return view.phase;
}

/** Pure: a build Workflow as the API's BuildRecord. */
export function recordOf(wf: ArgoWorkflow): BuildRecord {
  const labels = wf.metadata.labels ?? {};
  const annotations = wf.metadata.annotations ?? {};
  const params = Object.fromEntries(
    (
      ((wf.spec?.arguments as { parameters?: Array<{ name: string; value?: string }> } | undefined)?.parameters ?? []) as Array<{
        name: string;
        value?: string;
      }>
    ).map((p) => [p.name, p.value ?? '']),
  );
  const tenant = labels[LABELS.tenant] ?? params.tenant ?? '';
  const service = labels[LABELS.service] ?? params.service ?? '';
  const view = viewOf(wf);
  const status = buildStatusOf(wf);
  const chartValues = parseJson<{ port?: number; route?: string; env?: Record<string, string> }>(params['chart-values']) ?? {};
  const spec: BuildSpec = parseJson<BuildSpec>(annotations[SPEC_ANNOTATION]) ?? {
    name: service,
    ...(params.language ? { kind: params.language } : {}),
    ...(params.base ? { base: params.base } : {}),
    ...(typeof chartValues.port === 'number' ? { port: chartValues.port } : {}),
    ...(typeof chartValues.route === 'string' ? { route: chartValues.route } : {}),
    ...(chartValues.env ? { env: chartValues.env } : {}),
  };
  const source: SourceInfo =
    parseJson<SourceInfo>(annotations[SOURCE_ANNOTATION]) ??
    (params['source-kind'] === 'git'
      ? { type: 'git', url: params['git-url'] ?? '', ref: params['git-ref'] ?? '', subdirectory: params['git-subdir'] ?? '' }
      : { type: 'archive', format: 'tar.gz', sha256: (params['source-ref'] ?? '').replace(/^.*@sha256:/, ''), files: 0, bytes: 0 });
  const steps: StepRecord[] = view.steps.map((s) => {
    const r: StepRecord = { name: s.step, status: s.status };
    const secs = seconds(s.startedAt, s.finishedAt);
    if (secs !== undefined) r.seconds = secs;
    if (s.message) r.message = s.message;
    return r;
  });
  const created = (wf.metadata as { creationTimestamp?: string | Date }).creationTimestamp;
  const rec: BuildRecord = {
    id: wf.metadata.name,
    tenant,
    status,
    spec,
    source,
    createdAt: created ? new Date(created).toISOString() : (wf.status?.startedAt ?? ''),
    name: service,
    service: qualifiedName(tenant, service),
    ...(params.language ? { kind: params.language } : {}),
    steps,
    attempts: 1,
  };
  if (wf.status?.startedAt) rec.startedAt = wf.status.startedAt;
  if (view.done && wf.status?.finishedAt) rec.finishedAt = wf.status.finishedAt;
  if (params['base-ref']) rec.base = params['base-ref'];
  const imageRepo = params['image-repo'];
  if (view.outputs.imageDigest && imageRepo) rec.image = `${imageRepo}@${view.outputs.imageDigest}`;
  // The overlay's size is not among the Workflow's outputs: 0 means unknown here.
  if (view.outputs.overlayDigest && imageRepo)
    rec.overlay = { digest: view.outputs.overlayDigest, bytes: 0, ref: `${imageRepo}@${view.outputs.overlayDigest}` };
  const chart = view.outputs.chartRef ? parseChartRef(view.outputs.chartRef) : undefined;
  if (chart) rec.chart = { ref: chart.url, version: chart.version, digest: chart.digest };
  const scan = parseJson<ScanSummary>(view.outputs.scanSummary);
  if (scan && typeof scan === 'object') rec.scan = scan;
  if (status === 'cancelled') rec.error = { code: 'cancelled', message: 'the build was cancelled' };
  else if (status === 'failed') {
    const failed = view.steps.find((s) => s.status === 'failed');
    rec.error = {
      ...(failed ? { step: failed.step } : {}),
      code: 'build_failed',
      message: failed?.message ?? view.message ?? 'the build failed',
    };
  }
  const retryOf = labels[RETRY_OF_LABEL];
  if (retryOf) rec.retryOf = retryOf;
  return rec;
}
