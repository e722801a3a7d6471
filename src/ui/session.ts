/**
 * Sessions for the web page: a random id in an HttpOnly, SameSite=Strict cookie, kept in memory (a restart signs
 * everyone out), each with its own CSRF token. With a login configured a session carries the signed-in name; without
 * one (loopback only) every visitor gets a session as 'local', so forms are CSRF-protected all the same. Passwords
 * are compared in constant time; failed sign-ins are throttled per address.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE = 'matchd_session';

export interface Session {
  id: string;
  /** The signed-in name; null before signing in (the login form's own session). */
  user: string | null;
  csrf: string;
  expires: number;
}

const token = () => randomBytes(32).toString('base64url');

export class Sessions {
  private readonly map = new Map<string, Session>();

  constructor(private readonly ttlMs: number, private readonly max = 2000, private readonly now: () => number = Date.now) {}

  create(user: string | null): Session {
    // Oldest first out: a flood of new sessions cannot grow memory without bound.
    while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    const s: Session = { id: token(), user, csrf: token(), expires: this.now() + this.ttlMs };
    this.map.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.map.get(id);
    if (!s) return undefined;
    if (s.expires <= this.now()) {
      this.map.delete(id);
      return undefined;
    }
    return s;
  }

  destroy(id: string): void {
    this.map.delete(id);
  }
}

/** Equal strings, compared in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** The user a name and password sign in as, or null (every user is checked, so timing does not reveal names). */
export function checkLogin(users: readonly { name: string; password: string }[], name: string, password: string): string | null {
  let found: string | null = null;
  for (const u of users) if (sameSecret(u.name, name) && sameSecret(u.password, password)) found = u.name;
  return found;
}

/** At most `max` failed sign-ins per address per `windowMs`. */
export class LoginThrottle {
  private readonly failures = new Map<string, { n: number; until: number }>();

  constructor(private readonly max = 10, private readonly windowMs = 5 * 60_000, private readonly now: () => number = Date.now) {}

  /** Milliseconds to wait before another try from this address (0: go ahead). */
  waitMs(addr: string): number {
    const f = this.failures.get(addr);
    if (!f || f.until <= this.now()) return 0;
    return f.n >= this.max ? f.until - this.now() : 0;
  }

  failed(addr: string): void {
    const f = this.failures.get(addr);
    if (!f || f.until <= this.now()) this.failures.set(addr, { n: 1, until: this.now() + this.windowMs });
    else f.n++;
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(addr: string): void {
    this.failures.delete(addr);
  }
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (header ?? '').split(';')) {
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return out;
}

/** The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it). */
export function sessionCookie(id: string, opts: { secure: boolean; maxAgeS: number }): string {
  return `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${opts.maxAgeS}${opts.secure ? '; Secure' : ''}`;
}
