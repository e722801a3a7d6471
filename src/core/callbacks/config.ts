/**
 * Named callback endpoints, configured once at the top level (`callbacks.endpoints`) and usable by any rule of any
 * source (`- callback: { endpoint: NAME }`); and the Standard Webhooks secret format shared with the webhook source.
 */
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';

/** A Standard Webhooks secret: `whsec_` + base64 (what `standardwebhooks` accepts). */
export const WebhookSecretSchema = z
  .string({ error: 'secret must be a string (use ${ENV} for secrets)' })
  .min(1, 'secret must not be empty')
  .refine((s) => {
    try {
      new Webhook(s);
      return true;
    } catch {
      return false;
    }
  }, 'secret must be a Standard Webhooks secret: whsec_ followed by base64');

export const HttpUrlSchema = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
  } catch {
    return false;
  }
}, 'url must be an http(s) URL without credentials');

export const EndpointNameSchema = z.string({ error: 'endpoint must be a name' }).regex(/^[A-Za-z0-9_.-]+$/, 'endpoint names: letters, digits, _ . and -');

export const CallbacksConfigSchema = z.strictObject({
  /** Each endpoint signs with its own secret; a receiver verifies with that one. */
  endpoints: z.record(EndpointNameSchema, z.strictObject({ url: HttpUrlSchema, secret: WebhookSecretSchema })).default({}),
  timeoutMs: z.number({ error: 'callbacks.timeoutMs must be a number of milliseconds' }).int().min(1).default(15_000).describe('one delivery attempt, headers and body'),
});

export type CallbacksConfig = z.output<typeof CallbacksConfigSchema>;

/** The rule-level action: `- callback: { endpoint: NAME }`. */
export const CallbackActionSchema = z.strictObject({ endpoint: EndpointNameSchema });
