import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { InputError } from '../../src/errors.js';
import {
  readTemplateSources,
  renderWorkflowTemplateFiles,
  renderWorkflowTemplates,
  renderWorkflowTemplatesYaml,
  RETRY_EXPRESSION,
  settingsFromConfig,
  type RenderSettingsInput,
  type WorkflowTemplateObject,
} from '../../src/render/index.js';
import { parseConfig } from '../../src/config/schema.js';
import { ENV_OVERRIDES, loadConfig } from '../../src/config/load.js';
import { registryClientFor } from '../../src/registry/client.js';
import { resolveScanSettings } from '../../src/scan/settings.js';
import { argoSchemaErrors } from './argo-schema.js';

const SETTINGS: RenderSettingsInput = {
  stepImage: 'registry.example/svcbuild/svcbuild@sha256:' + 'a'.repeat(64),
  builder: { kanikoImage: 'registry.example/svcbuild/kaniko-executor:v1.25.5', buildahImage: 'registry.example/svcbuild/svcbuild:0.1.0' },
};

type Tmpl = { name: string; [k: string]: any };
const byName = (t: WorkflowTemplateObject, name: string): Tmpl => {
  const found = t.spec.templates.find((x) => x.name === name);
  if (!found) throw new Error(`no template ${name}`);
  return found as Tmpl;
};
const build = () => renderWorkflowTemplates(SETTINGS).find((t) => t.metadata.name === 'svcbuild-build')!;

type Container = { name?: string; image: string; command: string[]; env?: Array<{ name: string; value: string }>; [k: string]: any };
/** Every container of a WorkflowTemplate as `<template>/<container>`: main ones and init containers. */
const containersOf = (t: WorkflowTemplateObject): Array<[string, Container]> =>
  t.spec.templates.flatMap((x: Tmpl) => [
    ...((x.initContainers as Container[] | undefined) ?? []).map((c): [string, Container] => [`${x.name}/${c.name}`, c]),
    ...(x.container ? [[`${x.name}/main`, x.container as Container] as [string, Container]] : []),
  ]);
