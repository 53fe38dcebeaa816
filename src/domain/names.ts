/**
 * Service names (DESIGN.md, Names and limits): start with a lower-case letter, only
 * a-z0-9-, end with a letter or digit, at most 32 characters including the tenant prefix.
 */
import type { Issue } from '../errors.js';

export const MAX_SERVICE_NAME = 32;
const NAME_RE = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

/** Pure: the problems of a service name for a tenant; empty when it is valid. */
export function checkServiceName(name: string, tenant: string, path = 'name'): Issue[] {
  const issues: Issue[] = [];
  if (!NAME_RE.test(name)) {
    issues.push({
      path,
      message: `"${name}" is not a valid service name: start with a lower-case letter, use only a-z, 0-9 and "-", and end with a letter or digit (e.g. "${suggestName(name) || 'my-service'}")`,
    });
  }
  const full = qualifiedName(tenant, name);
  if (full.length > MAX_SERVICE_NAME) {
    issues.push({
      path,
      message: `"${full}" (tenant prefix included) is ${full.length} characters; the limit is ${MAX_SERVICE_NAME}, so the name may have at most ${MAX_SERVICE_NAME - tenant.length - 1}`,
    });
  }
  return issues;
}

/** The name of the service in the registry and the cluster: `<tenant>-<name>`. */
export function qualifiedName(tenant: string, name: string): string {
  return `${tenant}-${name}`;
}

/** A best-effort valid name derived from a project or directory name. */
export function suggestName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/^@[^/]+\//, '')
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+/g, '-')
    .replace(/-+$/, '');
}
