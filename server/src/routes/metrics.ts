// GET /metrics: Prometheus exposition of per-board steps, link errors,
// retransmits, board state and job durations.
import type { FastifyPluginAsync } from 'fastify';

const routes: FastifyPluginAsync = async (fastify) => {
  const { registry } = fastify.metrics;
  const online = registry.gauge('tinyrig_device_online', 'Board link state: 1 online, 0 not');
  const busy = registry.gauge('tinyrig_device_busy', 'Board held by a job: 1 yes, 0 no');
  const retransmits = registry.gauge('tinyrig_retransmits_total', 'Frames the host sent again (time-out or NAK), per board');
  const timeouts = registry.gauge('tinyrig_request_timeouts_total', 'Requests that timed out after every attempt, per board');
  const resets = registry.gauge('tinyrig_device_resets_total', 'Board resets seen (boot id changed), per board');
  const reconnects = registry.gauge('tinyrig_device_reconnects_total', 'Times a board link came back after a loss');
  const arenaPeak = registry.gauge('tinyrig_device_arena_peak_bytes', 'Training arena high-water mark reported by the board');
  const jobsRunning = registry.gauge('tinyrig_jobs_running', 'Jobs running now');
  registry.collect(() => {
    for (const name of ['tinyrig_device_online', 'tinyrig_device_busy', 'tinyrig_device_arena_peak_bytes']) registry.resetGauge(name);
    for (const b of fastify.devices.list()) {
      const l = { device: b.id };
      online(l, b.status === 'online' ? 1 : 0);
      busy(l, b.busyWith ? 1 : 0);
      retransmits(l, b.counters.retransmits);
      timeouts(l, b.counters.timeouts);
      resets(l, b.counters.resets);
      reconnects(l, b.counters.reconnects);
      if (b.stats) arenaPeak(l, b.stats.arenaPeak);
    }
    jobsRunning({}, fastify.jobs.activeCount);
  });

  fastify.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(registry.render()),
  );
};

export default routes;
