/**
 * The webhook source's own `callback` action: the result to the callbackUrl a request gave, through the SSRF guard,
 * signed with the secret of the caller that sent the request (`auth.tokens[].callbackSecret`). Each caller verifies
 * its callbacks with its own secret, so one caller cannot forge another's. Delivery, retries and replay are the
 * core's (src/core/callbacks/deliver.ts), shared with the named endpoints every source can use.
 */
import { callbackHandler, disabledKey } from '../../core/callbacks/deliver.ts';
import type { OutboundGuard } from '../../core/outbound.ts';
import { PermanentActionError, type ActionHandler, type PluginState } from '../../core/plugin.ts';
import type { WebhookConfig } from './config.ts';

/** Callback secrets by identity (`token:<name>`, `signature:<name>`), as the intake names callers. */
export function callbackSecrets(auth: WebhookConfig['auth']): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of auth.tokens) if (t.callbackSecret) m.set(`token:${t.name}`, t.callbackSecret);
  for (const s of auth.signing) if (s.callbackSecret) m.set(`signature:${s.name}`, s.callbackSecret);
  return m;
}

export function urlCallbacks(config: WebhookConfig, guard: OutboundGuard, state: PluginState, signal: AbortSignal): ActionHandler {
  const secrets = callbackSecrets(config.auth);
  return callbackHandler(
    (options, ctx) => {
      if (typeof options.url !== 'string') throw new PermanentActionError('a callback needs an endpoint or a url');
      const identity = String(options.identity ?? ctx.job.origin.identity ?? '');
      const secret = secrets.get(identity);
      if (!secret) throw new PermanentActionError(`caller '${identity || 'unknown'}' has no callbackSecret configured; cannot sign its callback`);
      return { url: options.url, secret, key: disabledKey({ url: options.url }), label: new URL(options.url).host, guard, timeoutMs: config.callbacks.timeoutMs };
    },
    state,
    signal,
  );
}
