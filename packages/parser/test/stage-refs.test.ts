/**
 * Reading other stages as BuildKit allows it: COPY --from and RUN --mount from= only name
 * stages defined earlier (for the stages the target needs), and never through a variable.
 */
import { parse, plan, ParseError, type PlanOptions } from '@hoist/parser';

function planError(text: string, opts: PlanOptions = {}): ParseError {
  try {
    plan(parse(text, { file: 'Dockerfile' }), opts);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('the Dockerfile was accepted');
}

describe('COPY --from / RUN --mount from= a stage defined later', () => {
  const outOfOrder = (src: string): string => `FROM busybox AS target
COPY --from=build ${src} /out

FROM busybox AS build
COPY /Dockerfile /d2

FROM target
`;

  test.each(['/', '/d2'])('COPY --from=build %s fails at line 2 with BuildKit\'s message', (src) => {
    const e = planError(outOfOrder(src));
    expect({ code: e.code, line: e.line, column: e.column }).toEqual({ code: 'ForwardReference', line: 2, column: 6 });
    expect(e.message).toBe('cannot copy from stage "build", it needs to be defined before current stage "target"');
    expect(e.hint).toContain('line 4');
  });

  test('an index and an unnamed stage are named as BuildKit names them', () => {
    const e = planError('FROM busybox\nCOPY --from=1 /x /x\nFROM busybox\nRUN true\nFROM busybox\nCOPY --from=0 /x /x\n');
    expect({ code: e.code, line: e.line }).toEqual({ code: 'ForwardReference', line: 2 });
    expect(e.message).toBe('cannot copy from stage "1", it needs to be defined before current stage "stage-0"');
  });

  test('RUN --mount from= a later stage', () => {
    const e = planError('FROM busybox AS a\nWORKDIR /w\nRUN --mount=type=bind,from=b,target=src ls\nFROM busybox AS b\nFROM a\n');
    expect({ code: e.code, line: e.line }).toEqual({ code: 'ForwardReference', line: 3 });
    expect(e.message).toBe('cannot mount from stage "b" to "/w/src", stage needs to be defined before current command');
  });

  test('a stage the target does not need is not checked; an earlier stage is fine', () => {
    const text = 'FROM busybox AS base\nFROM busybox AS odd\nCOPY --from=later /x /x\nFROM busybox AS later\nCOPY --from=base /a /a\n';
    expect(plan(parse(text, { file: 'Dockerfile' }), { target: 'base' }).target).toBe(0);
    expect(planError(text, { target: 'odd' }).code).toBe('ForwardReference');
    expect(plan(parse(text, { file: 'Dockerfile' }), { target: 'later' }).stages[2]!.dependsOnIndex).toEqual([0]);
  });
});

describe('no variables in from', () => {
  test('RUN --mount=from=$var is refused at its line (BuildKit testMountFromError)', () => {
    const e = planError('FROM busybox AS test\nRUN touch /tmp/test\n\nFROM busybox\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n');
    expect({ code: e.code, line: e.line }).toEqual({ code: 'InvalidMount', line: 6 });
    expect(e.message).toBe("'from' doesn't support variable expansion, define alias stage instead");
    expect(e.hint).toContain('AS <alias>');
  });

  test.each(['${ttt}', 'pre$ttt'])('from=%s is refused too', (v) => {
    expect(planError(`FROM busybox\nARG ttt=x\nRUN --mount=from=${v},target=/m ls\n`).code).toBe('InvalidMount');
  });

  test('a "$" at the very end is not a variable', () => {
    const p = plan(parse('FROM busybox\nRUN --mount=from=img$,target=/m ls\n', { file: 'Dockerfile' }));
    expect(p.stages[0]!.steps[0]!.imageInputs).toEqual(['img$']);
  });

  test('COPY --from=$FOO is refused (BuildKit testDockerfileCopyFromArgs)', () => {
    const e = planError('FROM scratch\nCOPY --from=$FOO . .\n');
    expect({ code: e.code, line: e.line }).toEqual({ code: 'InvalidFlag', line: 2 });
    expect(e.message).toBe('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround');
  });
});

describe('named build contexts override stages of the same name (--build-context)', () => {
  const text = `FROM busybox AS base
RUN echo stage

FROM base AS tools
RUN true

FROM base
COPY --from=tools /a /a
RUN --mount=from=tools,target=/t true
`;

  test('without a context, FROM base and --from=tools are stages', () => {
    const p = plan(parse(text, { file: 'Dockerfile' }));
    expect(p.stages[2]!.base).toEqual({ kind: 'stage', index: 0, name: 'base' });
    expect(p.stages[2]!.dependsOnIndex.sort()).toEqual([0, 1]);
    expect(p.namedContexts).toBeUndefined();
  });

  test('with contexts named base and Tools, they are images and those stages are not needed', () => {
    const p = plan(parse(text, { file: 'Dockerfile' }), { namedContexts: ['base', 'Tools'] });
    expect(p.stages[2]!.base).toEqual({ kind: 'image', ref: 'base' });
    expect(p.stages[2]!.dependsOnIndex).toEqual([]);
    expect(p.stages[2]!.steps.map((s) => s.imageInputs)).toEqual([['tools'], ['tools']]);
    expect(p.namedContexts).toEqual(['base', 'tools']);
  });

  test('--target still finds an overridden stage by its name', () => {
    const p = plan(parse(text, { file: 'Dockerfile' }), { namedContexts: ['base'], target: 'base' });
    expect(p.target).toBe(0);
  });
});
