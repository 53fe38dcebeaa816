import { describe, expect, it } from 'vitest';
import { renderServiceValues, type RouteInput, type ServiceValuesInput } from '../../src/chart/values.js';
import { SERVICE_CHART, lint, one, template, templateError } from './helm.js';
import { validateManifests } from './k8s-schema.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const D4 = `sha256:${'4'.repeat(64)}`;
const IMAGE = { repository: '127.0.0.1:5000/svcbuild/acme-shop', digest: D1 };
const BASE = { repository: '127.0.0.1:5000/svcbuild/base/python-3.13', digest: D2 };
const FETCHER = `127.0.0.1:5000/svcbuild/fetcher@${D4}`;

const imageInput: ServiceValuesInput = {
  mode: 'image',
  image: IMAGE,
  port: 9000,
  route: { kind: 'none', path: '/shop' },
  env: { GREETING: 'hello: world', A_FLAG: 'true' },
  envFrom: ['shop-secrets'],
  resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '2', memory: '1Gi' } },
  replicas: 2,
};
const overlayInput: ServiceValuesInput = {
  ...imageInput,
  mode: 'overlay',
  base: BASE,
  overlay: { repository: IMAGE.repository, digest: D3, fetcherImage: FETCHER, pullSecret: 'registry-creds', plainHttp: true },
};

const CONTAINER_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

const ROUTES: Record<string, RouteInput> = {
  none: { kind: 'none', path: '/shop' },
  ingress: {
    kind: 'ingress',
    path: '/shop',
    hosts: ['shop.example.com'],
    ingress: { className: 'nginx', tls: [{ secretName: 'shop-tls', hosts: ['shop.example.com'] }] },
  },
  httproute: {
    kind: 'httproute',
    path: '/shop',
    hosts: ['shop.example.com'],
    httproute: { parentRefs: [{ name: 'gateway', namespace: 'gateway-system' }] },
  },
  platform: { kind: 'platform', path: '/shop', hosts: ['shop.example.com'], platform: { spec: { auth: { mode: 'jwt' } } } },
};

