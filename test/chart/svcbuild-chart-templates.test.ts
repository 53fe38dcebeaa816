/**
 * The svcbuild chart ships the rendered WorkflowTemplates (files/workflow-templates/): they
 * must be exactly what `svcbuild render` makes from the sources today, and the chart must
 * carry them into a release.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runOk } from '../../src/util/exec.js';
import { ROOT, svcbuild } from '../helpers/cli.js';

const FILES = join(ROOT, 'charts/svcbuild/files/workflow-templates');

describe('charts/svcbuild workflow templates', () => {
  it('are in sync with workflow-templates/ (re-render with `svcbuild render --out charts/svcbuild/files/workflow-templates`)', async () => {
    // GIVEN a fresh render with the default settings
    const out = await mkdtemp(join(tmpdir(), 'svcbuild-render-'));
    try {
      const res = await svcbuild(['render', '--out', out], {
        SVCBUILD_CONFIG: '',
        SVCBUILD_REGISTRY: '',
        SVCBUILD_REGISTRY_NAMESPACE: '',
        SVCBUILD_REGISTRY_PLAIN_HTTP: '',
      });
      expect(res.code, res.stderr).toBe(0);
      const fresh = (await readdir(out)).filter((f) => f.endsWith('.yaml')).sort();
      const shipped = (await readdir(FILES)).filter((f) => f.endsWith('.yaml')).sort();
      // THEN the chart ships the same files with the same bytes
      expect(shipped).toEqual(fresh);
      for (const f of fresh) expect(await readFile(join(FILES, f), 'utf8'), f).toBe(await readFile(join(out, f), 'utf8'));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('renders both WorkflowTemplates into a release, Argo expressions untouched', async () => {
    const res = await runOk('helm', ['template', 'svcbuild', join(ROOT, 'charts/svcbuild'), '--namespace', 'svcbuild-builds']);
    const names = [...res.stdout.matchAll(/^kind: WorkflowTemplate\nmetadata:\n  name: "?([a-z-]+)"?/gm)].map((m) => m[1]);
    expect(names.sort()).toEqual(['svcbuild-base-image', 'svcbuild-build']);
    expect(res.stdout).toContain('{{workflow.parameters.tenant}}');
  });
});
