/**
 * Pipeline step `publish`: the chart values of the build (the image and its overlay by
 * digest, the service's settings), the service chart pushed to the registry, and the image
 * promoted (tagged `release-<build-id>`, which the exit handler never deletes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { publishServiceChart } from '../chart/publish.js';
import { chartVersionFor } from '../chart/values.js';
import { silentReporter } from '../domain/progress.js';
import { qualifiedName } from '../domain/names.js';
import { InputError, NotFoundError } from '../errors.js';
import { BaseImages } from '../executors/local/base-images.js';
import { Buildah } from '../executors/local/buildah.js';
import { OVERLAY_ARTIFACT_TYPE } from '../overlay/index.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageRef } from '../registry/ref.js';
import type { ImageManifest } from '../registry/types.js';
import { renderStepValues, type ChartSettings } from './values.js';

type DigestImageRef = ImageRef & { digest: string };

export interface RunPublishOptions {
  config: Config;
  home: string;
  client: RegistryClient;
  image: DigestImageRef;
  overlay: DigestImageRef;
  base: DigestImageRef;
  tenant: string;
  service: string;
  buildId: string;
  settings: Partial<ChartSettings>;
  /** The overlay fetcher image by digest; default: svcbuild's own tool image in the registry. */
  fetcherImage?: string;
}

export interface PublishResult {
  /** `oci://host/ns/charts/<name>:<version>@<digest>`: what the deploy step takes. */
  chartRef: string;
  chart: string;
  version: string;
  digest: string;
  promoted: string;
}

/** Pure: the chart reference handed to deploy. */
export function formatChartRef(ref: string, version: string, digest: string): string {
  return `${ref}:${version}@${digest}`;
}

/** Pure: splits `oci://host/path/name:version@sha256:...`; undefined when malformed. */
export function parseChartRef(
  s: string,
): { url: string; host: string; repo: string; name: string; version: string; digest: string } | undefined {
  const m = /^oci:\/\/([^/]+)\/((?:[a-z0-9._-]+\/)*([a-z0-9]([-a-z0-9]*[a-z0-9])?)):([0-9A-Za-z.+_-]+)@(sha256:[a-f0-9]{64})$/.exec(s);
  if (!m) return undefined;
  return { url: `oci://${m[1]}/${m[2]}`, host: m[1]!, repo: m[2]!, name: m[3]!, version: m[5]!, digest: m[6]! };
}

const digestRef = (r: DigestImageRef) => ({ repository: `${r.host}/${r.repo}`, digest: r.digest });

export async function runPublishStep(opts: RunPublishOptions): Promise<PublishResult> {
  const { config, client, image, overlay, base } = opts;
  const name = qualifiedName(opts.tenant, opts.service);
  const version = chartVersionFor(opts.buildId);

  // The image: its PORT and entrypoint are what the context step built into it.
  let img;
  try {
    img = await client.getImage(image.repo, image.digest);
  } catch (e) {
    if (e instanceof NotFoundError) throw new InputError('the image does not exist', [{ path: '--image', message: e.message }]);
    throw e;
  }
  // The overlay must be this image's overlay artifact.
  let ov;
  try {
    ov = await client.getManifest(overlay.repo, overlay.digest);
  } catch (e) {
    if (e instanceof NotFoundError) throw new InputError('the overlay does not exist', [{ path: '--overlay', message: e.message }]);
    throw e;
  }
  const ovm = ov.json as ImageManifest;
  if (ovm.artifactType !== OVERLAY_ARTIFACT_TYPE || ovm.subject?.digest !== img.manifest.digest) {
    throw new InputError('the overlay is not the overlay of the image', [
      { path: '--overlay', message: `must be an ${OVERLAY_ARTIFACT_TYPE} artifact whose subject is ${image.digest}` },
    ]);
  }
  const cfg = img.config.config ?? {};
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const env = strings(cfg.Env);
  const portEnv = env.find((e) => e.startsWith('PORT='))?.slice(5);
  const port = opts.settings.port ?? (portEnv && /^\d+$/.test(portEnv) ? Number(portEnv) : config.defaults.port);
  const entrypoint = strings(cfg.Entrypoint);

  const fetcherImage = opts.fetcherImage ?? (await defaultFetcher(config));
  const values = renderStepValues(
    {
      mode: 'image',
      image: digestRef(image),
      base: digestRef(base),
      overlay: { ...digestRef(overlay), fetcherImage, plainHttp: config.registry.plainHttp },
      route: opts.settings.route ?? { kind: 'none', path: `/${opts.service}` },
      port,
      ...(opts.settings.env ? { env: opts.settings.env } : {}),
      ...(opts.settings.envFrom ? { envFrom: opts.settings.envFrom } : {}),
      ...(opts.settings.resources ? { resources: opts.settings.resources } : {}),
      ...(opts.settings.replicas !== undefined ? { replicas: opts.settings.replicas } : {}),
      ...(opts.settings.imagePullSecrets ? { imagePullSecrets: opts.settings.imagePullSecrets } : {}),
      // The base image of overlay mode has no entrypoint of the service.
      command: entrypoint,
      labels: { 'svcbuild.io/tenant': opts.tenant, 'svcbuild.io/build-id': opts.buildId.toLowerCase() },
    },
    { image: 'image', base: 'base', overlay: 'overlay' },
  );
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-publish-'));
  try {
    const published = await publishServiceChart({
      chartSrcDir: join(opts.home, 'charts', 'platform-service'),
      values,
      name,
      version,
      appVersion: opts.buildId,
      registry: config.registry,
      workDir: work,
    });
    // Promotion last: a failed publish leaves only the unpromoted tag for the exit handler.
    const promoted = `release-${opts.buildId.toLowerCase()}`;
    await client.tagManifest(image.repo, image.digest, promoted);
    return {
      chartRef: formatChartRef(published.ref, published.version, published.digest),
      chart: published.ref,
      version: published.version,
      digest: published.digest,
      promoted: `${image.host}/${image.repo}:${promoted}`,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** svcbuild's fetcher tool image (built only where buildah is, i.e. not in a step pod). */
async function defaultFetcher(config: Config): Promise<string> {
  const tools = new BaseImages(config, Buildah.forConfig(config));
  return (await tools.ensure('fetcher', silentReporter, [])).ref;
}
