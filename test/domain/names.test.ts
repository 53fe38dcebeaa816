import { describe, expect, it } from 'vitest';
import { checkServiceName, suggestName } from '../../src/domain/names.js';
import { checkRequiresPython } from '../../src/providers/pep440.js';

describe('service names', () => {
  it.each(['a', 'hello', 'a1-b2', 'x-9'])('accepts %s', (n) => {
    expect(checkServiceName(n, 'local')).toEqual([]);
  });

  it.each([
    ['1abc', 'start with a lower-case letter'],
    ['Hello', 'start with a lower-case letter'],
    ['ab-', 'end with a letter or digit'],
    ['a_b', 'use only a-z, 0-9 and "-"'],
    ['', 'start with a lower-case letter'],
  ])('rejects %j', (n, why) => {
    const issues = checkServiceName(n, 'local');
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('name');
    expect(issues[0]!.message).toContain(why);
  });

  it('counts the tenant prefix in the 32-character limit', () => {
    // GIVEN tenant "acme" (5 characters with the dash) THEN 27 characters fit and 28 do not
    expect(checkServiceName('a'.repeat(27), 'acme')).toEqual([]);
    expect(checkServiceName('a'.repeat(28), 'acme')).toEqual([
      {
        path: 'name',
        message: `"acme-${'a'.repeat(28)}" (tenant prefix included) is 33 characters; the limit is 32, so the name may have at most 27`,
      },
    ]);
  });

  it('suggests valid names from project names', () => {
    expect(suggestName('@acme/My_Service.v2')).toBe('my-service-v2');
    expect(suggestName('9lives')).toBe('lives');
  });
});

describe('requires-python', () => {
  it.each([
    ['>=3.11', undefined],
    ['>=3.11,<3.14', undefined],
    ['~=3.12', undefined],
    ['==3.13.*', undefined],
    ['>=3.14', '>=3.14'],
    ['<3.13', '<3.13'],
    ['!=3.13.*', '!=3.13.*'],
    ['~=3.14', '~=3.14'],
    ['banana', '"banana" is not a version specifier'],
  ])('%s for 3.13 -> %s', (spec, failed) => {
    expect(checkRequiresPython(spec, '3.13')).toBe(failed);
  });
});
