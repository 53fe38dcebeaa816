/**
 * Pure: handlebars sources + installation settings -> Argo WorkflowTemplate objects and YAML.
 *
 * Handlebars runs with `noEscape` (no HTML escaping) and `strict` (a misspelt setting is an
 * error, not an empty string). Settings reach the text only through the `json` helper, so each
 * one is a single YAML scalar (or flow collection) whatever it contains. Argo's own
 * expressions are written `\{{...}}` in the sources and come out as `{{...}}`.
 */
import Handlebars from 'handlebars';
import { parseDocument } from 'yaml';
import { InputError, InternalError, type Issue } from '../errors.js';
import {
  CA_BUNDLE_KEY,
  CA_BUNDLE_PATH,
  parseRenderSettings,
  STEP_EXIT_CODES,
  type RenderSettings,
  type RenderSettingsInput,
} from './settings.js';
import { readTemplateSources, type TemplateSources } from './sources.js';

/** A WorkflowTemplate as rendered; the Argo schema (test/render) checks its full shape. */
export interface WorkflowTemplateObject {
  apiVersion: 'argoproj.io/v1alpha1';
  kind: 'WorkflowTemplate';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown> & { templates: Array<{ name: string } & Record<string, unknown>> };
}

/** One rendered file: its name (`<template>.yaml`), its text and the object it holds. */
export interface RenderedTemplate {
  file: string;
  yaml: string;
  object: WorkflowTemplateObject;
}

/**
 * Argo retry expression: retry a pod-level error, or a step that exited with svcbuild's
 * UpstreamError code; never a gate failure, bad input or any other failure.
 */
export const RETRY_EXPRESSION = `lastRetry.status == "Error" || (lastRetry.status == "Failed" && asInt(lastRetry.exitCode) == ${STEP_EXIT_CODES.upstream})`;

function viewModel(s: RenderSettings): Record<string, unknown> {
  const kanikoExtraArgs: string[] = [];
  if (s.registryPlainHttp) kanikoExtraArgs.push('--insecure', '--insecure-pull');
  if (s.builder.cacheRepo) kanikoExtraArgs.push('--cache=true', `--cache-repo=${s.builder.cacheRepo}`);
  return {
    ...s,
    builderPartial: `build-${s.builder.engine}`,
    builderIsKaniko: s.builder.engine === 'kaniko',
    retryExpression: RETRY_EXPRESSION,
    exitCodes: STEP_EXIT_CODES,
    kanikoExtraArgs,
    // An env value is a string: "true"/"false", as SVCBUILD_REGISTRY_PLAIN_HTTP reads it.
    registryPlainHttpEnv: String(s.registryPlainHttp),
    caBundle: { key: CA_BUNDLE_KEY, path: CA_BUNDLE_PATH },
  };
}

function handlebarsFor(sources: TemplateSources): typeof Handlebars {
  const hb = Handlebars.create();
  // JSON is YAML: a string with quotes, newlines or `{{` stays one scalar.
  hb.registerHelper('json', (value: unknown) => {
    if (value === undefined) throw new InternalError('json helper: undefined value');
    return JSON.stringify(value);
  });
  // Argo's IntOrString fields (template deadlines, retry limits) are strings in its schema.
  hb.registerHelper('intOrString', (value: unknown) => JSON.stringify(String(value)));
  for (const [name, text] of Object.entries(sources.partials)) hb.registerPartial(name, text);
  return hb;
}

/** Pure: renders one source text; parses the result and reports YAML errors with the file name. */
function renderOne(hb: typeof Handlebars, name: string, text: string, view: Record<string, unknown>): RenderedTemplate {
  const file = `${name}.yaml`;
  const yaml = hb.compile(text, { noEscape: true, strict: true })(view);
  const doc = parseDocument(yaml, { uniqueKeys: true, prettyErrors: false });
  const issues: Issue[] = [...doc.errors, ...doc.warnings].map((e) => ({ path: file, message: e.message }));
  const object = doc.toJS() as WorkflowTemplateObject | null;
  if (!issues.length && (object?.kind !== 'WorkflowTemplate' || object.apiVersion !== 'argoproj.io/v1alpha1')) {
    issues.push({
      path: `${file}.kind`,
      message: `expected an argoproj.io/v1alpha1 WorkflowTemplate, got ${object?.apiVersion}/${object?.kind}`,
    });
  }
  if (issues.length) throw new InputError(`workflow-templates/${name}.yaml.hbs does not render to valid YAML`, issues);
  return { file, yaml: yaml.replace(/^\n+/, ''), object: object as WorkflowTemplateObject };
}

/**
 * Pure (given `sources`): every WorkflowTemplate of the installation, as files.
 *
 * @example renderWorkflowTemplateFiles(settingsFromConfig(config)).map((t) => t.file)
 *   // ['svcbuild-base-image.yaml', 'svcbuild-build.yaml']
 */
export function renderWorkflowTemplateFiles(
  settings: RenderSettings | RenderSettingsInput,
  sources: TemplateSources = readTemplateSources(),
): RenderedTemplate[] {
  const parsed = parseRenderSettings(settings);
  const hb = handlebarsFor(sources);
  const view = viewModel(parsed);
  return Object.entries(sources.templates).map(([name, text]) => renderOne(hb, name, text, view));
}

/** Pure (given `sources`): every WorkflowTemplate of the installation, as objects. */
export function renderWorkflowTemplates(
  settings: RenderSettings | RenderSettingsInput,
  sources?: TemplateSources,
): WorkflowTemplateObject[] {
  return renderWorkflowTemplateFiles(settings, sources).map((t) => t.object);
}

/** Pure (given `sources`): every WorkflowTemplate as one multi-document YAML stream for kubectl. */
export function renderWorkflowTemplatesYaml(settings: RenderSettings | RenderSettingsInput, sources?: TemplateSources): string {
  return renderWorkflowTemplateFiles(settings, sources)
    .map((t) => `---\n# Source: workflow-templates/${t.file}.hbs\n${t.yaml}`)
    .join('');
}
