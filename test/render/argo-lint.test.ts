/**
 * The real `argo lint --offline` (built by scripts/install-argo-cli.sh from Argo's Go module)
 * on every rendered WorkflowTemplate, and on a Workflow referencing them (offline lint
 * resolves `workflowTemplateRef` from the files it is given).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderWorkflowTemplateFiles, renderWorkflowYaml, type RenderSettingsInput } from '../../src/render/index.js';
import { run } from '../../src/util/exec.js';

const ARGO = process.env.ARGO_BIN ?? join(homedir(), '.cache', 'svcbuild-bed', 'bin', 'argo');
const HAVE_ARGO = existsSync(ARGO);
const SETTINGS: RenderSettingsInput = {
  stepImage: '127.0.0.1:5000/svcbuild/svcbuild:0.1.0',
  builder: { kanikoImage: '127.0.0.1:5000/svcbuild/kaniko-executor:v1.25.5', buildahImage: '127.0.0.1:5000/svcbuild/svcbuild:0.1.0' },
};

describe.skipIf(!HAVE_ARGO)(`argo lint --offline (needs ${ARGO}: run scripts/install-argo-cli.sh)`, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svcbuild-lint-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const engine of ['kaniko', 'buildah'] as const) {
    it(`GIVEN the ${engine} templates WHEN linted offline THEN argo accepts every file and a Workflow using them`, async () => {
      const files: string[] = [];
      for (const t of renderWorkflowTemplateFiles({ ...SETTINGS, builder: { ...SETTINGS.builder!, engine } })) {
        const file = join(dir, `${engine}-${t.file}`);
        await writeFile(file, t.yaml);
        files.push(file);
      }
      const wf = join(dir, `${engine}-workflow.yaml`);
      await writeFile(
        wf,
        renderWorkflowYaml({
          tenant: 'acme',
          service: 'orders',
          language: 'python',
          source: { kind: 'git', url: 'https://git.example/acme/orders.git', ref: 'x}}{{evil', subdir: 'a\nb: c' },
          base: 'python-3.13',
          baseRef: `127.0.0.1:5000/svcbuild/base/python-3.13@sha256:${'c'.repeat(64)}`,
          imageRepo: '127.0.0.1:5000/svcbuild/acme-orders',
          namespace: 'tenant-acme',
        }),
      );
      const res = await run(ARGO, ['lint', '--offline', '--output', 'simple', ...files, wf], { timeoutMs: 60_000 });
      expect(res.output, res.output).toContain('no linting errors found');
      expect(res.code).toBe(0);
    });
  }
});
