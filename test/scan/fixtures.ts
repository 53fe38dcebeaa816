/** Trivy 0.74.0 JSON reports of our images, scanned with the fixture DB (packages trimmed). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type FixtureName = 'python-hello' | 'base-python-3.13' | 'node-hello' | 'base-node-22';

export function fixture(name: FixtureName): string {
  return readFileSync(join(import.meta.dirname, 'fixtures', `${name}.trivy.json`), 'utf8');
}
