// tinyrig model create | list | show | delete: networks in JSON (FORMAT.md's
// vocabulary) or ready CBOR model blobs, planned by the engine on the daemon.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { ApiClient } from './client.js';
import { kib, record, shortHash, table } from './format.js';

interface Fit {
  fits: boolean;
  reasons: string[];
}

interface ModelView {
  name: string;
  sha256: string | null;
  builtIn: boolean;
  description: string | null;
  seed: number | null;
  input: number[];
  classes: number;
  bytes: number;
  weightsBytes: number;
  trainBytes: number;
  inferBytes: number;
  forwardMacs: number;
  layers: { kind: string; in: number[]; out: number[]; params: number }[];
  fits: { classes: (Fit & { class: string })[]; devices: (Fit & { id: string })[] };
  createdAt: string | null;
}

export interface ModelCliContext {
  api: () => ApiClient;
  json: () => boolean;
  out: (s: string) => void;
  usage: (message: string) => Error;
}

const fitsText = (fits: (Fit & { class?: string; id?: string })[]): string =>
  fits.map((f) => `${f.class ?? f.id} ${f.fits ? 'yes' : 'no'}`).join(', ');

function describe(m: ModelView): string {
  const head = record({
    name: m.name,
    kind: m.builtIn ? 'built in (zoo)' : 'user',
    sha256: m.sha256,
    input: m.input.join('x'),
    classes: m.classes,
    seed: m.seed,
    'model blob': kib(m.bytes),
    weights: kib(m.weightsBytes),
    'training arena': kib(m.trainBytes),
    'inference arena': kib(m.inferBytes),
    'forward MACs': m.forwardMacs,
    'fits classes': fitsText(m.fits.classes),
    'fits devices': fitsText(m.fits.devices) || '(no board connected)',
  });
  const layers = table(
    ['#', 'LAYER', 'IN', 'OUT', 'PARAMS'],
    m.layers.map((l, i) => [i, l.kind, l.in.join('x'), l.out.join('x'), l.params]),
  );
  const why = [...m.fits.classes, ...m.fits.devices]
    .filter((f) => !f.fits)
    .map((f) => `  ${(f as { class?: string }).class ?? (f as { id?: string }).id}: ${f.reasons.join('; ')}`);
  return `${head}\n${layers}${why.length ? `\ndoes not fit:\n${why.join('\n')}` : ''}`;
}

export function modelCommands(program: Command, ctx: ModelCliContext): void {
  const model = program.command('model').description('models: the zoo and networks you define (create, list, show, delete)');

  model
    .command('create <file>')
    .description('define a model: a JSON network ({name, input, classes, seed, layers}) or a CBOR model blob (tinyrig-train build)')
    .option('--name <name>', 'name of a model blob (a JSON network names itself)')
    .action(async (file: string, o: { name?: string }) => {
      const bytes = fs.readFileSync(file);
      const isJson = file.endsWith('.json') || bytes[0] === 0x7b;
      let r: { status: number; body: ModelView };
      if (isJson) {
        let spec: Record<string, unknown>;
        try {
          spec = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        } catch (e) {
          throw ctx.usage(`${file} is not JSON: ${(e as Error).message}`);
        }
        if (o.name) spec.name = o.name;
        r = await ctx.api().post<ModelView>('/v1/models', spec);
      } else {
        r = await ctx.api().postBytes<ModelView>('/v1/models', bytes, 'application/cbor', { name: o.name });
      }
      if (ctx.json()) ctx.out(JSON.stringify(r.body, null, 2));
      else ctx.out(`${r.status === 201 ? 'stored' : 'already stored'} ${r.body.name} (${shortHash(r.body.sha256)})\n${describe(r.body)}`);
    });

  model
    .command('list')
    .description('every model, with what it needs and which board classes it fits')
    .action(async () => {
      const r = await ctx.api().get<{ models: ModelView[] }>('/v1/models');
      if (ctx.json()) {
        ctx.out(JSON.stringify(r, null, 2));
        return;
      }
      ctx.out(
        table(
          ['NAME', 'KIND', 'INPUT', 'CLASSES', 'LAYERS', 'WEIGHTS', 'TRAIN ARENA', 'FITS', 'SHA256'],
          r.models.map((m) => [
            m.name, m.builtIn ? 'zoo' : 'user', m.input.join('x'), m.classes, m.layers.length, kib(m.weightsBytes), kib(m.trainBytes),
            m.fits.classes.filter((c) => c.fits).map((c) => c.class).join(',') || 'none', shortHash(m.sha256),
          ]),
        ),
      );
    });

  model
    .command('show <id>')
    .description('one model by name or hash: its layers, plan and where it fits (and why not)')
    .action(async (id: string) => {
      const m = await ctx.api().get<ModelView>(`/v1/models/${encodeURIComponent(id)}`);
      ctx.out(ctx.json() ? JSON.stringify(m, null, 2) : describe(m));
    });

  model
    .command('delete <id>')
    .description('delete a model you defined (admin; refused while snapshots reference it)')
    .action(async (id: string) => {
      const r = await ctx.api().delete<{ name: string; sha256: string }>(`/v1/models/${encodeURIComponent(id)}`);
      ctx.out(ctx.json() ? JSON.stringify(r.body) : `deleted ${r.body.name} (${shortHash(r.body.sha256)})`);
    });
}
