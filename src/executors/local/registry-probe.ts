/** Asks a registry for the digest of a tag, without pulling anything. */
import { UpstreamError } from '../../errors.js';
import type { RegistryConfig } from '../../config/schema.js';

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** The digest `repo:tag` points at, or undefined when the tag does not exist. */
export async function resolveTag(reg: RegistryConfig, repo: string, tag: string): Promise<string | undefined> {
  const url = `${reg.plainHttp ? 'http' : 'https'}://${reg.host}/v2/${repo}/manifests/${tag}`;
  const headers: Record<string, string> = { Accept: ACCEPT };
  if (reg.username) headers.Authorization = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', headers });
  } catch (e) {
    throw new UpstreamError(
      `the registry ${reg.host} cannot be reached (${(e as Error).cause ?? (e as Error).message}); start it with \`svcbuild registry start\` or set registry.host`,
    );
  }
  if (res.status === 404) return undefined;
  if (!res.ok) throw new UpstreamError(`registry ${reg.host} answered ${res.status} for ${repo}:${tag}`, res.status);
  return res.headers.get('docker-content-digest') ?? undefined;
}
