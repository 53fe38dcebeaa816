/**
 * Offline validation of rendered manifests against the Kubernetes OpenAPI schemas, with
 * the JSON-schema validators the npm `kubernetes-models` packages ship (generated from the
 * Kubernetes and Gateway API OpenAPI specs; no network). They check types, required
 * fields and formats; like the API server without strict field validation they accept
 * unknown fields, so the tests also assert the exact rendered fields.
 */
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { Manifest } from './helm.js';

type Validatable = { validate(): void };
const MODELS: Record<string, new (data: any) => Validatable> = {
  'apps/v1/Deployment': Deployment,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'networking.k8s.io/v1/Ingress': Ingress,
  'gateway.networking.k8s.io/v1/HTTPRoute': HTTPRoute,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

/**
 * Validates every manifest whose kind has a schema; returns the problems (empty: valid)
 * and the kinds that have no schema (custom resources such as PlatformService).
 */
export function validateManifests(manifests: Manifest[]): { errors: string[]; unchecked: string[] } {
  const errors: string[] = [];
  const unchecked: string[] = [];
  for (const m of manifests) {
    const key = `${m.apiVersion}/${m.kind}`;
    const Model = MODELS[key];
    if (!Model) {
      unchecked.push(key);
      continue;
    }
    try {
      new Model(m).validate();
    } catch (e) {
      errors.push(`${key} ${m.metadata.name}: ${(e as Error).message}`);
    }
  }
  return { errors, unchecked };
}
