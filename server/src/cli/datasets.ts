// tinyrig dataset upload | list | show | delete. An upload is sent as
// multipart/form-data streamed from the files (never read whole), with a
// progress bar on stderr counting the bytes sent.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import crypto from 'node:crypto';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { ApiClient, ApiError, ConnectError } from './client.js';
import { record, shortHash, table } from './format.js';

interface DatasetView {
  name: string;
  builtIn: boolean;
  available: boolean;
  shape: number[];
  classes: number;
  classNames: string[] | null;
  splits: { train: { count: number; classCounts: number[] }; test: { count: number; classCounts: number[] } };
  bytes: number;
  sha256: string | null;
  format: string | null;
  createdAt: string | null;
  description: string;
}

export interface DatasetCliContext {
  api: () => ApiClient;
  json: () => boolean;
  out: (s: string) => void;
  err: (s: string) => void;
  /** A usage mistake (exit code 2). */
  usage: (message: string) => Error;
}

/** File parts of each format, in the order the files are given on the command line. */
const PARTS: Record<string, string[]> = {
  csv: ['file', 'testFile'],
  idx: ['images', 'labels', 'testImages', 'testLabels'],
  npy: ['x', 'y', 'testX', 'testY'],
};

function guessFormat(file: string): string | undefined {
  const f = file.toLowerCase();
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.npy')) return 'npy';
  if (/idx\d-ubyte(\.gz)?$/.test(f) || f.endsWith('.idx') || f.endsWith('.idx.gz')) return 'idx';
  return undefined;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** A multipart body streamed from the files, with its exact length; `sent` counts file bytes as they go. */
function multipartBody(fields: [string, string][], files: [string, string][], sent: (n: number) => void): { stream: Readable; length: number; boundary: string } {
  const boundary = `----tinyrig${crypto.randomBytes(12).toString('hex')}`;
  const fieldText = fields.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('');
  const fileHead = (part: string, file: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${part}"; filename="${path.basename(file).replace(/["\r\n]/g, '_')}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  const tail = `--${boundary}--\r\n`;
  let length = Buffer.byteLength(fieldText) + Buffer.byteLength(tail);
  for (const [part, file] of files) length += Buffer.byteLength(fileHead(part, file)) + fs.statSync(file).size + 2;
  async function* generate() {
    yield Buffer.from(fieldText);
    for (const [part, file] of files) {
      yield Buffer.from(fileHead(part, file));
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 16 })) {
        sent((chunk as Buffer).length);
        yield chunk as Buffer;
      }
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(tail);
  }
  return { stream: Readable.from(generate()), length, boundary };
}

async function answer<T>(res: Response): Promise<T> {
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    const e = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (typeof parsed === 'string' ? parsed : res.statusText), e.details);
  }
  return parsed as T;
}

function splitsOf(d: DatasetView): string {
  return `train ${d.splits.train.count}, test ${d.splits.test.count}`;
}

export function datasetCommands(program: Command, ctx: DatasetCliContext): void {
  const dataset = program.command('dataset').description('datasets the daemon can stream to boards: upload, list, show, delete');
  const int = (name: string, min: number) => (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return v;
  };

  dataset
    .command('upload <files...>')
    .description(
      'upload a dataset: csv <train.csv> [test.csv]; idx <images> <labels> [testImages testLabels] (.gz or not); npy <x.npy> <y.npy> [testX.npy testY.npy]',
    )
    .requiredOption('--name <name>', 'dataset name (letters, digits, . _ -)')
    .option('--format <format>', 'csv, idx or npy (default: from the file names)')
    .option('--shape <h,w,c>', 'input shape of one sample (IDX/NPY: default from the array dimensions)')
    .requiredOption('--classes <n>', 'number of classes (labels 0..n-1)', int('--classes', 1))
    .option('--class-names <names>', 'comma-separated class names')
    .option('--label-column <name>', 'CSV: the label column', 'label')
    .option('--scale <byte|unit>', 'byte: integers 0..255 as they are (default); unit: values in [0,1] stored as round(v*255), clamped')
    .option('--test-fraction <x>', 'seeded split: this fraction of the samples becomes the test split')
    .option('--seed <n>', 'seed of the split', int('--seed', 0))
    .addHelpText('after', '\nInput elements are uint8; the model reads each as value/255.')
    .action(async (files: string[], o: Record<string, string | undefined>) => {
      const format = o.format ?? guessFormat(files[0]);
      if (!format || !Object.hasOwn(PARTS, format)) throw ctx.usage(`--format must be csv, idx or npy${o.format ? '' : ` (cannot tell from ${files[0]})`}`);
      const parts = PARTS[format];
      const counts = format === 'csv' ? [1, 2] : [2, 4];
      if (!counts.includes(files.length)) throw ctx.usage(`format ${format} takes ${counts.join(' or ')} files (${parts.join(', ')}), got ${files.length}`);
      if (o.testFraction !== undefined && files.length === counts[1]) throw ctx.usage('give test files or --test-fraction, not both');
      for (const f of files) if (!fs.existsSync(f) || !fs.statSync(f).isFile()) throw ctx.usage(`no such file: ${f}`);
      const fields: [string, string][] = [
        ['name', o.name!],
        ['format', format],
        ['classes', o.classes!],
      ];
      if (o.shape) fields.push(['shape', o.shape]);
      if (o.classNames) fields.push(['classNames', o.classNames]);
      if (format === 'csv') fields.push(['labelColumn', o.labelColumn ?? 'label']);
      if (o.scale) fields.push(['scale', o.scale]);
      if (o.testFraction !== undefined) fields.push(['testFraction', o.testFraction]);
      if (o.seed !== undefined) fields.push(['seed', o.seed]);

      const total = files.reduce((a, f) => a + fs.statSync(f).size, 0);
      const bar = ctx.json()
        ? null
        : new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: `upload ${o.name} {bar} {percentage}% | {sent}/{size} | eta {eta_formatted}`,
              noTTYOutput: !process.stderr.isTTY,
              notTTYSchedule: 1000,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
      let sent = 0;
      bar?.start(Math.max(total, 1), 0, { sent: mib(0), size: mib(total) });
      const body = multipartBody(
        fields,
        files.map((f, i) => [parts[i], f]),
        (n) => {
          sent += n;
          bar?.update(sent, { sent: mib(sent), size: mib(total) });
        },
      );
      const api = ctx.api();
      let res: Response;
      try {
        res = await fetch(api.url('/v1/datasets'), {
          method: 'POST',
          headers: api.headers({ 'content-type': `multipart/form-data; boundary=${body.boundary}`, 'content-length': String(body.length) }),
          body: Readable.toWeb(body.stream) as ReadableStream<Uint8Array>,
          duplex: 'half',
        } as RequestInit);
      } catch (e) {
        bar?.stop();
        throw new ConnectError(api.base, e);
      }
      bar?.stop();
      if (!ctx.json()) ctx.err(`sent ${mib(total)}; the daemon is checking and storing it`);
      const r = await answer<{ created: boolean; dataset: DatasetView }>(res);
      if (ctx.json()) ctx.out(JSON.stringify(r, null, 2));
      else {
        const d = r.dataset;
        ctx.out(
          `${r.created ? 'stored' : 'already stored'} ${d.name}: ${d.shape.join('x')}, ${d.classes} classes, ${splitsOf(d)}, sha256 ${shortHash(d.sha256)}` +
            (r.created || d.name === o.name ? '' : ` (the same content as '${d.name}')`),
        );
      }
    });

  dataset
    .command('list')
    .description('built-in and uploaded datasets')
    .action(async () => {
      const r = await ctx.api().get<{ datasets: DatasetView[] }>('/v1/datasets');
      if (ctx.json()) {
        ctx.out(JSON.stringify(r, null, 2));
        return;
      }
      ctx.out(
        table(
          ['NAME', 'KIND', 'SHAPE', 'CLASSES', 'TRAIN', 'TEST', 'SIZE', 'SHA256', 'CREATED'],
          r.datasets.map((d) => [
            d.name,
            d.builtIn ? (d.available ? 'built-in' : 'built-in (not installed)') : `uploaded ${d.format}`,
            d.shape.join('x'),
            d.classes,
            d.splits.train.count,
            d.splits.test.count,
            mib(d.bytes),
            shortHash(d.sha256),
            d.createdAt,
          ]),
        ),
      );
    });

  dataset
    .command('show <name>')
    .description('one dataset: shape, classes, samples and class counts per split')
    .action(async (name: string) => {
      const d = await ctx.api().get<DatasetView>(`/v1/datasets/${encodeURIComponent(name)}`);
      if (ctx.json()) {
        ctx.out(JSON.stringify(d, null, 2));
        return;
      }
      ctx.out(
        record({
          name: d.name,
          description: d.description,
          kind: d.builtIn ? 'built-in' : `uploaded ${d.format}`,
          shape: d.shape.join('x'),
          classes: d.classes,
          classNames: d.classNames?.join(', ') ?? null,
          train: `${d.splits.train.count} (per class ${d.splits.train.classCounts.join(' ')})`,
          test: `${d.splits.test.count}${d.splits.test.count ? ` (per class ${d.splits.test.classCounts.join(' ')})` : ''}`,
          size: mib(d.bytes),
          sha256: d.sha256,
          created: d.createdAt,
        }),
      );
    });

  dataset
    .command('delete <name>')
    .description('delete an uploaded dataset (admin)')
    .action(async (name: string) => {
      const { body } = await ctx.api().request<{ deleted: string; sha256: string }>('DELETE', `/v1/datasets/${encodeURIComponent(name)}`);
      ctx.out(ctx.json() ? JSON.stringify(body, null, 2) : `deleted ${body.deleted} (sha256 ${shortHash(body.sha256)})`);
    });
}
