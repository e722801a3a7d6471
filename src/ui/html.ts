/**
 * Server-rendered HTML with escaping by default: `html` escapes every interpolated value unless it is itself `Html`
 * (built by `html`), so a text, a file name or an error message from a job can never become markup. The page layout
 * (navigation, flash message, the CSRF token for forms) lives here too.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function part(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === undefined || v === null || v === false) return '';
  return esc(v);
}

/** A template whose interpolations are escaped (arrays joined, nullish and false left out). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += part(v) + strings[i + 1]!));
  return new Html(out);
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface PageParts {
  title: string;
  active: 'jobs' | 'review' | 'try' | 'login' | 'none';
  /** The signed-in name ('local' without a login), or null on the login page. */
  user: string | null;
  /** True when a login is configured (shows the sign-out button). */
  auth: boolean;
  csrf: string;
  reviewCount?: number;
  flash?: Flash | undefined;
  body: Html;
}

/** Every page: the same head (one stylesheet, one script, both from this server), navigation and flash message. */
export function page(p: PageParts): string {
  const nav = (key: PageParts['active'], href: string, label: string, extra?: Html) =>
    html`<a href="${href}"${p.active === key ? new Html(' aria-current="page"') : ''}>${label}${extra}</a>`;
  const count = p.reviewCount !== undefined ? html` <span class="count" data-testid="review-count">${p.reviewCount}</span>` : undefined;
  const who = p.user === null ? '' : p.auth
    ? html`<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${p.csrf}"><span class="who">${p.user}</span> <button type="submit">Sign out</button></form>`
    : html`<span class="who" title="no login configured: the page listens on loopback only">local</span>`;
  return '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.title} · matchd</title><link rel="stylesheet" href="/assets/ui.css"><script src="/assets/ui.js" defer></script></head>
<body data-page="${p.active}"><header><strong class="brand">matchd</strong><nav>${p.user === null ? '' : [
    nav('jobs', '/jobs', 'Jobs'), nav('review', '/review', 'Review', count), nav('try', '/try', 'Try it'),
    html`<span class="exports">Labels: <a href="/labels.csv">CSV</a> · <a href="/labels.jsonl">JSON Lines</a></span>`,
  ]}</nav><span class="spacer"></span>${who}</header>
<main>${p.flash ? html`<p class="flash ${p.flash.kind}" role="${p.flash.kind === 'error' ? 'alert' : 'status'}">${p.flash.text}</p>` : ''}${p.body}</main></body></html>`.value;
}

/** A number as the pages show it. */
export function num(n: unknown, digits = 3): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '–';
}

/** A time as the pages show it (the server's local time zone, to the second). */
export function when(ms: number): string {
  const d = new Date(ms);
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