/** The containers that run `svcbuild <step>`. */
const stepContainersOf = (t: WorkflowTemplateObject) => containersOf(t).filter(([, c]) => c.command[0] === 'svcbuild');
/** What a step container's env gives `loadConfig`. */
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe('renderWorkflowTemplates', () => {
  it('GIVEN default settings WHEN rendered THEN both WorkflowTemplates validate against Argo schema', () => {
    const templates = renderWorkflowTemplates(SETTINGS);
    expect(templates.map((t) => t.metadata.name)).toEqual(['svcbuild-base-image', 'svcbuild-build']);
    for (const t of templates) expect(argoSchemaErrors(t), t.metadata.name).toEqual([]);
  });

  it('GIVEN buildah as the builder WHEN rendered THEN it validates and the build step runs buildah through svcbuild', () => {
    const templates = renderWorkflowTemplates({
      ...SETTINGS,
      builder: { ...SETTINGS.builder!, engine: 'buildah' },
      registrySecret: 'regcred',
    });
    for (const t of templates) expect(argoSchemaErrors(t), t.metadata.name).toEqual([]);
    const step = byName(templates[1]!, 'build');
    expect(step.container.image).toBe('registry.example/svcbuild/svcbuild:0.1.0');
    expect(step.container.args.slice(0, 2)).toEqual(['build-image', '--engine=buildah']);
    expect(step.automountServiceAccountToken).toBeUndefined();
  });

  it('GIVEN the schema helper WHEN an object is malformed THEN it reports the path (the check is real)', () => {
    const bad = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'WorkflowTemplate',
      metadata: { name: 'x' },
      spec: { templates: [{ name: 'a', container: { image: 5 } }] },
    };
    expect(argoSchemaErrors(bad)).toEqual(['/spec/templates/0/container/image must be string {"type":"string"}']);
  });

  it('WHEN rendered THEN the pipeline reads source, build, scan | overlay, publish, deploy with an exit handler', () => {
    const t = build();
    expect(t.spec.entrypoint).toBe('pipeline');
    expect(t.spec.onExit).toBe('exit-handler');
    const groups = (byName(t, 'pipeline').steps as Array<Array<{ name: string }>>).map((g) => g.map((s) => s.name));
    expect(groups).toEqual([['source'], ['build'], ['scan', 'overlay'], ['publish'], ['deploy']]);
    const exit = (byName(t, 'exit-handler').steps as Array<Array<{ name: string; when?: string }>>)[0]!;
    expect(exit.map((s) => [s.name, s.when])).toEqual([
      ['final-status', undefined],
      ['delete-unpromoted-image', '{{workflow.status}} != Succeeded'],
    ]);
    expect(byName(t, 'delete-unpromoted-image').container.args).toContain(
      '--ref={{workflow.parameters.image-repo}}:build-{{workflow.parameters.build-id}}',
    );
  });

  it('WHEN rendered THEN Argo expressions survive verbatim and digests pass between steps as parameters', () => {
    const t = build();
    const pipeline = byName(t, 'pipeline');
    expect(pipeline.steps[2][1].arguments.parameters).toEqual([
      { name: 'image-digest', value: '{{steps.build.outputs.parameters.image-digest}}' },
    ]);
    expect(byName(t, 'overlay').container.args).toEqual([
      'overlay',
      '--base={{workflow.parameters.base-ref}}',
      '--image={{workflow.parameters.image-repo}}@{{inputs.parameters.image-digest}}',
      '--push={{workflow.parameters.image-repo}}:overlay-{{workflow.parameters.build-id}}',
      '--outputs=/tmp/outputs',
    ]);
    expect(t.spec.synchronization).toEqual({
      semaphores: [{ configMapKeyRef: { name: 'svcbuild-concurrency', key: '{{workflow.parameters.tenant}}' } }],
    });
    // No volume is shared between steps: only per-pod emptyDirs.
    const volumes = [...((t.spec.volumes as Tmpl[]) ?? []), ...t.spec.templates.flatMap((x) => (x.volumes as Tmpl[]) ?? [])];
    expect(volumes.every((v) => 'emptyDir' in v || 'secret' in v)).toBe(true);
    const yaml = renderWorkflowTemplatesYaml(SETTINGS);
    expect(yaml).not.toContain('\\{{');
    expect(yaml).not.toMatch(/&(amp|quot|#x27|lt|gt);/);
  });

  it('WHEN rendered THEN operators get title/description, labels and digests/summary as outputs', () => {
    const t = build();
    const md = t.spec.workflowMetadata as any;
    expect(md.annotations['workflows.argoproj.io/title']).toBe('build {{workflow.parameters.tenant}}/{{workflow.parameters.service}}');
    expect(md.annotations['workflows.argoproj.io/description']).toContain('{{workflow.parameters.build-id}}');
    expect(md.labels).toEqual({ 'svcbuild.io/kind': 'service-build' });
    expect(Object.keys(md.labelsFrom)).toEqual([
      'svcbuild.io/tenant',
      'svcbuild.io/service',
      'svcbuild.io/build-id',
      'svcbuild.io/language',
    ]);
    expect(byName(t, 'pipeline').outputs.parameters.map((p: Tmpl) => p.name)).toEqual(['image-digest', 'overlay-digest', 'scan-summary']);
    const globals = t.spec.templates
      .flatMap((x: Tmpl) => x.outputs?.parameters ?? [])
      .map((p: Tmpl) => p.globalName)
      .filter(Boolean);
    expect(globals).toEqual(['image-digest', 'scan-summary', 'overlay-digest', 'chart-ref', 'release-revision']);
  });

  it('WHEN rendered THEN hardening holds: no token for Kaniko, per-step accounts, retries never on a gate, deadlines, GC, TTL', () => {
    const t = build();
    expect(t.spec.automountServiceAccountToken).toBe(false);
    expect(t.spec.serviceAccountName).toBe('svcbuild-build');
    expect(t.spec.executor).toEqual({ serviceAccountName: 'svcbuild-executor' });
    const kaniko = byName(t, 'build');
    expect(kaniko.automountServiceAccountToken).toBe(false);
    expect(kaniko.container.command).toEqual(['/kaniko/executor']);
    expect(kaniko.container.image).toBe('registry.example/svcbuild/kaniko-executor:v1.25.5');
    const deploy = byName(t, 'deploy');
    expect([deploy.serviceAccountName, deploy.automountServiceAccountToken]).toEqual(['svcbuild-deploy', true]);
    for (const name of ['source', 'build', 'scan', 'overlay', 'publish', 'deploy']) {
      const step = byName(t, name);
      expect(step.retryStrategy, name).toEqual({
        limit: '2',
        retryPolicy: 'Always',
        expression: RETRY_EXPRESSION,
        backoff: { duration: '10s', factor: '2', maxDuration: '2m' },
      });
      expect(Number(step.activeDeadlineSeconds), name).toBeGreaterThan(0);
      expect(step.serviceAccountName ?? 'svcbuild-build', name).toBe(name === 'deploy' ? 'svcbuild-deploy' : 'svcbuild-build');
    }
    expect(RETRY_EXPRESSION).toBe('lastRetry.status == "Error" || (lastRetry.status == "Failed" && asInt(lastRetry.exitCode) == 6)');
    expect(t.spec.activeDeadlineSeconds).toBe(3600);
    expect(t.spec.podGC).toEqual({ strategy: 'OnWorkflowSuccess', deleteDelayDuration: '10m' });
    expect(t.spec.archiveLogs).toBe(true);
    expect(t.spec.ttlStrategy).toEqual({ secondsAfterSuccess: 86400, secondsAfterFailure: 604800 });
  });

  it('GIVEN settings holding quotes, newlines and mustaches WHEN rendered THEN each stays one scalar', () => {
    const evil = 'reg.example/x:1"\nspec: {evil: true}\n{{workflow.name}}';
    const [, t] = renderWorkflowTemplates({ ...SETTINGS, stepImage: evil });
    expect(byName(t!, 'source').container.image).toBe(evil);
    expect(Object.keys(t!.spec)).not.toContain('evil');
  });

  it('GIVEN invalid settings WHEN rendered THEN one InputError lists every field', () => {
    expect(() =>
      renderWorkflowTemplates({ stepImage: '', builder: { kanikoImage: 'k', buildahImage: 'b' }, serviceAccounts: { deploy: 'Bad Name' } }),
    ).toThrow(InputError);
    try {
      renderWorkflowTemplates({ stepImage: '', builder: { kanikoImage: 'k', buildahImage: 'b' }, serviceAccounts: { deploy: 'Bad Name' } });
    } catch (e) {
      expect((e as InputError).issues.map((i) => i.path)).toEqual(['settings.stepImage', 'settings.serviceAccounts.deploy']);
    }
  });

  it('GIVEN a template with a misspelt setting WHEN rendered THEN it fails instead of rendering an empty value', () => {
    const sources = readTemplateSources();
    sources.templates = { broken: 'apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: {{json nmes.build}}}\n' };
    expect(() => renderWorkflowTemplates(SETTINGS, sources)).toThrow(/nmes/);
  });

  it('GIVEN a private IP registry over plain HTTP WHEN rendered THEN every svcbuild container gets the registry as SVCBUILD_* env', async () => {
    // GIVEN an installation whose registry is the bed's bridge gateway, over plain HTTP
    const config = parseConfig({ registry: { host: '10.244.0.1:5000', namespace: 'bed', plainHttp: true } });
    for (const engine of ['kaniko', 'buildah'] as const) {
      const [base, svc] = renderWorkflowTemplates(settingsFromConfig(config, { registrySecret: 'regcred', builder: { engine } }));
      // THEN each container that runs the step image has exactly the registry's three variables and a writable state directory
      const expected = [
        { name: 'SVCBUILD_REGISTRY', value: '10.244.0.1:5000' },
        { name: 'SVCBUILD_REGISTRY_NAMESPACE', value: 'bed' },
        { name: 'SVCBUILD_REGISTRY_PLAIN_HTTP', value: 'true' },
        { name: 'SVCBUILD_STATE_DIR', value: '/tmp/svcbuild-state' },
      ];
      const builder = engine === 'buildah' ? ['build/main'] : [];
      expect(stepContainersOf(svc!).map(([n]) => n)).toEqual([
        'source/main',
        'build/context',
        ...builder,
        'scan/main',
        'overlay/main',
        'publish/main',
        'deploy/main',
        'final-status/main',
        'delete-unpromoted-image/main',
      ]);
      expect(stepContainersOf(base!).map(([n]) => n)).toEqual([
        'build/context',
        ...builder,
        'scan/main',
        'publish/main',
        'final-status/main',
        'delete-unpromoted-image/main',
      ]);
      for (const t of [base!, svc!]) {
        expect(argoSchemaErrors(t), `${engine} ${t.metadata.name}`).toEqual([]);
        for (const [name, c] of stepContainersOf(t)) expect(c.env, `${engine} ${t.metadata.name} ${name}`).toEqual(expected);
        // AND the registry credentials still come from the mounted docker config
        for (const [name, c] of stepContainersOf(t).filter(([n]) => !n.endsWith('/context'))) {
          if (name === 'final-status/main') continue;
          expect(c.volumeMounts, `${t.metadata.name} ${name}`).toContainEqual({
            name: 'registry-auth',
            mountPath: '/home/user/.docker',
            readOnly: true,
          });
        }
      }
      // AND Kaniko, which is not svcbuild, keeps its own env only
      if (engine === 'kaniko') expect(byName(svc!, 'build').container.env).toEqual([{ name: 'DOCKER_CONFIG', value: '/kaniko/.docker' }]);
    }
  });

  it('GIVEN the env a step container gets WHEN the step loads its config THEN registry, client and scan DB resolve to the installation', async () => {
    // GIVEN the rendered scan step of a private IP registry over plain HTTP
    const config = parseConfig({ registry: { host: '10.244.0.1:5000', namespace: 'bed', plainHttp: true } });
    const scan = byName(renderWorkflowTemplates(settingsFromConfig(config))[1]!, 'scan').container as Container;
    // THEN each variable is one svcbuild reads
    expect(Object.keys(envOf(scan)).every((n) => ENV_OVERRIDES.some((o) => o.name === n))).toBe(true);
    // WHEN the step loads its config from that env alone (as in the pod)
    const loaded = await loadConfig({ cwd: '/', home: '/opt/svcbuild', env: envOf(scan) });
    // THEN it talks to the installation's registry over plain HTTP, and finds the Trivy DB mirror there
    expect(loaded.registry).toEqual({ host: '10.244.0.1:5000', namespace: 'bed', plainHttp: true });
    expect(registryClientFor(loaded.registry).host).toBe('10.244.0.1:5000');
    const settings = resolveScanSettings(loaded.scan, { registryHost: loaded.registry.host, stateDir: loaded.stateDir });
    expect(settings.dbRepository).toBe('10.244.0.1:5000/trivy-db:2');
    // AND with TLS (the default for a private IP) the env says so
    const tls = byName(renderWorkflowTemplates(settingsFromConfig(parseConfig({ registry: { host: '10.244.0.1:5000' } })))[1]!, 'scan');
    expect(envOf(tls.container).SVCBUILD_REGISTRY_PLAIN_HTTP).toBe('false');
    expect((await loadConfig({ cwd: '/', home: '/', env: envOf(tls.container) })).registry.plainHttp).toBe(false);
  });

  it('GIVEN builder.caBundleConfigMap WHEN rendered THEN the builder mounts its bundle over the system one, read-only', () => {
    for (const engine of ['kaniko', 'buildah'] as const) {
      const templates = renderWorkflowTemplates({
        ...SETTINGS,
        builder: { ...SETTINGS.builder!, engine, caBundleConfigMap: 'svcbuild-ca-bundle' },
      });
      for (const t of templates) {
        expect(argoSchemaErrors(t), `${engine} ${t.metadata.name}`).toEqual([]);
        const step = byName(t, 'build');
        // THEN the build pod has the ConfigMap's one key as a volume
        expect(step.volumes).toEqual([
          { name: 'workspace', emptyDir: {} },
          {
            name: 'ca-bundle',
            configMap: { name: 'svcbuild-ca-bundle', items: [{ key: 'ca-certificates.crt', path: 'ca-certificates.crt' }] },
          },
        ]);
        // AND the builder mounts that file (subPath) over /etc/ssl/certs/ca-certificates.crt
        expect(step.container.volumeMounts).toContainEqual({
          name: 'ca-bundle',
          mountPath: '/etc/ssl/certs/ca-certificates.crt',
          subPath: 'ca-certificates.crt',
          readOnly: true,
        });
        // AND no other step sees it
        const others = t.spec.templates.filter((x: Tmpl) => x.name !== 'build' && x.container);
        for (const x of others) expect(JSON.stringify(x), x.name).not.toContain('ca-bundle');
      }
    }
    // GIVEN no ConfigMap (the default) THEN nothing is mounted
    for (const t of renderWorkflowTemplates(SETTINGS)) {
      expect(byName(t, 'build').volumes).toEqual([{ name: 'workspace', emptyDir: {} }]);
      expect(JSON.stringify(t)).not.toContain('ca-bundle');
    }
  });

  it('GIVEN plain HTTP to a public registry or a bad ConfigMap name WHEN rendered THEN one InputError names each setting and the fix', () => {
    let err: InputError | undefined;
    try {
      renderWorkflowTemplates({
        ...SETTINGS,
        registryHost: 'registry.example.com',
        registryPlainHttp: true,
        builder: { ...SETTINGS.builder!, caBundleConfigMap: 'CA Bundle' },
      });
    } catch (e) {
      err = e as InputError;
    }
    expect(err).toBeInstanceOf(InputError);
    expect(err!.issues).toEqual([
      { path: 'settings.builder.caBundleConfigMap', message: 'a lower-case DNS name (a-z, 0-9, "-", ".")' },
      {
        path: 'settings.registryPlainHttp',
        message:
          'plain HTTP is only allowed for a registry on loopback or a private IP address (10/8, 172.16/12, 192.168/16, fc00::/7), not registry.example.com; use TLS',
      },
    ]);
  });

  it('GIVEN the config WHEN settings are derived THEN images come from the registry and the output is a stable YAML stream', () => {
    const s = settingsFromConfig(parseConfig({ registry: { host: '127.0.0.1:5000' } }));
    expect([s.stepImage, s.builder.kanikoImage, s.registryPlainHttp]).toEqual([
      '127.0.0.1:5000/svcbuild/svcbuild:0.1.0',
      '127.0.0.1:5000/svcbuild/kaniko-executor:v1.25.5',
      true,
    ]);
    const files = renderWorkflowTemplateFiles(s);
    expect(byName(files[1]!.object, 'build').container.args).toContain('--insecure');
    const yaml = renderWorkflowTemplatesYaml(s);
    expect(yaml).toBe(renderWorkflowTemplatesYaml(s));
    expect(parseAllDocuments(yaml).map((d) => (d.toJS() as WorkflowTemplateObject).metadata.name)).toEqual([
      'svcbuild-base-image',
      'svcbuild-build',
    ]);
  });

  it('GIVEN executor.templates in the config WHEN settings are derived THEN they apply under the caller overrides, and a bad one is named', () => {
    // GIVEN an installation without an artifact repository and its own step deadline
    const config = parseConfig({
      executor: { kind: 'argo', templates: { archiveLogs: false, builder: { cacheRepo: '127.0.0.1:5000/svcbuild/cache' } } },
    });
    // WHEN its settings are derived, with a caller override of the step image
    const s = settingsFromConfig(config, { stepImage: 'reg.example/svcbuild@sha256:' + 'a'.repeat(64) });
    // THEN the config's values are there, beside the derived and the overridden ones
    expect([s.archiveLogs, s.builder.cacheRepo, s.builder.kanikoImage, s.stepImage]).toEqual([
      false,
      '127.0.0.1:5000/svcbuild/cache',
      '127.0.0.1:5000/svcbuild/kaniko-executor:v1.25.5',
      'reg.example/svcbuild@sha256:' + 'a'.repeat(64),
    ]);
    const [, build] = renderWorkflowTemplates(s);
    expect((build!.spec as { archiveLogs?: boolean }).archiveLogs).toBe(false);
    // AND a wrong type is refused with its settings path
    const bad = parseConfig({ executor: { kind: 'argo', templates: { archiveLogs: 'no' } } });
    let err: unknown;
    try {
      settingsFromConfig(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues.map((i) => i.path)).toEqual(['settings.archiveLogs']);
  });

  it("GIVEN the rendered build pipeline WHEN each svcbuild step container's arguments are parsed by the CLI THEN every flag is one it accepts", async () => {
    // GIVEN every container of svcbuild-build (both builders) that runs `svcbuild <step>`
    const { cli } = await import('../../src/cli/main.js');
    const { Writable } = await import('node:stream');
    for (const engine of ['kaniko', 'buildah'] as const) {
      const [, svc] = renderWorkflowTemplates({ ...SETTINGS, builder: { ...SETTINGS.builder, engine } });
      for (const [where, c] of stepContainersOf(svc!)) {
        // WHEN its exact arguments go to the CLI with --help (flags are parsed, nothing runs)
        let err = '';
        const sink = new Writable({ write: (_c, _e, cb) => cb() });
        const errSink = new Writable({
          write: (chunk: Buffer, _e, cb) => {
            err += chunk.toString();
            cb();
          },
        });
        const code = await cli([...(c.args as string[]), '--help'], { stdout: sink, stderr: errSink });
        // THEN the command exists and accepts every flag
        expect({ where, code, err }).toEqual({ where, code: 0, err: '' });
      }
    }
  });
});
