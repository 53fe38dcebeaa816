/**
 * Scan reports as OCI referrers of the image they describe: Trivy's JSON report and the
 * CycloneDX SBOM, each an artifact whose `subject` is the image manifest, found again with
 * the referrers API (or its tag-schema fallback).
 */
import { NotFoundError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor, ImageManifest } from '../registry/types.js';

/** artifactType of Trivy's JSON report attached by svcbuild. */
export const REPORT_ARTIFACT_TYPE = 'application/vnd.svcbuild.scan.trivy.v1+json';
/** artifactType (and layer media type) of the CycloneDX SBOM, as Trivy and others use it. */
export const SBOM_ARTIFACT_TYPE = 'application/vnd.cyclonedx+json';
export const REPORT_MEDIA_TYPE = 'application/json';

/** Annotations on the report artifacts. */
export const ANNOTATIONS = {
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  scanner: 'io.svcbuild.scan.scanner',
  /** UpdatedAt of the vulnerability DB the scan used: reports of the same DB are comparable. */
  dbUpdatedAt: 'io.svcbuild.scan.db-updated-at',
} as const;

export interface AttachOptions {
  /** e.g. `trivy 0.74.0`. */
  scanner?: string;
  dbUpdatedAt?: string;
  now?: Date;
}

export interface AttachedReports {
  report: Descriptor;
  sbom: Descriptor;
}

/**
 * Pushes the JSON report and the SBOM as two artifacts referring to `imageDigest` in `repo`.
 * Pushed one after the other: on a registry without the referrers API the fallback index is
 * updated read-modify-write.
 */
export async function attachReports(
  client: RegistryClient,
  repo: string,
  imageDigest: string,
  reportJson: string,
  sbomJson: string,
  opts: AttachOptions = {},
): Promise<AttachedReports> {
  const subjectManifest = await client.getManifest(repo, imageDigest);
  const subject = { mediaType: subjectManifest.mediaType, digest: subjectManifest.digest, size: subjectManifest.bytes.length };
  const annotations: Record<string, string> = { [ANNOTATIONS.created]: (opts.now ?? new Date()).toISOString() };
  if (opts.scanner) annotations[ANNOTATIONS.scanner] = opts.scanner;
  if (opts.dbUpdatedAt) annotations[ANNOTATIONS.dbUpdatedAt] = opts.dbUpdatedAt;
  const report = await client.pushArtifact({
    repo,
    artifactType: REPORT_ARTIFACT_TYPE,
    subject,
    annotations,
    files: [{ mediaType: REPORT_MEDIA_TYPE, bytes: Buffer.from(reportJson), annotations: { [ANNOTATIONS.title]: 'trivy-report.json' } }],
  });
  const sbom = await client.pushArtifact({
    repo,
    artifactType: SBOM_ARTIFACT_TYPE,
    subject,
    annotations,
    files: [{ mediaType: SBOM_ARTIFACT_TYPE, bytes: Buffer.from(sbomJson), annotations: { [ANNOTATIONS.title]: 'sbom.cdx.json' } }],
  });
  return { report, sbom };
}

export interface AttachedArtifact {
  descriptor: Descriptor;
  annotations: Record<string, string>;
  /** The artifact's single file. */
  content: Buffer;
}

/**
 * The newest artifact of `artifactType` referring to `digest` (by its created annotation),
 * with its content; undefined when there is none.
 */
export async function findAttached(
  client: RegistryClient,
  repo: string,
  digest: string,
  artifactType: string,
): Promise<AttachedArtifact | undefined> {
  const refs = await client.listReferrers(repo, digest, artifactType);
  const sorted = [...refs].sort((a, b) =>
    (b.annotations?.[ANNOTATIONS.created] ?? '').localeCompare(a.annotations?.[ANNOTATIONS.created] ?? ''),
  );
  for (const d of sorted) {
    try {
      const m = await client.getManifest(repo, d.digest);
      const layer = (m.json as ImageManifest).layers?.[0];
      if (!layer) continue;
      const content = await client.readBlob(repo, layer.digest);
      return { descriptor: d, annotations: (m.json as ImageManifest).annotations ?? d.annotations ?? {}, content };
    } catch (e) {
      // A referrer deleted since the listing: try the next one.
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
  return undefined;
}
