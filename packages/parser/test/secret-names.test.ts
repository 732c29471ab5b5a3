/**
 * BuildKit's SecretsUsedInArgOrEnv check (docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env):
 * an ARG or ENV key with a secret-naming word (apikey, auth, credential(s), key, password, pword,
 * passwd, secret, token) among its `_`-separated words, unless one of them is public, file or
 * version. Message: `Do not use ARG or ENV instructions for sensitive data (ARG "NAME")`.
 */
import { lint, parse } from '@hoist/parser';

const warningsOf = (text: string): Array<{ code: string; message: string; line?: number }> =>
  lint(parse(text, { file: 'Dockerfile' }))
    .warnings.filter((w) => w.rule === 'SecretsUsedInArgOrEnv')
    .map((w) => ({ code: w.rule, message: w.message, line: w.line }));

describe('SecretsUsedInArgOrEnv', () => {
  test('ARG NPM_TOKEN and ENV AWS_SECRET_ACCESS_KEY: one warning each, with the line and the key', () => {
    const w = warningsOf('FROM busybox\nARG NPM_TOKEN\nENV AWS_SECRET_ACCESS_KEY=abc\nRUN true\n');
    expect(w).toEqual([
      { code: 'SecretsUsedInArgOrEnv', message: 'Do not use ARG or ENV instructions for sensitive data (ARG "NPM_TOKEN")', line: 2 },
      { code: 'SecretsUsedInArgOrEnv', message: 'Do not use ARG or ENV instructions for sensitive data (ENV "AWS_SECRET_ACCESS_KEY")', line: 3 },
    ]);
  });

  test.each([
    ['GITHUB_TOKEN'],
    ['api_key'],
    ['DATABASE_PASSWORD'],
    ['secret_MESSAGE'],
    ['AUTH'],
    ['passwd'],
    ['DB_PWORD'],
    ['NPM_AUTH_TOKEN'],
    ['MY_APIKEY'],
    ['GOOGLE_APPLICATION_CREDENTIALS'],
    ['AZURE_CREDENTIAL_ID'],
  ])('%s looks like a secret', (name) => {
    expect(warningsOf(`FROM busybox\nARG ${name}\n`)).toHaveLength(1);
  });

  test.each([
    ['PUBLIC_KEY'],
    ['GPG_KEY_FILE'],
    ['TOKEN_VERSION'],
    ['NODE_VERSION'],
    ['TOKENIZER'],
    ['KEYBOARD_LAYOUT'],
    ['AUTHOR'],
    ['MONKEY'],
    ['PASSWORDLESS'],
  ])('%s does not', (name) => {
    expect(warningsOf(`FROM busybox\nARG ${name}\nENV ${name}=x\n`)).toEqual([]);
  });

  test('several keys on one ENV line and every stage are checked; global ARGs are not (as in BuildKit)', () => {
    const w = warningsOf('ARG REGISTRY_PASSWORD\nFROM busybox AS a\nENV A=1 DB_PASSWORD=x B=2\nFROM busybox\nARG SIGNING_KEY=k\n');
    expect(w.map((x) => [x.line, x.message.slice(x.message.indexOf('('))])).toEqual([
      [3, '(ENV "DB_PASSWORD")'],
      [5, '(ARG "SIGNING_KEY")'],
    ]);
  });
});