describe('platform-service chart', () => {
  for (const mode of ['image', 'overlay'] as const) {
    for (const [kind, route] of Object.entries(ROUTES)) {
      it(`lints and renders valid Kubernetes objects in ${mode} mode with route ${kind}`, async () => {
        // GIVEN the values of a build in this mode with this route
        const values = renderServiceValues({ ...(mode === 'image' ? imageInput : overlayInput), route });
        // WHEN helm lints and renders the chart
        const linted = await lint(SERVICE_CHART, values);
        const manifests = await template(SERVICE_CHART, values);
        // THEN lint passes, and every object with a known schema is valid
        expect(linted.code, linted.output).toBe(0);
        const { errors, unchecked } = validateManifests(manifests);
        expect(errors).toEqual([]);
        expect(unchecked).toEqual(kind === 'platform' ? ['platform.svcbuild.io/v1alpha1/PlatformService'] : []);
        const kinds = manifests.map((m) => m.kind).sort();
        const expected = ['Deployment', 'Service', 'ServiceAccount'];
        if (mode === 'overlay') expected.push('ConfigMap');
        if (kind === 'ingress') expected.push('Ingress');
        if (kind === 'httproute') expected.push('HTTPRoute');
        if (kind === 'platform') expected.push('PlatformService');
        expect(kinds).toEqual(expected.sort());
      });
    }
  }

  it('runs the service image by digest with PORT, CONTEXT_ROOT, env and a locked-down pod in image mode', async () => {
    // GIVEN an image-mode build
    const values = renderServiceValues(imageInput);
    // WHEN the chart is rendered
    const manifests = await template(SERVICE_CHART, values);
    // THEN the Deployment runs exactly the image by digest, as documented
    const dep = one(manifests, 'Deployment', 'shop');
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe('shop');
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.image).toBe(`127.0.0.1:5000/svcbuild/acme-shop@${D1}`);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 9000, protocol: 'TCP' }]);
    expect(c.env).toEqual([
      { name: 'PORT', value: '9000' },
      { name: 'CONTEXT_ROOT', value: '/shop' },
      { name: 'A_FLAG', value: 'true' },
      { name: 'GREETING', value: 'hello: world' },
    ]);
    expect(c.envFrom).toEqual([{ secretRef: { name: 'shop-secrets' } }]);
    expect(c.resources).toEqual({ requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '2', memory: '1Gi' } });
    expect(c.securityContext).toEqual(CONTAINER_SECURITY);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/shop/', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/shop/', port: 'http' });
    expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: {} }]);
    expect(c.command).toBeUndefined();
    const sa = one(manifests, 'ServiceAccount', 'shop');
    expect(sa.automountServiceAccountToken).toBe(false);
    const svc = one(manifests, 'Service', 'shop');
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
  });

  it('runs the base image with an init container that fetches the overlay into /project in overlay mode', async () => {
    // GIVEN an overlay-mode build with registry credentials over plain HTTP
    const values = renderServiceValues(overlayInput);
    // WHEN the chart is rendered
    const manifests = await template(SERVICE_CHART, values);
    // THEN the service runs the base image by digest with /project from the init container
    const pod = one(manifests, 'Deployment', 'shop').spec.template.spec;
    const c = pod.containers[0];
    expect(c.image).toBe(`127.0.0.1:5000/svcbuild/base/python-3.13@${D2}`);
    expect(c.volumeMounts).toEqual([
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'project', mountPath: '/project', readOnly: true },
    ]);
    expect(pod.initContainers).toHaveLength(1);
    const init = pod.initContainers[0];
    expect(init.name).toBe('fetch-overlay');
    expect(init.image).toBe(FETCHER);
    expect(init.command).toEqual(['sh', '/svcbuild/bin/fetch-overlay.sh']);
    expect(init.env).toEqual([
      { name: 'OVERLAY_REGISTRY', value: '127.0.0.1:5000' },
      { name: 'OVERLAY_REPOSITORY', value: 'svcbuild/acme-shop' },
      { name: 'OVERLAY_DIGEST', value: D3 },
      { name: 'OVERLAY_PLAIN_HTTP', value: 'true' },
      { name: 'OVERLAY_DEST', value: '/project' },
      { name: 'DOCKER_CONFIG', value: '/svcbuild/registry' },
    ]);
    expect(init.securityContext).toEqual(CONTAINER_SECURITY);
    expect(init.volumeMounts).toEqual([
      { name: 'project', mountPath: '/project' },
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'fetch-overlay', mountPath: '/svcbuild/bin', readOnly: true },
      { name: 'registry-auth', mountPath: '/svcbuild/registry', readOnly: true },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'tmp', emptyDir: {} },
      { name: 'project', emptyDir: {} },
      { name: 'fetch-overlay', configMap: { name: 'shop-fetch-overlay' } },
      { name: 'registry-auth', secret: { secretName: 'registry-creds', items: [{ key: '.dockerconfigjson', path: 'config.json' }] } },
    ]);
    const cm = one(manifests, 'ConfigMap', 'shop-fetch-overlay');
    expect(cm.data['fetch-overlay.sh']).toContain('verify "$WORK/overlay.zip" "$zip_digest" "overlay zip"');
  });

  it('runs a custom fetcher command (e.g. svcbuild fetch-overlay) without the script ConfigMap', async () => {
    // GIVEN overlay mode with the svcbuild step image as fetcher and no pull secret
    const values = renderServiceValues({
      ...overlayInput,
      overlay: { repository: IMAGE.repository, digest: D3, fetcherImage: FETCHER, fetcherCommand: ['svcbuild', 'fetch-overlay'] },
      command: ['/project/app/server'],
      args: ['--verbose'],
    });
    // WHEN the chart is rendered
    const manifests = await template(SERVICE_CHART, values);
    // THEN the init container runs that command, with no script volume or ConfigMap
    const pod = one(manifests, 'Deployment', 'shop').spec.template.spec;
    expect(pod.initContainers[0].command).toEqual(['svcbuild', 'fetch-overlay']);
    expect(pod.initContainers[0].env.map((e: { name: string }) => e.name)).toEqual([
      'OVERLAY_REGISTRY',
      'OVERLAY_REPOSITORY',
      'OVERLAY_DIGEST',
      'OVERLAY_PLAIN_HTTP',
      'OVERLAY_DEST',
    ]);
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual(['tmp', 'project']);
    expect(manifests.filter((m) => m.kind === 'ConfigMap')).toEqual([]);
    expect(pod.containers[0].command).toEqual(['/project/app/server']);
    expect(pod.containers[0].args).toEqual(['--verbose']);
  });

  it('renders each route kind on route.path to the service port', async () => {
    // GIVEN one build per route kind
    const render = async (route: RouteInput) => template(SERVICE_CHART, renderServiceValues({ ...imageInput, route }));
    // WHEN rendered
    const ingress = one(await render(ROUTES.ingress!), 'Ingress', 'shop');
    const httproute = one(await render(ROUTES.httproute!), 'HTTPRoute', 'shop');
    const platform = one(await render(ROUTES.platform!), 'PlatformService', 'shop');
    // THEN each routes route.path to the Service
    expect(ingress.spec).toEqual({
      ingressClassName: 'nginx',
      tls: [{ secretName: 'shop-tls', hosts: ['shop.example.com'] }],
      rules: [
        {
          host: 'shop.example.com',
          http: { paths: [{ path: '/shop', pathType: 'Prefix', backend: { service: { name: 'shop', port: { name: 'http' } } } }] },
        },
      ],
    });
    expect(httproute.spec).toEqual({
      parentRefs: [{ name: 'gateway', namespace: 'gateway-system' }],
      hostnames: ['shop.example.com'],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/shop' } }], backendRefs: [{ name: 'shop', port: 80 }] }],
    });
    expect(platform.apiVersion).toBe('platform.svcbuild.io/v1alpha1');
    expect(platform.spec).toEqual({
      service: { name: 'shop', port: 80 },
      route: { path: '/shop', hosts: ['shop.example.com'] },
      selector: { matchLabels: { 'app.kubernetes.io/name': 'platform-service', 'app.kubernetes.io/instance': 'shop' } },
      auth: { mode: 'jwt' },
    });
  });

  it('probes "/" for a service at the root and a configured probe path when given', async () => {
    // GIVEN a root route and an explicit readiness path
    const values = {
      ...renderServiceValues({ ...imageInput, route: { kind: 'none', path: '/' } }),
      probes: { readiness: { path: '/ready' } },
    };
    // WHEN rendered
    const c = one(await template(SERVICE_CHART, values), 'Deployment').spec.template.spec.containers[0];
    // THEN liveness uses "/" and readiness the given path
    expect(c.livenessProbe.httpGet.path).toBe('/');
    expect(c.readinessProbe.httpGet.path).toBe('/ready');
    expect(c.env.slice(0, 2)).toEqual([
      { name: 'PORT', value: '9000' },
      { name: 'CONTEXT_ROOT', value: '/' },
    ]);
  });

  describe('values.schema.json', () => {
    const valid = renderServiceValues(imageInput);
    const cases: Array<[string, object, string[]]> = [
      [
        'a digest that is not sha256:<64 hex>',
        { image: { ...IMAGE, digest: 'sha256:abc' } },
        [`- at '/image/digest': 'sha256:abc' does not match pattern '^sha256:[a-f0-9]{64}$'`],
      ],
      ['an image without repository and digest', { image: {} }, [`- at '/image': missing properties 'repository', 'digest'`]],
      ['a port out of range', { port: 70000 }, [`- at '/port': maximum: got 70,000, want 65,535`]],
      ['an unknown mode', { mode: 'vm' }, [`- at '/mode': value must be one of 'image', 'overlay'`]],
      [
        'a route path with a trailing slash',
        { route: { kind: 'none', path: '/shop/' } },
        [`- at '/route/path': '/shop/' does not match pattern`],
      ],
      ['negative replicas', { replicas: -1 }, [`- at '/replicas': minimum: got -1, want 0`]],
      [
        'an unknown route kind',
        { route: { kind: 'gateway', path: '/' } },
        [`- at '/route/kind': value must be one of 'none', 'ingress', 'httproute', 'platform'`],
      ],
      ['env overriding PORT', { env: { PORT: '1' } }, [`invalid propertyName 'PORT'`]],
      [
        'overlay mode without base and overlay',
        { mode: 'overlay' },
        [
          `- at '/base': missing properties 'repository', 'digest'`,
          `- at '/overlay': missing properties 'repository', 'digest'`,
          `- at '/overlay/fetcherImage': minLength: got 0, want 1`,
        ],
      ],
      [
        'an httproute without parentRefs',
        { route: { kind: 'httproute', path: '/' } },
        [`- at '/route/httproute/parentRefs': minItems: got 0, want 1`],
      ],
      ['a misspelt value', { replica: 2 }, [`additional properties 'replica' not allowed`]],
    ];
    for (const [what, patch, messages] of cases) {
      it(`rejects ${what}`, async () => {
        // GIVEN valid values with one bad field
        const values = { ...valid, ...patch };
        // WHEN helm renders them
        const err = await templateError(SERVICE_CHART, values);
        // THEN helm fails naming the field and the rule
        expect(err).toContain("values don't meet the specifications of the schema(s)");
        for (const m of messages) expect(err).toContain(m);
      });
    }
  });
});
