/**
 * The one configuration schema of svcbuild, with defaults and descriptions. Parsing is
 * pure (`parseConfig`); `loadConfig` in ./load.ts is the only reader of files and
 * process.env, and it runs once, at the composition root.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { InputError, type Issue } from '../errors.js';
import { ScanSettingsSchema } from '../scan/settings.js';

export const KINDS = ['python', 'node', 'binary'] as const;
export type Kind = (typeof KINDS)[number];

/** The host name of `host[:port]`, without the port or IPv6 brackets. */
function hostName(host: string): string {
  const bracketed = /^\[([^\]]*)\](:\d+)?$/.exec(host);
  if (bracketed) return bracketed[1] as string;
  // Two colons or more: a bare IPv6 address, which carries no port.
  return host.split(':').length > 2 ? host : host.replace(/:\d+$/, '');
}

/** True for hosts whose traffic never leaves the machine: plain HTTP by default. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host);
  return name === 'localhost' || name === '::1' || (isIPv4(name) && name.startsWith('127.'));
}

/**
 * True for IP literals in the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7), e.g. a
 * registry on a cluster's bridge gateway `10.244.0.1:5000`. Names never count: what a name
 * resolves to is not known here.
 */
export function isPrivateIpHost(host: string): boolean {
  const name = hostName(host);
  if (isIPv4(name)) {
    const [a, b] = name.split('.').map(Number) as [number, number];
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  if (isIPv6(name)) {
    const first = name.startsWith('::') ? 0 : parseInt(name.split(':')[0] as string, 16);
    return (first & 0xfe00) === 0xfc00;
  }
  return false;
}

/**
 * The one rule for `registry.plainHttp`: allowed for loopback (the default there) and, when
 * set explicitly, for a private IP address; never for a name or a public address.
 */
export function plainHttpAllowed(host: string): boolean {
  return isLoopbackHost(host) || isPrivateIpHost(host);
}

/** The error message of a refused `registry.plainHttp`, naming the fix. */
export function plainHttpRefusal(host: string): string {
  return `plain HTTP is only allowed for a registry on loopback or a private IP address (10/8, 172.16/12, 192.168/16, fc00::/7), not ${host}; use TLS`;
}

/** Repository prefix under the registry host: lower-case path components separated by `/`. */
export const REGISTRY_NAMESPACE_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

const RegistrySchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1:5000').describe('Registry host[:port] images, overlays and charts are pushed to'),
    namespace: z
      .string()
      .regex(REGISTRY_NAMESPACE_RE, 'lower-case path components separated by /, e.g. svcbuild or platform/builds')
      .default('svcbuild')
      .describe('Repository prefix under the host'),
    plainHttp: z
      .boolean()
      .optional()
      .describe('Use http:// instead of https:// (loopback or private IP hosts only; default: true for loopback, false otherwise)'),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.plainHttp && !plainHttpAllowed(r.host)) {
      ctx.addIssue({ code: 'custom', path: ['plainHttp'], message: plainHttpRefusal(r.host) });
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
    templates: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        'argo: WorkflowTemplate settings over the defaults (src/render/settings.ts), e.g. { archiveLogs: false } where the controller has no artifact repository; checked when rendered',
      ),
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
    tenantConcurrency: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(2)
      .describe(
        "argo: concurrent builds of a tenant, written as its key of the svcbuild-concurrency ConfigMap when svcbuild adds one (install --tenant, or a tenant's first build); a key already there is never changed",
      ),
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
