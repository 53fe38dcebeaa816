/**
 * Level 1 of the cluster test bed (issue 7): a real etcd + kube-apiserver, built from their Go
 * modules, with Argo Workflows' full CRDs. The first run on a machine builds kube-apiserver.
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKube, type TestKube } from '../helpers/kube.js';

const NS = 'bed-test';
const ARGO = { group: 'argoproj.io', version: 'v1alpha1', namespace: NS };

function client<T>(kubeconfig: string, api: new (...args: never[]) => T): T {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.makeApiClient(api as never) as T;
}

/** The status code and the parsed Status body of a rejected call. */
async function rejection(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) {
      const raw: unknown = e.body;
      const body = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Record<string, unknown>;
      return { code: e.code, body };
    }
    throw e;
  }
  throw new Error('the call succeeded; a rejection was expected');
}

function get(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const template = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'WorkflowTemplate',
  metadata: { name, namespace: NS },
  spec,
});

describe('test bed level 1: kube-apiserver + etcd with Argo CRDs', () => {
  let kube: TestKube;

  beforeAll(async () => {
    kube = await startKube();
    await client(kube.kubeconfig, CoreV1Api).createNamespace({
      body: { metadata: { name: NS } },
    });
  }, 1_200_000);

  afterAll(async () => {
    await kube?.stop();
  });

  it('answers /readyz over TLS signed by its own CA', async () => {
    // GIVEN the started bed WHEN /readyz is fetched anonymously, trusting the bed CA
    const res = await get(`${kube.server}/readyz`, await readFile(kube.caFile));
    // THEN it is ready
    expect(kube.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(res).toEqual({ status: 200, body: 'ok' });
  });

  it.each(['workflows.argoproj.io', 'workflowtemplates.argoproj.io'])(
    'has the full CRD %s Established',
    async (name) => {
      // GIVEN the bed WHEN the CRD is read
      const crd = await client(kube.kubeconfig, ApiextensionsV1Api).readCustomResourceDefinition({ name });
      // THEN it is Established and carries the full schema (not the minimal, schemaless one)
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      expect(established?.status).toBe('True');
      const v1alpha1 = crd.spec.versions.find((v) => v.name === 'v1alpha1');
      expect(v1alpha1?.served).toBe(true);
      const spec = v1alpha1?.schema?.openAPIV3Schema?.properties?.spec;
      expect(spec?.properties?.entrypoint?.type).toBe('string');
      expect(spec?.properties?.templates?.type).toBe('array');
      expect(spec?.properties?.templates?.items?.properties?.container?.properties?.image?.type).toBe('string');
    },
  );

  it('accepts a minimal valid WorkflowTemplate', async () => {
    // GIVEN a WorkflowTemplate with one container template
    const body = template('hello', {
      entrypoint: 'main',
      templates: [
        {
          name: 'main',
          container: { image: 'busybox', command: ['echo', 'hi'] },
        },
      ],
    });
    // WHEN the admin creates it
    const api = client(kube.kubeconfig, CustomObjectsApi);
    const created = (await api.createNamespacedCustomObject({
      ...ARGO,
      plural: 'workflowtemplates',
      body,
    })) as {
      metadata: { name: string; namespace: string; uid: string };
      spec: unknown;
    };
    // THEN it is stored as sent
    expect(created.metadata.name).toBe('hello');
    expect(created.metadata.namespace).toBe(NS);
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.spec).toEqual(body.spec);
    const read = (await api.getNamespacedCustomObject({
      ...ARGO,
      plural: 'workflowtemplates',
      name: 'hello',
    })) as {
      spec: unknown;
    };
    expect(read.spec).toEqual(body.spec);
  });

  it('rejects a WorkflowTemplate whose field has the wrong type, by the structural schema', async () => {
    // GIVEN a WorkflowTemplate whose templates is a string, not a list
    const body = template('bad-type', {
      entrypoint: 'main',
      templates: 'main',
    });
    // WHEN the admin creates it
    const res = await rejection(
      client(kube.kubeconfig, CustomObjectsApi).createNamespacedCustomObject({
        ...ARGO,
        plural: 'workflowtemplates',
        body,
      }),
    );
    // THEN the apiserver answers 422 Invalid, naming the field and the expected type (and that
    // the CRD's CEL rules were skipped because of it)
    expect(res.code).toBe(422);
    expect(res.body.reason).toBe('Invalid');
    expect((res.body.details as { causes: unknown[] }).causes).toEqual([
      {
        reason: 'FieldValueTypeInvalid',
        message: 'Invalid value: "string": spec.templates in body must be of type array: "string"',
        field: 'spec.templates',
      },
      {
        reason: 'FieldValueInvalid',
        message:
          'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
        field: '<nil>',
      },
    ]);
  });

  it('denies creating a Workflow to an identity without rights, and allows it once RBAC grants it', async () => {
    // GIVEN a client certificate for user "nobody" with no bindings
    const nobody = await kube.userKubeconfig('nobody');
    const workflow = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'from-nobody', namespace: NS },
      spec: { workflowTemplateRef: { name: 'hello' } },
    };
    const asNobody = client(nobody, CustomObjectsApi);
    // WHEN nobody creates a Workflow THEN 403 Forbidden names the user, verb and resource
    const denied = await rejection(
      asNobody.createNamespacedCustomObject({
        ...ARGO,
        plural: 'workflows',
        body: workflow,
      }),
    );
    expect(denied.code).toBe(403);
    expect(denied.body.reason).toBe('Forbidden');
    expect(denied.body.message).toBe(
      `workflows.argoproj.io is forbidden: User "nobody" cannot create resource "workflows" in API group "argoproj.io" in the namespace "${NS}"`,
    );

    // GIVEN a Role allowing it, bound to nobody
    const rbac = client(kube.kubeconfig, RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: NS,
      body: {
        metadata: { name: 'workflow-creator' },
        rules: [
          {
            apiGroups: ['argoproj.io'],
            resources: ['workflows'],
            verbs: ['create'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'nobody-creates-workflows' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Role',
          name: 'workflow-creator',
        },
        subjects: [
          {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'User',
            name: 'nobody',
          },
        ],
      },
    });
    // WHEN nobody creates the same Workflow THEN it is stored
    const created = (await asNobody.createNamespacedCustomObject({
      ...ARGO,
      plural: 'workflows',
      body: workflow,
    })) as {
      metadata: { name: string };
    };
    expect(created.metadata.name).toBe('from-nobody');
  });
});
