/**
 * Checks HTTP responses against the API's own OpenAPI document: every response a test sees
 * must match the schema of its path, method and status.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { openApiDocument } from '../../src/api/openapi.js';

const ajv = new (Ajv2020 as unknown as typeof Ajv2020.default)({ strict: false, allErrors: true });
(addFormats as unknown as (a: unknown) => void)(ajv);
ajv.addSchema(JSON.parse(JSON.stringify(openApiDocument)), 'https://svcbuild.local/openapi');

const paths = openApiDocument.paths as Record<string, Record<string, any>>;

function rewrite(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"https://svcbuild.local/openapi#/components/'));
}

/** The path template of the document that a concrete path matches. */
export function templateOf(path: string): string | undefined {
  const clean = path.split('?')[0]!;
  return Object.keys(paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(clean));
}

/** Asserts that a response (status, content type, parsed body) is documented and matches. */
export function expectDocumented(method: string, path: string, status: number, contentType: string, body: unknown): void {
  const t = templateOf(path);
  expect(t, `${path} is not in the OpenAPI document`).toBeDefined();
  const op = paths[t!]![method.toLowerCase()];
  expect(op, `${method} ${t} is not in the OpenAPI document`).toBeDefined();
  const resp = op.responses[String(status)];
  expect(resp, `${method} ${t} does not document status ${status}`).toBeDefined();
  if (!resp.content) return;
  const type = contentType.split(';')[0]!.trim();
  const media = resp.content[type];
  expect(media, `${method} ${t} ${status} does not document ${type}`).toBeDefined();
  if (type !== 'application/json') return;
  const validate = ajv.compile(rewrite(media.schema) as object);
  const ok = validate(body);
  expect(ok, `${method} ${path} ${status}: ${JSON.stringify(validate.errors)}`).toBe(true);
}
