/**
 * The argo executor: builds run as Argo Workflows, driven through the plain Kubernetes API
 * (there is no npm client for Argo). State is the Workflow objects themselves.
 *
 * - submit: creates the Workflow rendered from the submission (a `workflowTemplateRef` with
 *   a deterministic name); AlreadyExists returns the existing build, so submitting the same
 *   thing twice gives one build.
 * - watch: follows one Workflow with a Kubernetes watch (a field selector on its name), never
 *   by polling lists, and yields the pipeline view on every change until it is done.
 * - logs: the main container's log of a step's latest attempt, from the pod Argo named for it.
 * - cancel: merge-patches `spec.shutdown: Terminate` (or `Stop`, which lets exit handlers run).
 * - retry: Argo's own retry rewrites node statuses and deletes pods in its server; through the
 *   Kubernetes API we instead create a new Workflow `<root>-r<n>` from the same template with
 *   the same parameters (the same build id, whose unpromoted image the failed run's exit
 *   handler deleted), labelled `svcbuild.io/retry-of: <root>`. Only a failed Workflow can be
 *   retried; retrying the same one twice returns the same retry (deterministic name).
 */
import { PassThrough } from 'node:stream';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import { ConflictError, InputError, NotFoundError, UpstreamError } from '../../errors.js';
import { renderWorkflow, type BuildSubmission, type WorkflowObject } from '../../render/workflow.js';
import { PIPELINE_STEPS, podNameOf, stepAttempts, viewOf, type ArgoWorkflow, type BuildView, type PipelineStep } from './status.js';

const GROUP = 'argoproj.io';
const VERSION = 'v1alpha1';
const PLURAL = 'workflows';
export const RETRY_OF_LABEL = 'svcbuild.io/retry-of';

export interface ArgoExecutorOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the WorkflowTemplates, where build Workflows run. */
  namespace: string;
  /** Clients; defaults are made from `kubeConfig`. */
  customObjects?: CustomObjectsApi;
  core?: CoreV1Api;
  watcher?: Watch;
}

export interface SubmitResult {
  name: string;
  /** False when the same submission already existed. */
  created: boolean;
  workflow: ArgoWorkflow;
}

/** Turns a Kubernetes API failure into one of our errors, keeping its status. */
export function kubeError(err: unknown, what: string): Error {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? safeJson(err.body) : err.body;
    const message = (body as { message?: string } | undefined)?.message ?? err.message;
    if (err.code === 404) return new NotFoundError(`${what}: not found`);
    if (err.code === 409) return new ConflictError(`${what}: ${message}`);
    if (err.code === 400 || err.code === 422) return new InputError(`${what}: ${message}`);
    return new UpstreamError(`${what}: Kubernetes API answered ${err.code}: ${message}`, err.code, body);
  }
  return err instanceof Error ? err : new UpstreamError(`${what}: ${String(err)}`);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

export class ArgoExecutor {
  readonly namespace: string;
  private readonly kc: KubeConfig;
  private readonly customObjects: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly watcher: Watch;

  constructor(opts: ArgoExecutorOptions) {
    this.kc = opts.kubeConfig;
    this.namespace = opts.namespace;
    this.customObjects = opts.customObjects ?? this.kc.makeApiClient(CustomObjectsApi);
    this.core = opts.core ?? this.kc.makeApiClient(CoreV1Api);
    this.watcher = opts.watcher ?? new Watch(this.kc);
  }

  /** An executor for a kubeconfig file (the current context). */
  static fromKubeconfigFile(file: string, namespace: string): ArgoExecutor {
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    return new ArgoExecutor({ kubeConfig: kc, namespace });
  }

  /** Creates the build's Workflow; the same submission again returns the existing one. */
  async submit(submission: BuildSubmission): Promise<SubmitResult> {
    const body = renderWorkflow({ ...submission, buildNamespace: this.namespace });
    return this.createOrGet(body);
  }

