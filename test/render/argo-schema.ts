/**
 * Validation against Argo Workflows' own JSON schema (test/fixtures/argo/schema.json, from
 * its Go module). The schema is draft 2020-12; Ajv's 2020 build reads it as is. Its
 * `int32`/`int64`-style formats are not JSON-schema formats, so formats are not asserted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';

const SCHEMA_FILE = join(import.meta.dirname, '..', 'fixtures', 'argo', 'schema.json');

let validators: Map<string, (data: unknown) => string[]> | undefined;

function compile(): Map<string, (data: unknown) => string[]> {
  const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { definitions: Record<string, unknown> };
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(schema, 'argo');
  const out = new Map<string, (data: unknown) => string[]>();
  for (const kind of ['Workflow', 'WorkflowTemplate']) {
    const validate = ajv.getSchema(`argo#/definitions/io.argoproj.workflow.v1alpha1.${kind}`);
    if (!validate) throw new Error(`no ${kind} in the Argo schema`);
    out.set(kind, (data) => {
      if (validate(data)) return [];
      return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
    });
  }
  return out;
}

/** The problems of one Argo object (empty: valid); throws for kinds the helper does not know. */
export function argoSchemaErrors(object: { kind: string }): string[] {
  validators ??= compile();
  const validate = validators.get(object.kind);
  if (!validate) throw new Error(`no schema for kind ${object.kind}`);
  return validate(object);
}
