/** The webhook source: jobs over HTTP (fastify), results delivered as signed Standard Webhooks callbacks. */
import { probePort, type SourcePlugin } from '../../core/plugin.ts';
import { type WebhookConfig, WebhookConfigSchema } from './config.ts';
import { WebhookSource } from './source.ts';

export { type WebhookConfig, WebhookConfigSchema } from './config.ts';
export { ROUTES, WebhookSource } from './source.ts';

/**
 * The built-in `webhook` source plugin. Its jobs may use the core's `callback` action (named endpoints) like any
 * source's; its own `callback` handler serves the per-request callbackUrl (an action the source adds to the job).
 */
export const webhookPlugin: SourcePlugin<WebhookConfig> = {
  name: 'webhook',
  configSchema: WebhookConfigSchema,
  create: (ctx, config) => new WebhookSource(ctx, config),
  /** The intake port is free. */
  async preflight(config) {
    const p = await probePort(config.host, config.port);
    if (p === 'in-use') return [{ key: 'port', code: 'MATCHD_PORT_IN_USE', message: `${config.host}:${config.port} is already in use; change the port or stop what listens there` }];
    if (p) return [{ key: 'host', message: `cannot listen on ${config.host}:${config.port} (${p})` }];
    return [];
  },
};
