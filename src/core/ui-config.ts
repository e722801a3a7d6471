/**
 * The `ui:` section: the web page for people (jobs, review queue, try-it, labels export). By default it is served on
 * the admin listener (next to /metrics and /healthz, loopback by default); `ui.port` gives it a listener of its own.
 * Wherever it listens, a non-loopback address without `ui.auth` is refused at config time: it is a page that moves
 * files.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const UiUserSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'user names: 1–64 letters, digits, _ . @ and -').describe('recorded with every decision'),
  password: z.string({ error: 'password must be a string (use ${ENV} for secrets)' }).min(12, 'a password needs at least 12 characters'),
});

export const UiConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  host: z.string().min(1).optional().describe('with port: the page listens on its own (default 127.0.0.1); without port it is on the admin listener'),
  port: z.number().int().min(0).max(65535).optional().describe('a listener of its own for the page; omit to serve it on the admin listener'),
  /** Sign-in with a configured name and password; required where the page listens on a non-loopback address. */
  auth: z.strictObject({ users: z.array(UiUserSchema).min(1, 'ui.auth.users needs at least one user') }).optional(),
  /** Host names the page answers to besides loopback names (against DNS rebinding); e.g. your reverse proxy's name. */
  allowedHosts: z.array(z.string().min(1)).default([]),
  /** Mark the session cookie Secure (set it when users reach the page through HTTPS, e.g. a TLS reverse proxy). */
  secureCookie: z.boolean().default(false),
  sessionHours: positiveInt.max(24 * 30).default(12),
  uploadBytes: positiveInt.default(20 * 1024 * 1024).describe('largest image the try-it page takes'),
  pageSize: positiveInt.max(500).default(50).describe('jobs per page on the jobs page'),
}).prefault({});

export type UiConfig = z.output<typeof UiConfigSchema>;

/** Loopback addresses and the name `localhost`; any other name is not known to be local. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (!ipaddr.isValid(h)) return false;
  const a = ipaddr.process(h);
  return a.range() === 'loopback';
}

/** Where the page listens: on the admin listener (`shared`) or its own, or nowhere. */
export function uiListener(c: { ui: UiConfig; admin: { enabled: boolean; host: string; port: number } }):
  { shared: true; host: string } | { shared: false; host: string; port: number } | null {
  if (!c.ui.enabled) return null;
  if (c.ui.port !== undefined) return { shared: false, host: c.ui.host ?? '127.0.0.1', port: c.ui.port };
  return c.admin.enabled ? { shared: true, host: c.admin.host } : null;
}

/** Cross-section problems: a page reachable from other machines without a login is refused. */
export function uiProblems(c: { ui: UiConfig; admin: { enabled: boolean; host: string; port: number } }): string[] {
  const problems: string[] = [];
  if (c.ui.host !== undefined && c.ui.port === undefined) {
    problems.push('ui.host: give ui.port too (without ui.port the page is served on the admin listener, admin.host)');
  }
  const at = uiListener(c);
  if (at && !c.ui.auth && !isLoopbackHost(at.host)) {
    const key = at.shared ? 'admin.host' : 'ui.host';
    problems.push(
      `ui.auth: the web page would listen on ${at.host} (${key}), which is not a loopback address, without a login. ` +
        `It moves files: set ui.auth.users (name + password), or bind it to 127.0.0.1${at.shared ? ' (or give it its own loopback listener: ui.port)' : ''}, or set ui.enabled: false`,
    );
  }
  return problems;
}
