/**
 * Pure: the values of the platform-service chart for one build, and the chart version a
 * build publishes. No I/O here; `publishServiceChart` in ./publish.ts writes and pushes.
 *
 * The chart's values.schema.json checks the same things again at `helm lint` time; this
 * module checks them first so a bad build request fails with every problem named by its
 * dotted path, before any file is written.
 */
import { InputError, type Issue } from '../errors.js';

export const ROUTE_KINDS = ['none', 'ingress', 'httproute', 'platform'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];
export const MODES = ['image', 'overlay'] as const;
export type Mode = (typeof MODES)[number];

/** An image or artifact in a registry, always by digest. */
export interface DigestRef {
  /** host[:port]/path, without tag or digest. */
  repository: string;
  /** sha256:<64 hex> */
  digest: string;
}

export interface OverlayInput extends DigestRef {
  /** Image of the init container that fetches and unzips the overlay (see the chart's README). */
  fetcherImage: string;
  /** Command of that container; empty runs the chart's own files/fetch-overlay.sh. */
  fetcherCommand?: string[];
  /** A kubernetes.io/dockerconfigjson Secret with the registry's credentials. */
  pullSecret?: string;
  /** Plain HTTP to the registry (loopback and in-cluster test registries only). */
  plainHttp?: boolean;
}

export interface RouteInput {
  kind: RouteKind;
  /** Route prefix: `/` or `/a/b`, no trailing slash. Also the CONTEXT_ROOT env. */
  path: string;
  hosts?: string[];
  ingress?: { className?: string; annotations?: Record<string, string>; tls?: Array<{ secretName: string; hosts?: string[] }> };
  httproute?: { parentRefs: Array<Record<string, unknown> & { name: string }>; annotations?: Record<string, string> };
  platform?: { apiVersion?: string; kind?: string; annotations?: Record<string, string>; spec?: Record<string, unknown> };
}

export interface ResourceList {
  cpu?: string;
  memory?: string;
}
export interface Resources {
  requests?: ResourceList;
  limits?: ResourceList;
}

/** What a build knows about the service it deploys. */
export interface ServiceValuesInput {
  mode: Mode;
  /** The service image (always given: also in overlay mode it records the build). */
  image: DigestRef;
  /** The base image; required in overlay mode. */
  base?: DigestRef;
  /** The overlay artifact; required in overlay mode. */
  overlay?: OverlayInput;
  /** Default: no route, served at `/`. */
  route?: RouteInput;
  /** The port the service listens on (PORT env). */
  port: number;
  env?: Record<string, string>;
  /** Secrets whose keys become env variables. */
  envFrom?: string[];
  resources?: Resources;
  replicas?: number;
  command?: string[];
  args?: string[];
  imagePullSecrets?: string[];
  /** Extra labels on every resource (e.g. the tenant and build id). */
  labels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
}

/** The values object of the platform-service chart (values.yaml), as svcbuild writes it. */
export interface ServiceValues {
  mode: Mode;
  image: DigestRef;
  base?: DigestRef;
  overlay?: OverlayInput & { fetcherCommand: string[]; pullSecret: string; plainHttp: boolean };
  imagePullSecrets: string[];
  port: number;
  route: RouteInput & { hosts: string[] };
  env: Record<string, string>;
  envFrom: string[];
  resources: Resources;
  replicas: number;
  command: string[];
  args: string[];
  labels: Record<string, string>;
  podAnnotations: Record<string, string>;
}

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const REPOSITORY_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const ROUTE_PATH_RE = /^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*)?$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUANTITY_RE = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** Set by the chart from `port` and `route.path`; a user may not override them. */
const RESERVED_ENV = new Set(['PORT', 'CONTEXT_ROOT']);

export const DEFAULT_RESOURCES: Resources = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '1', memory: '256Mi' },
};

/**
 * Pure: the chart values of one build. Checks every field and throws one InputError
 * listing all problems (paths like `overlay.digest`, `env.PORT`).
 *
 * @example
 * renderServiceValues({ mode: 'image', port: 8080,
 *   image: { repository: '127.0.0.1:5000/svcbuild/acme-shop', digest: 'sha256:…' },
 *   route: { kind: 'ingress', path: '/shop' } })
 */
