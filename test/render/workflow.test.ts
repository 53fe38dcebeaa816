import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InputError } from '../../src/errors.js';
import { buildIdOf, renderWorkflow, renderWorkflowYaml, type BuildSubmission } from '../../src/render/index.js';
import { argoSchemaErrors } from './argo-schema.js';

const DIGEST = 'sha256:' + 'b'.repeat(64);
const SUBMISSION: BuildSubmission = {
  tenant: 'acme',
  service: 'orders',
  language: 'python',
  source: { kind: 'archive', ref: `127.0.0.1:5000/svcbuild/acme-orders@${DIGEST}` },
  base: 'python-3.13',
  baseRef: `127.0.0.1:5000/svcbuild/base/python-3.13@sha256:${'c'.repeat(64)}`,
  imageRepo: '127.0.0.1:5000/svcbuild/acme-orders',
  namespace: 'tenant-acme',
  chartValues: { port: 8080, route: '/orders' },
  buildNamespace: 'svcbuild',
};
const params = (s: BuildSubmission) => Object.fromEntries(renderWorkflow(s).spec.arguments.parameters.map((p) => [p.name, p.value]));

describe('renderWorkflow', () => {
  it('GIVEN a submission WHEN rendered THEN it references the template, validates against Argo schema and carries labels', () => {
    const wf = renderWorkflow(SUBMISSION);
    expect(argoSchemaErrors(wf)).toEqual([]);
    const id = buildIdOf(SUBMISSION);
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(wf.metadata).toEqual({
      name: `acme-orders-${id}`,
      namespace: 'svcbuild',
      labels: {
        'svcbuild.io/tenant': 'acme',
        'svcbuild.io/service': 'orders',
        'svcbuild.io/build-id': id,
        'svcbuild.io/language': 'python',
        'svcbuild.io/kind': 'service-build',
      },
      annotations: {
        'workflows.argoproj.io/title': 'build acme/orders',
        'workflows.argoproj.io/description': `build ${id} of acme/orders (python) on python-3.13`,
      },
    });
    expect(wf.spec.workflowTemplateRef).toEqual({ name: 'svcbuild-build' });
    expect(params(SUBMISSION)).toEqual({
      tenant: 'acme',
      service: 'orders',
      'build-id': id,
      language: 'python',
      'source-kind': 'archive',
      'source-ref': SUBMISSION.source.kind === 'archive' ? SUBMISSION.source.ref : '',
      'git-url': '',
      'git-ref': '',
      'git-subdir': '',
      base: 'python-3.13',
      'base-ref': SUBMISSION.baseRef,
      'image-repo': '127.0.0.1:5000/svcbuild/acme-orders',
      namespace: 'tenant-acme',
      'chart-values': '{"port":8080,"route":"/orders"}',
      'scan-threshold': 'HIGH',
    });
  });

  it('GIVEN the same submission twice (keys in another order) WHEN rendered THEN the name is the same; a change gives another', () => {
    const again = { ...SUBMISSION, chartValues: { route: '/orders', port: 8080 } };
    expect(renderWorkflow(again).metadata.name).toBe(renderWorkflow(SUBMISSION).metadata.name);
    const other = {
      ...SUBMISSION,
      source: { kind: 'archive' as const, ref: `127.0.0.1:5000/svcbuild/acme-orders@sha256:${'d'.repeat(64)}` },
    };
    expect(renderWorkflow(other).metadata.name).not.toBe(renderWorkflow(SUBMISSION).metadata.name);
    expect(renderWorkflow({ ...SUBMISSION, tenant: 'beta' }).metadata.name).toMatch(/^beta-orders-/);
  });

  it('GIVEN an idempotency key WHEN the content differs THEN the key alone decides the build', () => {
    const a = renderWorkflow({ ...SUBMISSION, idempotencyKey: 'req-1' });
    const b = renderWorkflow({ ...SUBMISSION, idempotencyKey: 'req-1', chartValues: { port: 9090 } });
    const c = renderWorkflow({ ...SUBMISSION, idempotencyKey: 'req-2' });
    expect(a.metadata.name).toBe(b.metadata.name);
    expect(c.metadata.name).not.toBe(a.metadata.name);
  });

  it('GIVEN mustaches and newlines in user values WHEN rendered to YAML THEN they come back as parameter values, not structure', () => {
    const evil: BuildSubmission = {
      ...SUBMISSION,
      source: {
        kind: 'git',
        url: 'https://git.example/x}}{{evil}}.git',
        ref: 'a\nb: c',
        subdir: '{{workflow.parameters.tenant}}\n---\nkind: Secret',
      },
      chartValues: { env: { X: 'x}}{{evil', Y: 'a\nb: c' } },
    };
    const yaml = renderWorkflowYaml(evil);
    const back = parse(yaml) as ReturnType<typeof renderWorkflow>;
    expect(back).toEqual(renderWorkflow(evil));
    expect(Object.keys(back)).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(Object.keys(back.spec)).toEqual(['workflowTemplateRef', 'arguments']);
    const p = Object.fromEntries(back.spec.arguments.parameters.map((x) => [x.name, x.value]));
    expect([p['git-url'], p['git-ref'], p['git-subdir']]).toEqual([
      'https://git.example/x}}{{evil}}.git',
      'a\nb: c',
      '{{workflow.parameters.tenant}}\n---\nkind: Secret',
    ]);
    expect(JSON.parse(p['chart-values']!)).toEqual({ env: { X: 'x}}{{evil', Y: 'a\nb: c' } });
    expect(argoSchemaErrors(back)).toEqual([]);
  });

  it('GIVEN names that could become structure or bad labels WHEN rendered THEN one InputError lists every field', () => {
    const bad = { ...SUBMISSION, service: 'x}}{{evil', baseRef: 'python:latest', namespace: 'a\nb: c' };
    expect(() => renderWorkflow(bad)).toThrow(InputError);
    try {
      renderWorkflow(bad);
    } catch (e) {
      expect((e as InputError).issues.map((i) => i.path)).toEqual(['service', 'baseRef', 'namespace']);
    }
    try {
      renderWorkflow({ ...SUBMISSION, tenant: 'Acme' });
    } catch (e) {
      expect((e as InputError).issues.map((i) => i.path)).toEqual(['tenant']);
    }
  });
});
