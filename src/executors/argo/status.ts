/**
 * Pure: an Argo Workflow's status -> svcbuild's pipeline view (steps, statuses, outputs), and
 * the name of the pod that ran a step (Argo's own naming, so logs need no pod listing).
 */
import type { StepStatus } from '../../domain/progress.js';

/** The pipeline's steps, in order, as the WorkflowTemplate names them. */
export const PIPELINE_STEPS = ['source', 'build', 'scan', 'overlay', 'publish', 'deploy'] as const;
export type PipelineStep = (typeof PIPELINE_STEPS)[number];

/** The part of an Argo node status svcbuild reads. */
export interface ArgoNode {
  id: string;
  name: string;
  displayName?: string;
  type: string;
  phase?: string;
  templateName?: string;
  templateRef?: { name: string; template: string };
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  children?: string[];
  outputs?: { exitCode?: string };
}

/** The part of an Argo Workflow svcbuild reads. */
export interface ArgoWorkflow {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: {
    phase?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
    nodes?: Record<string, ArgoNode>;
    outputs?: { parameters?: Array<{ name: string; value?: string }> };
  };
}

export type BuildPhase = 'pending' | 'running' | 'succeeded' | 'failed';

export interface StepView {
  step: PipelineStep;
  status: Exclude<StepStatus, 'cached'>;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  /** Attempts made so far (more than one when Argo retried a transient failure). */
  attempts: number;
}

export interface BuildView {
  name: string;
  phase: BuildPhase;
  message?: string;
  steps: StepView[];
  outputs: { imageDigest?: string; overlayDigest?: string; scanSummary?: string; chartRef?: string };
  done: boolean;
}

const DONE = new Set(['Succeeded', 'Failed', 'Error']);

/** Argo node phase -> step status. */
export function stepStatusOf(phase: string | undefined): StepView['status'] {
  switch (phase) {
    case 'Running':
      return 'running';
    case 'Succeeded':
      return 'succeeded';
    case 'Failed':
    case 'Error':
      return 'failed';
    case 'Skipped':
    case 'Omitted':
      return 'skipped';
    default:
      return 'pending';
  }
}

/** Argo workflow phase -> build phase. */
export function buildPhaseOf(phase: string | undefined): BuildPhase {
  if (phase === 'Succeeded') return 'succeeded';
  if (phase === 'Failed' || phase === 'Error') return 'failed';
  if (phase === 'Running') return 'running';
  return 'pending';
}

/**
 * The node of a pipeline step: the step's own node (a Retry node when the template retries,
 * else its Pod node), never the exit handler's. Step nodes are named `<wf>[<i>].<step>`.
 */
export function stepNode(wf: ArgoWorkflow, step: PipelineStep): ArgoNode | undefined {
  const nodes = Object.values(wf.status?.nodes ?? {});
  return nodes.find(
    (n) =>
      n.displayName === step &&
      n.name.startsWith(`${wf.metadata.name}[`) &&
      /^\[\d+\]\.[a-z-]+$/.test(n.name.slice(wf.metadata.name.length)),
  );
}

/** The attempts (Pod nodes) of a step, oldest first. */
export function stepAttempts(wf: ArgoWorkflow, step: PipelineStep): ArgoNode[] {
  const node = stepNode(wf, step);
  if (!node) return [];
  if (node.type === 'Pod') return [node];
  const nodes = wf.status?.nodes ?? {};
  return (node.children ?? []).map((id) => nodes[id]).filter((n): n is ArgoNode => n?.type === 'Pod');
}

/** Pure: the pipeline view of a Workflow. */
export function viewOf(wf: ArgoWorkflow): BuildView {
  const phase = buildPhaseOf(wf.status?.phase);
  const done = DONE.has(wf.status?.phase ?? '');
  const steps = PIPELINE_STEPS.map((step): StepView => {
    const node = stepNode(wf, step);
    const attempts = stepAttempts(wf, step).length;
    if (!node) return { step, status: done ? 'skipped' : 'pending', attempts };
    const view: StepView = { step, status: stepStatusOf(node.phase), attempts };
    // A Workflow that ended while a step was still pending or running never finished it.
    if (done && (view.status === 'pending' || view.status === 'running')) view.status = phase === 'succeeded' ? 'skipped' : 'failed';
    if (node.message) view.message = node.message;
    if (node.startedAt) view.startedAt = node.startedAt;
    if (node.finishedAt) view.finishedAt = node.finishedAt;
    return view;
  });
  const params = Object.fromEntries((wf.status?.outputs?.parameters ?? []).map((p) => [p.name, p.value]));
  const outputs: BuildView['outputs'] = {};
  if (params['image-digest']) outputs.imageDigest = params['image-digest'];
  if (params['overlay-digest']) outputs.overlayDigest = params['overlay-digest'];
  if (params['scan-summary']) outputs.scanSummary = params['scan-summary'];
  if (params['chart-ref']) outputs.chartRef = params['chart-ref'];
  const view: BuildView = { name: wf.metadata.name, phase, steps, outputs, done };
  if (wf.status?.message) view.message = wf.status.message;
  return view;
}

/** FNV-1a, 32 bits: Argo's hash of a node name in pod names. */
function fnv32a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The pod that ran a node, named as Argo names it: v2 (default) `<wf>-<template>-<fnv32a(node
 * name)>`, v1 the node id (annotation `workflows.argoproj.io/pod-name-format`).
 */
export function podNameOf(wf: ArgoWorkflow, node: ArgoNode): string {
  if (wf.metadata.annotations?.['workflows.argoproj.io/pod-name-format'] === 'v1') return node.id;
  if (node.name === wf.metadata.name) return wf.metadata.name;
  const template = node.templateRef?.template ?? node.templateName ?? '';
  const prefix = (template ? `${wf.metadata.name}-${template}` : wf.metadata.name).slice(0, 253 - 10 - 1);
  return `${prefix}-${fnv32a(node.name)}`;
}
