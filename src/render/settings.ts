/**
 * The installation's settings the WorkflowTemplates are rendered from: images, service
 * accounts, resource defaults, deadlines, retention. They shape structure only; a build's own
 * values (tenant, service, source) never come through here (see ./workflow.ts).
 */
import { z } from 'zod';
import { REGISTRY_NAMESPACE_RE, plainHttpAllowed, plainHttpRefusal, type Config } from '../config/schema.js';
import { InputError, type Issue } from '../errors.js';

/** Exit codes of the svcbuild step CLI that the retry expression tells apart (src/errors.ts). */
export const STEP_EXIT_CODES = {
  /** InputError: bad input, never retried. */
  input: 2,
  /** UpstreamError: the registry or an API failed, retried. */
  upstream: 6,
  /** BuildError: a gate or project failure (scan gate, overlay outside /project), never retried. */
  gate: 7,
} as const;

/** Pinned fork of Kaniko (the original repository is archived); built from its Go module. */
export const KANIKO_FORK = { module: 'github.com/chainguard-dev/kaniko', version: 'v1.25.5' } as const;

/** The key of the CA bundle ConfigMap, and where the builder sees it (Debian's bundle path). */
export const CA_BUNDLE_KEY = 'ca-certificates.crt';
export const CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

/** The semaphore ConfigMap of the templates (one key per tenant) unless settings name another. */
export const CONCURRENCY_CONFIGMAP = 'svcbuild-concurrency';
/** Its key bounding base image builds. */
export const BASE_IMAGES_CONCURRENCY_KEY = 'base-images';

const Quantity = z.union([z.string().regex(/^[0-9.]+[a-zA-Z]*$/), z.number()]);
const ResourcesSchema = z.object({
  requests: z.record(z.string(), Quantity).default({}),
  limits: z.record(z.string(), Quantity).default({}),
});
const k8sName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a lower-case DNS name (a-z, 0-9, "-", ".")')
  .max(253);
const seconds = z.number().int().positive();

export const RenderSettingsSchema = z.object({
  names: z
    .object({
      build: k8sName.default('svcbuild-build').describe('Name of the service build WorkflowTemplate'),
      baseImage: k8sName.default('svcbuild-base-image').describe('Name of the base image WorkflowTemplate'),
    })
    .prefault({}),
  stepImage: z.string().min(1).describe('The svcbuild step image (runs `svcbuild <step>`), by digest in production'),
  builder: z.object({
    engine: z.enum(['kaniko', 'buildah']).default('kaniko').describe('Which builder the build step runs'),
    kanikoImage: z.string().min(1).describe(`Kaniko executor image, built from ${KANIKO_FORK.module}@${KANIKO_FORK.version}`),
    buildahImage: z.string().min(1).describe('Image with buildah and svcbuild (the step image by default)'),
    cacheRepo: z.string().nullable().default(null).describe('Kaniko layer cache repository (shared dependency layers); null: no cache'),
    caBundleConfigMap: k8sName
      .nullable()
      .default(null)
      .describe(
        `ConfigMap in the build namespace whose key ${CA_BUNDLE_KEY} is mounted over ${CA_BUNDLE_PATH} in the builder, so installers in RUN steps trust its CAs; null: nothing mounted`,
      ),
  }),
  registryHost: z
    .string()
    .regex(/^[^\s/]+$/, 'host[:port] without a scheme or path, e.g. 10.244.0.1:5000')
    .default('127.0.0.1:5000')
    .describe('The registry every step talks to (SVCBUILD_REGISTRY in the step containers)'),
  registryNamespace: z
    .string()
    .regex(REGISTRY_NAMESPACE_RE, 'lower-case path components separated by /, e.g. svcbuild')
    .default('svcbuild')
    .describe('Repository prefix under the registry host (SVCBUILD_REGISTRY_NAMESPACE in the step containers)'),
  registryPlainHttp: z
    .boolean()
    .default(false)
    .describe('The registry speaks plain HTTP: loopback or private IP registries of test installations (SVCBUILD_REGISTRY_PLAIN_HTTP)'),
  registrySecret: k8sName
    .nullable()
    .default(null)
    .describe('Secret (type kubernetes.io/dockerconfigjson) mounted for registry pushes; null: none'),
  serviceAccounts: z
    .object({
      build: k8sName.default('svcbuild-build'),
      deploy: k8sName.default('svcbuild-deploy'),
      executor: k8sName.default('svcbuild-executor'),
    })
    .prefault({}),
  concurrency: z
    .object({
      configMap: k8sName.default(CONCURRENCY_CONFIGMAP).describe('ConfigMap with one key per tenant: its concurrent builds'),
      baseImageKey: z
        .string()
        .regex(/^[-._a-zA-Z0-9]+$/)
        .default(BASE_IMAGES_CONCURRENCY_KEY)
        .describe('Key bounding base image builds'),
    })
    .prefault({}),
  deadlines: z
    .object({
      workflowSeconds: seconds.default(3600),
      stepSeconds: seconds.default(900),
      buildSeconds: seconds.default(1800),
      deploySeconds: seconds.default(900),
      exitSeconds: seconds.default(300),
    })
    .prefault({}),
  retry: z
    .object({
      limit: z.number().int().min(0).max(10).default(2),
      backoff: z.string().default('10s'),
      maxBackoff: z.string().default('2m'),
    })
    .prefault({}),
  podGC: z
    .object({
      strategy: z.enum(['OnPodCompletion', 'OnPodSuccess', 'OnWorkflowCompletion', 'OnWorkflowSuccess']).default('OnWorkflowSuccess'),
      deleteDelayDuration: z.string().default('10m'),
    })
    .prefault({}),
  archiveLogs: z.boolean().default(true).describe('Archive step logs to the artifact repository (the controller must have one)'),
  ttl: z
    .object({
      secondsAfterSuccess: seconds.default(86_400),
      secondsAfterFailure: seconds.default(604_800),
    })
    .prefault({}),
  resources: z
    .object({
      step: ResourcesSchema.default({ requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } }),
      build: ResourcesSchema.default({ requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '4Gi' } }),
    })
    .prefault({}),
  kinds: z.array(z.string()).nonempty().default(['python', 'node', 'binary']),
});

