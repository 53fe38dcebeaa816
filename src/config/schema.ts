/**
 * The one configuration schema of svcbuild, with defaults and descriptions. Parsing is
 * pure (`parseConfig`); `loadConfig` in ./load.ts is the only reader of files and
 * process.env, and it runs once, at the composition root.
 */
import { z } from 'zod';
import { InputError, type Issue } from '../errors.js';
import { ScanSettingsSchema } from '../scan/settings.js';

export const KINDS = ['python', 'node', 'binary'] as const;
export type Kind = (typeof KINDS)[number];

/** True for hosts whose traffic never leaves the machine: the only ones allowed plain HTTP. */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

const RegistrySchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1:5000').describe('Registry host[:port] images, overlays and charts are pushed to'),
    namespace: z
      .string()
      .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'lower-case path components separated by /')
      .default('svcbuild')
      .describe('Repository prefix under the host'),
    plainHttp: z.boolean().optional().describe('Use http:// instead of https:// (loopback hosts only; default: true for loopback)'),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.plainHttp && !isLoopbackHost(r.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['plainHttp'],
        message: `plain HTTP is only allowed for loopback registries, not ${r.host}; use TLS`,
      });
    }
    if ((r.username === undefined) !== (r.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'set both username and password, or neither' });
    }
  })
  .transform((r) => ({ ...r, plainHttp: r.plainHttp ?? isLoopbackHost(r.host) }));

const BaseImageSchema = z.object({
  kind: z.enum(KINDS).describe('The project kind this base image serves'),
  dir: z.string().describe('Directory under base-images/ holding its Dockerfile'),
  args: z.record(z.string(), z.string()).default({}).describe('Build arguments'),
  /** Python X.Y or Node major version the image provides; checked against the project. */
  languageVersion: z.string().optional(),
  description: z.string().default(''),
});
export type BaseImageSpec = z.infer<typeof BaseImageSchema>;

export const DEFAULT_BASE_IMAGES: Record<string, z.input<typeof BaseImageSchema>> = {
  'python-3.13': {
    kind: 'python',
    dir: 'python',
    args: { PYTHON_VERSION: '3.13' },
    languageVersion: '3.13',
    description: 'Debian trixie, CPython 3.13, uv, /home/user/the_venv with requests and click',
  },
  'node-22': {
    kind: 'node',
    dir: 'node',
    args: { NODE_VERSION: '22.23.3', NPM_VERSION: '10.9.9' },
    languageVersion: '22',
    description: 'Debian trixie, Node.js 22, /home/user/node_modules with express',
  },
  binary: {
    kind: 'binary',
    dir: 'binary',
    args: {},
    description: 'Minimal Debian trixie with user and /project, for an executable and its assets',
  },
};

const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Which executor runs builds: local (state on disk) by default, argo when configured. */
const ExecutorSchema = z
  .object({
    kind: z
      .enum(['local', 'argo'])
      .default('local')
      .describe('local: builds on this machine, state on disk; argo: builds as Argo Workflows'),
    kubeconfig: z
      .string()
      .min(1)
      .optional()
      .describe('argo: kubeconfig file (its current context); default: in-cluster config, $KUBECONFIG or ~/.kube/config'),
    buildNamespace: z
      .string()
      .regex(DNS_LABEL_RE, 'a namespace name (lower-case DNS label)')
      .default('svcbuild-builds')
      .describe('argo: namespace of the svcbuild WorkflowTemplates, where build Workflows run'),
    tenantNamespace: z
      .string()
      .default('tenant-{tenant}')
      .describe("argo: namespace a tenant's services are deployed into; {tenant} is replaced by the tenant")
      .superRefine((t, ctx) => {
        if (!t.includes('{tenant}')) {
          ctx.addIssue({ code: 'custom', message: 'must contain {tenant}, e.g. tenant-{tenant}' });
        } else if (!DNS_LABEL_RE.test(t.replaceAll('{tenant}', 'a'))) {
          ctx.addIssue({ code: 'custom', message: 'must give a namespace name (lower-case DNS label) once {tenant} is replaced' });
        }
      }),
  })
  .strict();

export const ConfigSchema = z.object({
  registry: RegistrySchema.prefault({}),
  executor: ExecutorSchema.prefault({}).describe('The executor that runs builds (issue 6)'),
  stateDir: z.string().default('.state').describe('Where the local executor keeps builds, overlays and caches'),
  baseImagesDir: z.string().default('base-images').describe('Directory of the base image definitions'),
  baseImages: z.record(z.string(), BaseImageSchema).prefault(DEFAULT_BASE_IMAGES),
  scan: ScanSettingsSchema.prefault({}).describe('The scan step: gate threshold, ignore list, Trivy and its vulnerability DB'),
  enabledKinds: z
    .array(z.enum(KINDS))
    .nonempty()
    .default([...KINDS])
    .describe('Project kinds this installation builds'),
  defaults: z
    .object({
      base: z.record(z.enum(KINDS), z.string()).default({ python: 'python-3.13', node: 'node-22', binary: 'binary' }),
      port: z.number().int().min(1024).max(65535).default(8080),
      tenant: z.string().default('local'),
    })
    .prefault({}),
  build: z
    .object({
      caBundle: z
        .string()
        .nullable()
        .default('/etc/ssl/certs/ca-certificates.crt')
        .describe('CA bundle mounted (never copied) into build steps so installers trust the same CAs as this host; null to disable'),
      isolation: z.enum(['chroot', 'oci']).default('chroot'),
      /** Debian mirror used by debootstrap for the OS base image. */
      debianMirror: z.string().url().default('http://deb.debian.org/debian'),
      debianSuite: z.string().default('trixie'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type RegistryConfig = Config['registry'];

/** Pure: validates raw config data, reporting every problem with its dotted path. */
export function parseConfig(raw: unknown): Config {
  const res = ConfigSchema.safeParse(raw ?? {});
  if (!res.success) {
    const issues: Issue[] = res.error.issues.map((i) => ({ path: ['config', ...i.path].join('.'), message: i.message }));
    throw new InputError('invalid svcbuild configuration', issues);
  }
  const cfg = res.data;
  const issues: Issue[] = [];
  for (const [kind, base] of Object.entries(cfg.defaults.base)) {
    if (!cfg.baseImages[base]) issues.push({ path: `config.defaults.base.${kind}`, message: `unknown base image "${base}"` });
  }
  if (issues.length) throw new InputError('invalid svcbuild configuration', issues);
  return cfg;
}
