import { describe, expect, it } from 'vitest';
import { summarizeBuildFailure } from '../../../src/executors/local/buildah.js';

describe('summarizeBuildFailure', () => {
  it('keeps the failing step and what its tool said, without buildah noise', () => {
    const out = [
      'STEP 4/9: COPY x /project/app/',
      '--> Using cache abc',
      'STEP 5/9: RUN uv pip install --python /home/user/the_venv/bin/python -r /project/app/pyproject.toml',
      'Using Python 3.13.5 environment at: /home/user/the_venv',
      '  × No solution found when resolving dependencies:',
      'subprocess exited with status 1',
      'Error: building at STEP "RUN uv pip install": exit status 1',
    ].join('\n');
    expect(summarizeBuildFailure(out)).toBe(
      'installing the dependencies failed:\n  Using Python 3.13.5 environment at: /home/user/the_venv\n    × No solution found when resolving dependencies:',
    );
  });
});