export type RenderSettings = z.infer<typeof RenderSettingsSchema>;
export type RenderSettingsInput = z.input<typeof RenderSettingsSchema>;

/** Settings to put over those a config implies; `builder` fields one by one. */
export type SettingsOverrides = Omit<Partial<RenderSettingsInput>, 'builder'> & { builder?: Partial<RenderSettingsInput['builder']> };

/** The rule the steps apply to their config (`plainHttpAllowed`): a template must not hand them a refusal. */
function plainHttpIssues(raw: unknown): Issue[] {
  const r = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const host = RenderSettingsSchema.shape.registryHost.safeParse(r.registryHost);
  if (r.registryPlainHttp !== true || !host.success || plainHttpAllowed(host.data)) return [];
  return [{ path: 'settings.registryPlainHttp', message: plainHttpRefusal(host.data) }];
}

/** Pure: validates settings, reporting every problem with its dotted path. */
export function parseRenderSettings(raw: unknown): RenderSettings {
  const res = RenderSettingsSchema.safeParse(raw);
  const issues: Issue[] = [
    ...(res.success ? [] : res.error.issues.map((i) => ({ path: ['settings', ...i.path].join('.'), message: i.message }))),
    ...plainHttpIssues(raw),
  ];
  if (!res.success || issues.length) throw new InputError('invalid WorkflowTemplate settings', issues);
  return res.data;
}

/**
 * Pure: the settings an installation's config implies (registry, enabled kinds), with
 * `overrides` on top. The step image defaults to `<registry>/<namespace>/svcbuild:<version>`
 * and the Kaniko image to `<registry>/<namespace>/kaniko-executor:<fork version>`.
 *
 * @example settingsFromConfig(config, { stepImage: 'reg.example/svcbuild@sha256:...' })
 */
export function settingsFromConfig(config: Config, overrides: SettingsOverrides = {}, version = '0.1.0'): RenderSettings {
  const prefix = `${config.registry.host}/${config.registry.namespace}`;
  // The installation's own template settings (config executor.templates), then the caller's.
  const fromConfig = (config.executor.templates ?? {}) as SettingsOverrides;
  const stepImage = overrides.stepImage ?? fromConfig.stepImage ?? `${prefix}/svcbuild:${version}`;
  return parseRenderSettings({
    kinds: config.enabledKinds,
    registryHost: config.registry.host,
    registryNamespace: config.registry.namespace,
    registryPlainHttp: config.registry.plainHttp,
    ...fromConfig,
    ...overrides,
    stepImage,
    builder: {
      kanikoImage: `${prefix}/kaniko-executor:${KANIKO_FORK.version}`,
      buildahImage: stepImage,
      ...fromConfig.builder,
      ...overrides.builder,
    },
  });
}
