/**
 * `scan.enabled: auto`: the scan runs when Trivy is installed and its vulnerability DB is in
 * the registry, and is reported as skipped (with the reason and the fix) otherwise. The same
 * rule for the local pipeline and the in-cluster scan step.
 */
import { existsSync } from 'node:fs';
import { NotFoundError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { parseImageRef } from '../registry/ref.js';
import type { ScanSettings } from './settings.js';

/** Why the scan is skipped, or undefined when it runs. */
export async function scanSkipReason(settings: ScanSettings, client: RegistryClient, registryHost: string): Promise<string | undefined> {
  if (settings.enabled === false) return 'skipped: scan.enabled is false';
  if (settings.enabled !== 'auto') return undefined;
  if (!existsSync(settings.trivyPath)) return `skipped: no trivy at ${settings.trivyPath} (scripts/install-trivy.sh installs it)`;
  const db = parseImageRef(settings.dbRepository, registryHost);
  try {
    await client.getManifest(db.repo, db.tag ?? db.digest ?? '2');
  } catch (e) {
    // Only a missing DB skips the scan; a registry that cannot be asked fails the step.
    if (!(e instanceof NotFoundError)) throw e;
    return `skipped: no vulnerability DB at ${settings.dbRepository} (mirror one there, or set scan.enabled: false)`;
  }
  return undefined;
}
