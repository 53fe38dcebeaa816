import { describe, expect, it } from 'vitest';
import { podNameOf, viewOf, type ArgoWorkflow } from '../../../src/executors/argo/status.js';

const WF = 'acme-orders-0123456789ab';
const wf: ArgoWorkflow = {
  metadata: { name: WF },
  status: {
    phase: 'Running',
    nodes: {
      a: { id: 'a', name: WF, displayName: WF, type: 'Steps', phase: 'Running', templateName: 'pipeline' },
      b: {
        id: 'b',
        name: `${WF}[1].build`,
        displayName: 'build',
        type: 'Retry',
        phase: 'Running',
        templateName: 'build',
        children: ['c', 'd'],
      },
      c: { id: 'c', name: `${WF}[1].build(0)`, displayName: 'build(0)', type: 'Pod', phase: 'Error', templateName: 'build' },
      d: { id: 'd', name: `${WF}[1].build(1)`, displayName: 'build(1)', type: 'Pod', phase: 'Running', templateName: 'build' },
      e: { id: 'e', name: `${WF}[0].source`, displayName: 'source', type: 'Retry', phase: 'Succeeded', templateName: 'source' },
      f: { id: 'f', name: `${WF}.onExit[0].final-status`, displayName: 'final-status', type: 'Pod', phase: 'Pending' },
    },
    outputs: { parameters: [{ name: 'image-digest', value: 'sha256:abc' }] },
  },
};

describe('viewOf', () => {
  it('GIVEN Argo nodes with a retried step WHEN mapped THEN steps read as the pipeline with attempts', () => {
    const v = viewOf(wf);
    expect(v.phase).toBe('running');
    expect(v.steps.map((s) => [s.step, s.status, s.attempts])).toEqual([
      ['source', 'succeeded', 0],
      ['build', 'running', 2],
      ['scan', 'pending', 0],
      ['overlay', 'pending', 0],
      ['publish', 'pending', 0],
      ['deploy', 'pending', 0],
    ]);
    expect(v.outputs).toEqual({ imageDigest: 'sha256:abc' });
  });

  it('GIVEN a node WHEN its pod is named THEN it follows Argo v2 naming (<wf>-<template>-<fnv32a(node name)>)', () => {
    // fnv32a("hello") = 1335831723: the FNV-1a reference value.
    expect(podNameOf({ metadata: { name: 'wf' } }, { id: 'x', name: 'hello', type: 'Pod', templateName: 'build' })).toBe(
      'wf-build-1335831723',
    );
    expect(
      podNameOf(
        { metadata: { name: 'wf', annotations: { 'workflows.argoproj.io/pod-name-format': 'v1' } } },
        { id: 'wf-123', name: 'hello', type: 'Pod' },
      ),
    ).toBe('wf-123');
  });
});
