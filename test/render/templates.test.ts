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
});
