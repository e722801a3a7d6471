/**
 * Zod fields that plugin and core configs share, each with messages that name the field (`stabilityMs must be a
 * whole number of milliseconds`), so every config says the same thing the same way.
 */
import { z } from 'zod';

/** Counts whose path (from zodProblems) names them well enough. */
export const positiveInt = z.number().int().positive();
export const nonNegInt = z.number().int().min(0);

/** A duration in whole milliseconds, ≥ 0 (chain `.min(n, ...)` for a larger floor). */
export const ms = (field: string) =>
  z.number({ error: `${field} must be a number of milliseconds` }).int(`${field} must be a whole number of milliseconds`).min(0, `${field} must be >= 0`);

/** A size in whole bytes, > 0. */
export const bytes = (field: string) =>
  z.number({ error: `${field} must be a number of bytes` }).int(`${field} must be a whole number of bytes`).positive(`${field} must be > 0`);

export const bool = (field: string) => z.boolean({ error: `${field} must be true or false` });

/** A non-empty string. */
export const str = (field: string) => z.string({ error: `${field} must be a string` }).min(1, `${field} must not be empty`);

/** A list of non-empty glob strings. */
export const globs = (field: string) =>
  z.array(z.string({ error: `${field} must hold glob strings` }).min(1, `${field} must not hold an empty glob`), { error: `${field} must be a list of globs` });
