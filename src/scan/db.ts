/**
 * A Trivy vulnerability DB mirrored into an OCI registry, in the form `trivy --db-repository`
 * downloads: a single-layer artifact whose layer is `db.tar.gz` (trivy.db + metadata.json).
 * Used to serve an offline DB (air-gapped installations, tests) from svcbuild's own registry.
 */
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor } from '../registry/types.js';

export const TRIVY_DB_ARTIFACT_TYPE = 'application/vnd.aquasec.trivy.config.v1+json';
export const TRIVY_DB_LAYER_MEDIA_TYPE = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';
/** The DB schema this Trivy reads; the repository tag Trivy asks for. */
export const TRIVY_DB_SCHEMA = 2;

/** Pushes `db.tar.gz` bytes as `repo:<tag>` (default tag: the schema version, `2`). */
export async function pushTrivyDb(
  client: RegistryClient,
  repo: string,
  dbTarGz: Uint8Array,
  tag = String(TRIVY_DB_SCHEMA),
): Promise<Descriptor> {
  return client.pushArtifact({
    repo,
    tag,
    artifactType: TRIVY_DB_ARTIFACT_TYPE,
    files: [{ mediaType: TRIVY_DB_LAYER_MEDIA_TYPE, bytes: dbTarGz, annotations: { 'org.opencontainers.image.title': 'db.tar.gz' } }],
  });
}
