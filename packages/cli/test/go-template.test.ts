/** `hoist inspect --format`: the Go-template subset, printing values as Go does. */
import { renderTemplate } from '../src/go-template.js';
import { UsageError } from '../src/errors.js';

const data = {
  Id: 'sha256:abc',
  Config: { Env: ['PATH=/bin', 'A=1'], Labels: { 'org.opencontainers.image.title': 'hello', b: '2', a: '1' }, Cmd: ['hello'] },
  Os: 'linux',
};

describe('renderTemplate', () => {
  test.each([
    ['{{.Id}}', 'sha256:abc'],
    ['{{.Os}}/{{ .Config.Cmd }}', 'linux/[hello]'],
    ['{{.Config.Env}}', '[PATH=/bin A=1]'],
    ['{{.Config.Labels}}', 'map[a:1 b:2 org.opencontainers.image.title:hello]'],
    ['{{json .Config.Labels}}', '{"a":"1","b":"2","org.opencontainers.image.title":"hello"}'],
    ['{{index .Config.Labels "org.opencontainers.image.title"}}', 'hello'],
    ['{{join .Config.Env ","}}', 'PATH=/bin,A=1'],
    ['{{.Nope}} {{.Config.User}}', '<no value> <no value>'],
    ['plain text', 'plain text'],
  ])('%s', (template, expected) => {
    expect(renderTemplate(template, data)).toBe(expected);
  });

  test.each(['{{range .Config.Env}}{{.}}{{end}}', '{{.Id', '{{index .Config.Labels title}}'])('%s is a usage error that names what works', (template) => {
    let err: unknown;
    try {
      renderTemplate(template, data);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/--format/);
  });
});
