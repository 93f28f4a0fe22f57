// Regression suites: YAML files under suites/, checked against one schema
// when read; a problem is reported with the file, line and field.
import fs from 'node:fs';
import path from 'node:path';
import { Type, type Static } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { Errors } from '../errors.js';

const Slice = Type.Object(
  {
    dataset: Type.String(),
    split: Type.Optional(Type.Union([Type.Literal('train'), Type.Literal('test')])),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    count: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const SuiteSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' }),
    description: Type.Optional(Type.String()),
    boards: Type.Array(
      Type.Object(
        {
          /** Which boards: any of class, board (reported or configured), tag, ids; count at most. */
          class: Type.Optional(Type.String()),
          board: Type.Optional(Type.String()),
          tag: Type.Optional(Type.String()),
          ids: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          count: Type.Optional(Type.Integer({ minimum: 1 })),
          /** Firmware: restart (emulated boards), or a flash command run before deploy ({device} and {path} substituted). */
          firmware: Type.Optional(
            Type.Union([
              Type.Object({ restart: Type.Literal(true) }, { additionalProperties: false }),
              Type.Object({ flash: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
            ]),
          ),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
    model: Type.Object(
      { name: Type.String(), seed: Type.Optional(Type.Integer({ minimum: 0 })) },
      { additionalProperties: false, description: 'a zoo model or one defined through POST /v1/models' },
    ),
    train: Type.Object(
      {
        ...Slice.properties,
        epochs: Type.Optional(Type.Integer({ minimum: 1 })),
        seed: Type.Optional(Type.Integer({ minimum: 0 })),
        schedule: Type.Optional(Type.Union([Type.Literal('constant'), Type.Literal('step'), Type.Literal('cosine')])),
        lr: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })),
        lrMin: Type.Optional(Type.Number({ minimum: 0 })),
        qas: Type.Optional(Type.Boolean()),
        stochasticRounding: Type.Optional(Type.Boolean()),
        sparse: Type.Optional(
          Type.Object({ lambdaMin: Type.Number({ minimum: 0, maximum: 1 }), lambdaMax: Type.Number({ minimum: 0, maximum: 1 }) }, { additionalProperties: false }),
        ),
      },
      { additionalProperties: false },
    ),
    evaluate: Slice,
    /** Compare each board's final weights with the host twin's after the same stream (default true). */
    golden: Type.Optional(Type.Boolean()),
    /** Slack before a figure counts as a regression: accuracy absolute, the others relative to the baseline. */
    tolerances: Type.Optional(
      Type.Object(
        {
          accuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          counterPerStep: Type.Optional(Type.Number({ minimum: 0 })),
          peakRam: Type.Optional(Type.Number({ minimum: 0 })),
          stackPeak: Type.Optional(Type.Number({ minimum: 0 })),
          energyPerStepUj: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Per stage, seconds. */
    timeouts: Type.Optional(
      Type.Object(
        {
          flash: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          deploy: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          train: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          evaluate: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          snapshot: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type Suite = Static<typeof SuiteSchema>;

export const DEFAULT_TOLERANCES = { accuracy: 0.02, counterPerStep: 0.02, peakRam: 0, stackPeak: 0.05, energyPerStepUj: 0.05 };
export const DEFAULT_TIMEOUTS_S = { flash: 300, deploy: 60, train: 3600, evaluate: 900, snapshot: 120 };

const validate = new Ajv({ allErrors: true, strict: false, coerceTypes: false }).compile(SuiteSchema);

/** The line (1-based) of the node at a JSON pointer path in a YAML document, or of its nearest parent. */
function lineOf(root: Node | null, pointer: string, lines: LineCounter): number {
  let node: unknown = root;
  let found = root;
  for (const key of pointer.split('/').filter(Boolean)) {
    if (isMap(node)) node = node.get(key, true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else break;
    if (node && typeof node === 'object' && 'range' in node) found = node as Node;
  }
  const pos = found?.range?.[0] ?? 0;
  return lines.linePos(pos).line;
}

/** Parses and checks a suite; every problem is named with its line. */
export function parseSuite(text: string, file: string): Suite {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw Errors.SUITE_INVALID(`${file}:${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`, { file, line: lines.linePos(e.pos[0]).line });
  }
  const value = doc.toJS() as unknown;
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => {
      const where = e.instancePath || '/';
      const field = e.params && 'additionalProperty' in e.params ? `${where}/${e.params.additionalProperty}` : where;
      return { file, line: lineOf(doc.contents, e.instancePath, lines), field, message: e.message ?? 'invalid' };
    });
    const first = problems[0];
    throw Errors.SUITE_INVALID(`${file}:${first.line}: ${first.field} ${first.message}`, { problems });
  }
  const suite = value as Suite;
  if (suite.train.sparse && suite.train.sparse.lambdaMin > suite.train.sparse.lambdaMax) {
    throw Errors.SUITE_INVALID(`${file}:${lineOf(doc.contents, '/train/sparse', lines)}: /train/sparse lambdaMin exceeds lambdaMax`);
  }
  return suite;
}

/** The suites in a directory, by name (the file name without .yaml must equal the suite's name). */
export class Suites {
  constructor(readonly dir: string) {}

  names(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs.readdirSync(this.dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => f.replace(/\.ya?ml$/, '')).sort();
  }

  get(name: string): Suite {
    if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(name)) throw Errors.SUITE_NOT_FOUND(`no suite '${name}'`);
    const file = ['.yaml', '.yml'].map((ext) => path.join(this.dir, name + ext)).find((f) => fs.existsSync(f));
    if (!file) throw Errors.SUITE_NOT_FOUND(`no suite '${name}' in ${this.dir} (known: ${this.names().join(', ') || 'none'})`);
    const suite = parseSuite(fs.readFileSync(file, 'utf8'), path.relative(process.cwd(), file) || file);
    if (suite.name !== name) throw Errors.SUITE_INVALID(`${file}: the suite is named '${suite.name}'; its file must be ${suite.name}.yaml`);
    return suite;
  }
}