export function renderServiceValues(input: ServiceValuesInput): ServiceValues {
  const issues: Issue[] = [];
  const check = (ok: boolean, path: string, message: string) => {
    if (!ok) issues.push({ path, message });
  };
  const checkRef = (ref: DigestRef | undefined, path: string) => {
    if (!ref) return issues.push({ path, message: `is required in ${input.mode} mode` });
    check(
      REPOSITORY_RE.test(ref.repository ?? ''),
      `${path}.repository`,
      `"${ref.repository}" is not a repository (host[:port]/path, lower case, no tag or digest)`,
    );
    check(DIGEST_RE.test(ref.digest ?? ''), `${path}.digest`, `"${ref.digest}" is not a digest (sha256: and 64 lower-case hex digits)`);
    return undefined;
  };

  check((MODES as readonly string[]).includes(input.mode), 'mode', `must be one of ${MODES.join(', ')}, not "${input.mode}"`);
  checkRef(input.image, 'image');
  // In image mode the base and overlay are optional: given, they are baked in too, so that
  // switching a release to overlay mode needs no rebuild.
  if (input.mode === 'overlay' || input.overlay) {
    checkRef(input.base, 'base');
    checkRef(input.overlay, 'overlay');
    if (input.overlay) {
      check(input.overlay.repository.includes('/'), 'overlay.repository', 'must name the registry host: host[:port]/path');
      check(!!input.overlay.fetcherImage, 'overlay.fetcherImage', 'is required in overlay mode');
      if (input.overlay.pullSecret) check(DNS_SUBDOMAIN_RE.test(input.overlay.pullSecret), 'overlay.pullSecret', 'is not a Secret name');
    }
  }
  check(
    Number.isInteger(input.port) && input.port >= 1 && input.port <= 65535,
    'port',
    `must be an integer from 1 to 65535, not ${input.port}`,
  );

  const route = input.route ?? { kind: 'none', path: '/' };
  check(
    (ROUTE_KINDS as readonly string[]).includes(route.kind),
    'route.kind',
    `must be one of ${ROUTE_KINDS.join(', ')}, not "${route.kind}"`,
  );
  check(ROUTE_PATH_RE.test(route.path), 'route.path', `"${route.path}" must be / or /segment[/segment...] with no trailing slash`);
  if (route.kind === 'httproute') {
    check(
      (route.httproute?.parentRefs.length ?? 0) > 0,
      'route.httproute.parentRefs',
      'needs at least one parent (Gateway) when route.kind is httproute',
    );
  }

  const env = input.env ?? {};
  for (const [name, value] of Object.entries(env)) {
    check(ENV_NAME_RE.test(name), `env.${name}`, 'is not a valid environment variable name');
    check(!RESERVED_ENV.has(name), `env.${name}`, 'is set by svcbuild from port and route.path');
    check(typeof value === 'string', `env.${name}`, 'must be a string');
  }
  (input.envFrom ?? []).forEach((s, i) => check(DNS_SUBDOMAIN_RE.test(s), `envFrom[${i}]`, `"${s}" is not a Secret name`));
  (input.imagePullSecrets ?? []).forEach((s, i) =>
    check(DNS_SUBDOMAIN_RE.test(s), `imagePullSecrets[${i}]`, `"${s}" is not a Secret name`),
  );

  const resources = input.resources ?? DEFAULT_RESOURCES;
  for (const group of ['requests', 'limits'] as const) {
    for (const [key, q] of Object.entries(resources[group] ?? {})) {
      check(QUANTITY_RE.test(String(q)), `resources.${group}.${key}`, `"${q}" is not a quantity (e.g. 100m, 1, 256Mi)`);
    }
  }
  const replicas = input.replicas ?? 1;
  check(Number.isInteger(replicas) && replicas >= 0, 'replicas', `must be an integer >= 0, not ${replicas}`);

  if (issues.length) throw new InputError('invalid service chart values', issues);

  const values: ServiceValues = {
    mode: input.mode,
    image: pickRef(input.image),
    imagePullSecrets: [...(input.imagePullSecrets ?? [])],
    port: input.port,
    route: { ...route, hosts: [...(route.hosts ?? [])] },
    env: Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    envFrom: [...(input.envFrom ?? [])],
    resources,
    replicas,
    command: [...(input.command ?? [])],
    args: [...(input.args ?? [])],
    labels: { ...(input.labels ?? {}) },
    podAnnotations: { ...(input.podAnnotations ?? {}) },
  };
  if (input.base && input.overlay) {
    values.base = pickRef(input.base);
    values.overlay = {
      ...pickRef(input.overlay),
      fetcherImage: input.overlay.fetcherImage,
      fetcherCommand: [...(input.overlay.fetcherCommand ?? [])],
      pullSecret: input.overlay.pullSecret ?? '',
      plainHttp: input.overlay.plainHttp ?? false,
    };
  }
  return values;
}

function pickRef(ref: DigestRef): DigestRef {
  return { repository: ref.repository, digest: ref.digest };
}

/**
 * Pure: the chart version of a build, `<base>-build-<id>` (a SemVer 2 pre-release, also a
 * valid OCI tag). Pre-release versions are never picked by a bare `helm pull`, so deploys
 * always name the version (see helmUpgradeArgs).
 *
 * @example chartVersionFor('01HZX3K9') // '0.1.0-build-01hzx3k9'
 */
export function chartVersionFor(buildId: string, base = '0.1.0'): string {
  const id = buildId.toLowerCase();
  const issues: Issue[] = [];
  if (!/^[0-9a-z-]{1,64}$/.test(id)) {
    issues.push({ path: 'buildId', message: `"${buildId}" must be 1 to 64 letters, digits or hyphens` });
  }
  if (!/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/.test(base)) {
    issues.push({ path: 'base', message: `"${base}" is not MAJOR.MINOR.PATCH` });
  }
  if (issues.length) throw new InputError('cannot derive a chart version', issues);
  return `${base}-build-${id}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Pure: `overrides` deep-merged onto `defaults` the way helm merges values (maps merge key
 * by key, anything else, lists included, is replaced). Used to write a complete values.yaml
 * into a published chart, since that file replaces the chart's own defaults.
 */
export function mergeValues(defaults: unknown, overrides: unknown): unknown {
  if (!isPlainObject(defaults) || !isPlainObject(overrides)) return overrides === undefined ? defaults : overrides;
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(overrides)) out[k] = mergeValues(defaults[k], v);
  return out;
}
