// Follows a job over GET /v1/jobs/:id/events: a progress bar on stderr (or one
// JSON line per event with --json), resuming with Last-Event-ID if the stream
// drops before the job ends. Returns the finished job.
import type { Static } from '@fastify/type-provider-typebox';
import cliProgress from 'cli-progress';
import type { JobView as JobViewSchema } from '../routes/schemas.js';
import { ApiClient } from './client.js';
import { readSse } from './sse.js';

/** A job as GET /v1/jobs/:id returns it (the route's schema is the source). */
export type JobView = Static<typeof JobViewSchema>;

export const finished = (j: JobView): boolean => j.state === 'succeeded' || j.state === 'failed';

interface FollowOptions {
  json: boolean;
  write?: (line: string) => void;
  log?: (line: string) => void;
}

export async function followJob(client: ApiClient, jobId: string, opts: FollowOptions): Promise<JobView> {
  const write = opts.write ?? ((l: string) => process.stdout.write(l + '\n'));
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const route = `/v1/jobs/${encodeURIComponent(jobId)}`;
  // held in an object so the closures below and the loop see one bar
  const ui: { bar: cliProgress.SingleBar | null } = { bar: null };
  const payload = { loss: '-', acc: '-' };
  let lastId: string | undefined;

  const startBar = (total: number, done: number) => {
    if (opts.json || ui.bar) return;
    ui.bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${jobId} {bar} {value}/{total} {percentage}% | loss {loss} | acc {acc} | eta {eta_formatted}`,
        noTTYOutput: !process.stderr.isTTY,
        notTTYSchedule: 1000,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    ui.bar.start(Math.max(total, 1), done, payload);
  };
  const stopBar = () => {
    ui.bar?.stop();
    ui.bar = null;
  };

  try {
    for (let attempt = 0; ; attempt++) {
      const res = await client.stream(`${route}/events`, lastId ? { 'last-event-id': lastId } : {});
      for await (const ev of readSse(res.body!)) {
        if (ev.id) lastId = ev.id;
        let data: Record<string, unknown> = {};
        try {
          data = JSON.parse(ev.data) as Record<string, unknown>;
        } catch {
          data = { text: ev.data };
        }
        if (opts.json) {
          write(JSON.stringify({ event: ev.event, id: ev.id ?? null, data }));
          continue;
        }
        switch (ev.event) {
          case 'progress': {
            const done = Number(data.done ?? 0);
            const total = Number(data.total ?? 0);
            startBar(total, done);
            ui.bar?.setTotal(Math.max(total, 1));
            ui.bar?.update(done, payload);
            break;
          }
          case 'loss':
            payload.loss = typeof data.meanLoss === 'number' ? data.meanLoss.toFixed(4) : payload.loss;
            ui.bar?.update(payload);
            break;
          case 'accuracy': {
            const a = (data.accuracy ?? data.trainAccuracy) as number | undefined;
            if (typeof a === 'number') payload.acc = `${(a * 100).toFixed(1)}%`;
            ui.bar?.update(payload);
            break;
          }
          case 'device': {
            const d = data as { deviceId?: string; phase?: string; state?: string; verified?: boolean; error?: { code: string; message: string } | null };
            const line = `${d.phase ?? ''} ${d.deviceId ?? '?'}: ${d.state ?? '?'}${d.verified ? ' (hash verified)' : ''}${d.error ? ` ${d.error.code}: ${d.error.message}` : ''}`;
            log(line.trim());
            break;
          }
          case 'guard': {
            log(`guard ${JSON.stringify(data)}`);
            break;
          }
          default:
            break;
        }
      }
      const job = await client.get<JobView>(route);
      if (finished(job)) {
        if (job.state === 'succeeded') ui.bar?.update(job.progress.total || 1);
        return job;
      }
      if (attempt >= 20) throw new Error(`event stream of ${jobId} kept ending before the job did`);
      await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 2000)));
    }
  } finally {
    stopBar();
  }
}