  private async createOrGet(body: WorkflowObject): Promise<SubmitResult> {
    const name = body.metadata.name;
    try {
      const workflow = (await this.customObjects.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: PLURAL,
        body,
      })) as ArgoWorkflow;
      return { name, created: true, workflow };
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return { name, created: false, workflow: await this.get(name) };
      throw kubeError(err, `create Workflow ${this.namespace}/${name}`);
    }
  }

  /** The Workflow object. */
  async get(name: string): Promise<ArgoWorkflow> {
    try {
      return (await this.customObjects.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: PLURAL,
        name,
      })) as ArgoWorkflow;
    } catch (err) {
      throw kubeError(err, `Workflow ${this.namespace}/${name}`);
    }
  }

  /** The pipeline view of a build now. */
  async status(name: string): Promise<BuildView> {
    return viewOf(await this.get(name));
  }

  /**
   * Follows a build with a watch, yielding its view on every change (the first one at once)
   * until the Workflow is done or `signal` aborts. A watch the server closes is resumed from
   * the last resourceVersion (from scratch after 410 Gone).
   */
  async *watch(name: string, signal?: AbortSignal): AsyncGenerator<BuildView> {
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${this.namespace}/${PLURAL}`;
    let resourceVersion: string | undefined;
    let last = '';
    while (!signal?.aborted) {
      const queue: Array<{ type: string; object: ArgoWorkflow } | { error: unknown } | { end: true }> = [];
      let wake: (() => void) | undefined;
      const push = (item: (typeof queue)[number]) => {
        queue.push(item);
        wake?.();
      };
      const query: Record<string, string | boolean> = { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: true };
      if (resourceVersion) query.resourceVersion = resourceVersion;
      const controller = await this.watcher.watch(
        path,
        query,
        (type, object: ArgoWorkflow) => push({ type, object }),
        (err: unknown) => push(err ? { error: err } : { end: true }),
      );
      const onAbort = () => controller.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for (;;) {
          if (!queue.length) await new Promise<void>((r) => (wake = r));
          wake = undefined;
          const item = queue.shift()!;
          if ('end' in item) break;
          if ('error' in item) {
            if (signal?.aborted) return;
            // The client ends a watch that saw no event for its request timeout (30 s): resume
            // it from the last resourceVersion, like a watch the server closed.
            if ((item.error as { name?: string } | undefined)?.name === 'TimeoutError') break;
            throw kubeError(item.error, `watch Workflow ${this.namespace}/${name}`);
          }
          if (item.type === 'ERROR') {
            // 410 Gone: our resourceVersion is too old; list-free restart from the current state.
            resourceVersion = undefined;
            break;
          }
          resourceVersion = item.object.metadata.resourceVersion ?? resourceVersion;
          if (item.type === 'BOOKMARK') continue;
          if (item.type === 'DELETED') throw new NotFoundError(`Workflow ${this.namespace}/${name} was deleted`);
          const view = viewOf(item.object);
          const key = JSON.stringify(view);
          if (key !== last) {
            last = key;
            yield view;
          }
          if (view.done) return;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        controller.abort();
      }
    }
  }

  /** The log of a step's latest attempt (container `main`), or '' when it has not started. */
  async logs(name: string, step: PipelineStep | string, opts: { container?: string; tailLines?: number } = {}): Promise<string> {
    if (!(PIPELINE_STEPS as readonly string[]).includes(step)) {
      throw new InputError(`unknown step "${step}"`, [{ path: 'step', message: `one of ${PIPELINE_STEPS.join(', ')}` }]);
    }
    const wf = await this.get(name);
    const attempt = stepAttempts(wf, step as PipelineStep).at(-1);
    if (!attempt) return '';
    const pod = podNameOf(wf, attempt);
    try {
      return await this.core.readNamespacedPodLog({
        name: pod,
        namespace: this.namespace,
        container: opts.container ?? 'main',
        ...(opts.tailLines ? { tailLines: opts.tailLines } : {}),
      });
    } catch (err) {
      throw kubeError(err, `log of step ${step} (pod ${this.namespace}/${pod})`);
    }
  }

  /**
   * Streams a step's log as it is written (follow), e.g. into a response. A step whose pod is
   * still being created (image pull, init containers) is waited for: the log is read once its
   * main container runs or has ended; a step that ends without it ever starting has no log.
   */
  async followLogs(name: string, step: PipelineStep, out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
    const { Log } = await import('@kubernetes/client-node');
    const wf = await this.get(name);
    const attempt = stepAttempts(wf, step).at(-1);
    if (!attempt) return;
    const pod = podNameOf(wf, attempt);
    if (!(await this.waitForContainer(name, step, pod, signal))) return;
    const through = new PassThrough();
    through.pipe(out);
    const controller = await new Log(this.kc).log(this.namespace, pod, 'main', through, { follow: true });
    signal?.addEventListener('abort', () => controller.abort(), { once: true });
    await new Promise<void>((resolve) => through.on('finish', resolve).on('close', resolve));
  }

  /** Polls until the pod's main container has started (true), or the step or build ended without it. */
  private async waitForContainer(name: string, step: PipelineStep, pod: string, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted) return false;
      try {
        const p = await this.core.readNamespacedPod({ name: pod, namespace: this.namespace });
        const main = p.status?.containerStatuses?.find((c) => c.name === 'main');
        if (main?.state?.running || main?.state?.terminated || main?.lastState?.terminated) return true;
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 404)) throw kubeError(err, `pod ${this.namespace}/${pod}`);
      }
      const view = viewOf(await this.get(name));
      const s = view.steps.find((x) => x.step === step);
      if (view.done || (s && s.status !== 'running' && s.status !== 'pending')) return false;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /**
   * Cancels a build: `Terminate` stops everything (the exit handler does not run); `Stop`
   * stops the steps but runs the exit handler (status report, image cleanup).
   */
  async cancel(name: string, mode: 'Terminate' | 'Stop' = 'Stop'): Promise<ArgoWorkflow> {
    try {
      return (await this.customObjects.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace: this.namespace, plural: PLURAL, name, body: { spec: { shutdown: mode } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as ArgoWorkflow;
    } catch (err) {
      throw kubeError(err, `cancel Workflow ${this.namespace}/${name}`);
    }
  }

  /** Retries a failed build as a new Workflow with the same parameters (see the module doc). */
  async retry(name: string): Promise<SubmitResult> {
    const wf = await this.get(name);
    const phase = wf.status?.phase;
    if (phase !== 'Failed' && phase !== 'Error') {
      throw new ConflictError(`Workflow ${this.namespace}/${name} is ${phase ?? 'Pending'}; only a failed build can be retried`);
    }
    const spec = wf.spec as WorkflowObject['spec'] | undefined;
    if (!spec?.workflowTemplateRef) throw new ConflictError(`Workflow ${this.namespace}/${name} does not come from a WorkflowTemplate`);
    const root = wf.metadata.labels?.[RETRY_OF_LABEL] ?? name;
    const n = root === name ? 1 : Number(/-r(\d+)$/.exec(name)?.[1] ?? 0) + 1;
    // Our labels only: Argo's own (phase, completed, ...) describe the old run.
    const ours = Object.entries(wf.metadata.labels ?? {}).filter(([k]) => k.startsWith('svcbuild.io/'));
    const labels = { ...Object.fromEntries(ours), [RETRY_OF_LABEL]: root };
    const keep = ['workflows.argoproj.io/title', 'workflows.argoproj.io/description'];
    const annotations = Object.fromEntries(Object.entries(wf.metadata.annotations ?? {}).filter(([k]) => keep.includes(k)));
    return this.createOrGet({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: { name: `${root}-r${n}`, namespace: this.namespace, labels, annotations },
      spec: { workflowTemplateRef: spec.workflowTemplateRef, arguments: spec.arguments },
    });
  }
}
