/** Prometheus metrics for one daemon (its own registry, so tests and embedders never share globals). */
import client from 'prom-client';

export interface Metrics {
  registry: client.Registry;
  queueDepth: client.Gauge;
  batchSize: client.Histogram;
  textBatchSize: client.Histogram;
  queueSeconds: client.Histogram;
  computeSeconds: client.Histogram;
  jobs: client.Counter<'outcome'>;
  errors: client.Counter<'code'>;
  submits: client.Counter<'source' | 'result'>;
  outboxPending: client.Gauge;
  actions: client.Counter<'kind' | 'result'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  // Node's process metrics under their standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes...), so
  // stock Node.js dashboards and alerts work unchanged; matchd's own metrics are the matchd_* ones below.
  client.collectDefaultMetrics({ register: registry });
  const m: Metrics = {
    registry,
    queueDepth: new client.Gauge({ name: 'matchd_queue_depth', help: 'Jobs journalled and waiting to be scored', registers: [registry] }),
    batchSize: new client.Histogram({ name: 'matchd_batch_size', help: 'Images per engine batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    textBatchSize: new client.Histogram({
      name: 'matchd_text_batch_size', help: 'Texts per engine batch (texts not in the cache: jobs\' own, and rule texts at start-up)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry],
    }),
    queueSeconds: new client.Histogram({ name: 'matchd_queue_seconds', help: 'Time from submit to scoring start', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry] }),
    computeSeconds: new client.Histogram({ name: 'matchd_compute_seconds', help: 'Decode + inference time per batch', buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry] }),
    jobs: new client.Counter({ name: 'matchd_jobs_total', help: 'Jobs finished, by outcome (band or error)', labelNames: ['outcome'], registers: [registry] }),
    errors: new client.Counter({ name: 'matchd_errors_total', help: 'Errors, by code', labelNames: ['code'], registers: [registry] }),
    submits: new client.Counter({ name: 'matchd_submits_total', help: 'Submissions from sources, by result', labelNames: ['source', 'result'], registers: [registry] }),
    outboxPending: new client.Gauge({ name: 'matchd_outbox_pending', help: 'Actions waiting to be carried out', registers: [registry] }),
    actions: new client.Counter({ name: 'matchd_actions_total', help: 'Actions carried out, by kind and result', labelNames: ['kind', 'result'], registers: [registry] }),
  };
  return m;
}
