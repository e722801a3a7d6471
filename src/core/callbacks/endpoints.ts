/**
 * The core's `callback` action: a signed POST to a named endpoint of the top-level `callbacks.endpoints`, for a job
 * of any source. The endpoints are the operator's own configuration, so any address is allowed (the SSRF guard is
 * for URLs that callers supply: the webhook source's per-request callbackUrl). 410 state is kept in the journal.
 */
import { PermanentActionError, type ActionHandler, type PluginState } from '../plugin.ts';
import { OutboundGuard } from '../outbound.ts';
import type { CallbacksConfig } from './config.ts';
import { callbackHandler, disabledKey } from './deliver.ts';

/** Addresses are not checked for configured endpoints: the person who wrote the config chose them. */
const CONFIGURED = new OutboundGuard({ allow: ['0.0.0.0/0', '::/0'], allowHttp: true });

/** True when a `callback` action's options name a configured endpoint (else it is a source's own, e.g. a request's URL). */
export function isEndpointCallback(payload: Record<string, unknown>): boolean {
  return typeof (payload.options as { endpoint?: unknown } | undefined)?.endpoint === 'string';
}

export function endpointCallbacks(config: CallbacksConfig, state: PluginState, signal: AbortSignal): ActionHandler {
  return callbackHandler(
    (options) => {
      const name = String(options.endpoint);
      const ep = config.endpoints[name];
      if (!ep) throw new PermanentActionError(`unknown callback endpoint '${name}' (callbacks.endpoints: ${Object.keys(config.endpoints).join(', ') || 'none'})`);
      return { url: ep.url, secret: ep.secret, key: disabledKey({ endpoint: name }), label: `endpoint '${name}'`, guard: CONFIGURED, timeoutMs: config.timeoutMs };
    },
    state,
    signal,
  );
}
