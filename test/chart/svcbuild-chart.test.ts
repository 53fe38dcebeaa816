import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SVCBUILD_CHART, lint, one, template } from './helm.js';
import { validateManifests } from './k8s-schema.js';
import { parse } from 'yaml';

const ALL = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const READ = ['get', 'list', 'watch'];

describe('svcbuild chart', () => {
  const values = { tenantNamespaces: ['t-acme', 't-beta'], buildNamespace: 'builds' };

  it('lints and renders valid Kubernetes objects', async () => {
    // GIVEN two tenant namespaces and a build namespace
    // WHEN the chart is linted and rendered
    const linted = await lint(SVCBUILD_CHART, values);
    const manifests = await template(SVCBUILD_CHART, values, { release: 'svcbuild', namespace: 'svcbuild' });
    // THEN lint passes and every object is valid
    expect(linted.code, linted.output).toBe(0);
    // (the shipped WorkflowTemplates are checked against Argo's schema in test/render)
    expect(validateManifests(manifests)).toEqual({
      errors: [],
      unchecked: ['argoproj.io/v1alpha1/WorkflowTemplate', 'argoproj.io/v1alpha1/WorkflowTemplate'],
    });
    expect(manifests.map((m) => `${m.kind}/${m.metadata.namespace}/${m.metadata.name}`).sort()).toEqual(
      [
        'WorkflowTemplate/undefined/svcbuild-base-image',
        'WorkflowTemplate/undefined/svcbuild-build',
        'ConfigMap/svcbuild/svcbuild-config',
        'Deployment/svcbuild/svcbuild',
        'Role/builds/svcbuild-api',
        'Role/builds/svcbuild-executor',
        'Role/t-acme/svcbuild-deploy',
        'Role/t-beta/svcbuild-deploy',
        'RoleBinding/builds/svcbuild-api',
        'RoleBinding/builds/svcbuild-executor',
        'RoleBinding/t-acme/svcbuild-deploy',
        'RoleBinding/t-beta/svcbuild-deploy',
        'Secret/builds/svcbuild-executor.service-account-token',
        'Service/svcbuild/svcbuild',
        'ServiceAccount/builds/svcbuild-build',
        'ServiceAccount/builds/svcbuild-deploy',
        'ServiceAccount/builds/svcbuild-executor',
        'ServiceAccount/svcbuild/svcbuild',
      ].sort(),
    );
  });

  it('grants exactly the listed permissions and nothing to build steps', async () => {
    // GIVEN the rendered chart
    const manifests = await template(SVCBUILD_CHART, values, { release: 'svcbuild', namespace: 'svcbuild' });
    // THEN the build account mounts no token and is bound to no Role
    const build = one(manifests, 'ServiceAccount', 'svcbuild-build');
    expect(build.automountServiceAccountToken).toBe(false);
    const bindings = manifests.filter((m) => m.kind === 'RoleBinding');
    expect(bindings.flatMap((b) => b.subjects.map((s: { name: string }) => s.name))).not.toContain('svcbuild-build');
    // AND the API may run Workflows, read pods and their logs, and add keys to the semaphore ConfigMap in the build namespace
    expect(one(manifests, 'Role', 'svcbuild-api').rules).toEqual([
      { apiGroups: ['argoproj.io'], resources: ['workflows'], verbs: ['create', 'get', 'list', 'watch', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['svcbuild-concurrency'], verbs: ['get', 'patch'] },
    ]);
    expect(one(manifests, 'RoleBinding', 'svcbuild-api').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'svcbuild', namespace: 'svcbuild' },
    ]);
    // AND Argo's executor may only report task results
    expect(one(manifests, 'Role', 'svcbuild-executor').rules).toEqual([
      { apiGroups: ['argoproj.io'], resources: ['workflowtaskresults'], verbs: ['create', 'patch'] },
    ]);
    // AND the deploy account may manage the service chart's kinds in each tenant namespace only
    const deployRoles = manifests.filter((m) => m.kind === 'Role' && m.metadata.name === 'svcbuild-deploy');
    expect(deployRoles.map((r) => r.metadata.namespace)).toEqual(['t-acme', 't-beta']);
    for (const role of deployRoles) {
      expect(role.rules).toEqual([
        { apiGroups: [''], resources: ['services', 'serviceaccounts', 'configmaps', 'secrets'], verbs: ALL },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ALL },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ALL },
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ALL },
        { apiGroups: ['platform.svcbuild.io'], resources: ['platformservices'], verbs: ALL },
        { apiGroups: ['apps'], resources: ['replicasets'], verbs: READ },
        { apiGroups: [''], resources: ['pods'], verbs: READ },
      ]);
    }
    for (const b of bindings.filter((m) => m.metadata.name === 'svcbuild-deploy')) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'svcbuild-deploy', namespace: 'builds' }]);
    }
  });

  it('runs svcbuild serve as the API account with its config file', async () => {
    // GIVEN a config and a registry credentials Secret
    const manifests = await template(
      SVCBUILD_CHART,
      { ...values, config: { registry: { host: 'registry.internal:5000', namespace: 'svc' } }, registryCredentialsSecret: 'reg' },
      { release: 'svcbuild', namespace: 'svcbuild' },
    );
    // THEN the Deployment runs `serve` with SVCBUILD_CONFIG and the credentials from the Secret
    const pod = one(manifests, 'Deployment', 'svcbuild').spec.template.spec;
    expect(pod.serviceAccountName).toBe('svcbuild');
    const c = pod.containers[0];
    expect(c.image).toBe('127.0.0.1:5000/svcbuild/svcbuild:0.1.0');
    expect(c.args).toEqual(['serve', '--port', '8080']);
    expect(c.env).toEqual([
      { name: 'SVCBUILD_CONFIG', value: '/etc/svcbuild/config.yaml' },
      { name: 'SVCBUILD_REGISTRY_USERNAME', valueFrom: { secretKeyRef: { name: 'reg', key: 'username' } } },
      { name: 'SVCBUILD_REGISTRY_PASSWORD', valueFrom: { secretKeyRef: { name: 'reg', key: 'password' } } },
    ]);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    // AND the config file holds the user's config plus the cluster facts
    expect(parse(one(manifests, 'ConfigMap', 'svcbuild-config').data['config.yaml'])).toEqual({
      registry: { host: 'registry.internal:5000', namespace: 'svc' },
      cluster: {
        buildNamespace: 'builds',
        tenantNamespaces: ['t-acme', 't-beta'],
        serviceAccounts: { api: 'svcbuild', build: 'svcbuild-build', executor: 'svcbuild-executor', deploy: 'svcbuild-deploy' },
      },
    });
  });

  it('installs files/workflow-templates/*.yaml verbatim, Argo expressions intact', async () => {
    // GIVEN a copy of the chart with one WorkflowTemplate file
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-chart-wt-'));
    try {
      const chart = join(dir, 'svcbuild');
      await cp(SVCBUILD_CHART, chart, { recursive: true });
      for (const f of await readdir(join(chart, 'files', 'workflow-templates'))) {
        if (f.endsWith('.yaml')) await rm(join(chart, 'files', 'workflow-templates', f));
      }
      const wt = [
        'apiVersion: argoproj.io/v1alpha1',
        'kind: WorkflowTemplate',
        'metadata:',
        '  name: svcbuild-build',
        'spec:',
        '  templates:',
        '    - name: echo',
        '      container:',
        '        image: busybox',
        '        args: ["{{inputs.parameters.msg}}"]',
        '',
      ].join('\n');
      await writeFile(join(chart, 'files', 'workflow-templates', 'build.yaml'), wt);
      // WHEN rendered
      const manifests = await template(chart, values, { release: 'svcbuild', namespace: 'builds' });
      // THEN the template is there unchanged
      const t = one(manifests, 'WorkflowTemplate', 'svcbuild-build');
      expect(t.spec.templates[0].container.args).toEqual(['{{inputs.parameters.msg}}']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
