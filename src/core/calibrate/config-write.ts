/**
 * The proposal as YAML for a rule — printed to paste, or written into the config file (`--write`) with the `yaml`
 * package's document API, so every comment, key order and the rest of the file stay as they were; only the rule's
 * `bands` (and `range`) are replaced. The new file is validated like `matchd validate` before it replaces the old one
 * (atomically: a temp file renamed over it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Document, YAMLMap, isMap, parseDocument, type Node } from 'yaml';
import { parseConfig } from '../config.ts';
import { MatchdError, isMatchdError } from '../errors.ts';
import type { Proposal } from './analyse.ts';

/** The `bands` (and `range`) nodes, each band on one line. */
function nodes(doc: Document, p: Proposal): { bands: Node; range?: Node } {
  const bands = doc.createNode({ on: p.bands.on, list: p.bands.list }) as YAMLMap;
  const list = bands.get('list', true) as unknown as { items: YAMLMap[] };
  for (const item of list.items) item.flow = true;
  const range = p.range ? doc.createNode(p.range) : undefined;
  if (range) (range as unknown as { flow: boolean }).flow = true;
  return { bands, ...(range ? { range } : {}) };
}

/** The YAML to paste under `rules:` (with the rule's name), a comment saying where it came from. */
export function snippet(rule: string, p: Proposal, note: string): string {
  const doc = new Document({});
  const { bands, range } = nodes(doc, p);
  const body = new YAMLMap();
  body.set('bands', bands);
  if (range) body.set('range', range);
  const rules = new YAMLMap();
  rules.set(rule, body);
  doc.contents = doc.createNode({}) as YAMLMap;
  (doc.contents as YAMLMap).set('rules', rules);
  doc.commentBefore = ` ${note}`;
  return doc.toString({ lineWidth: 0 });
}

/**
 * Replace rule `rule`'s bands (and range) in the config file, keeping everything else. Refused, with nothing
 * written, when the file does not parse, has no such rule, or would not validate afterwards.
 */
export function writeIntoConfig(file: string, rule: string, p: Proposal, note: string, env: NodeJS.ProcessEnv = process.env): string {
  const text = fs.readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length) throw new MatchdError('MATCHD_CONFIG_INVALID', `${file}: not valid YAML (${doc.errors[0]!.message.split('\n')[0]}); nothing written`);
  // The config as it is must be valid: otherwise a problem after writing could not be told from one before.
  try {
    parseConfig(text, file, env);
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    throw new MatchdError('MATCHD_CONFIG_INVALID', `${file} does not validate as it is, so calibrate will not write into it; fix it first:\n${err.message}`);
  }
  const ruleNode = doc.getIn(['rules', rule], true);
  if (!isMap(ruleNode)) throw new MatchdError('MATCHD_CONFIG_INVALID', `${file}: no rule '${rule}' under rules; nothing written`);
  const { bands, range } = nodes(doc, p);
  bands.commentBefore = ` ${note}`;
  ruleNode.set('bands', bands);
  if (range) ruleNode.set('range', range); // (a proposal on the score keeps the rule's range: the thresholds assume it)
  const out = doc.toString({ lineWidth: 0 });
  try {
    parseConfig(out, file, env);
  } catch (err) {
    if (!isMatchdError(err)) throw err;
    throw new MatchdError('MATCHD_CONFIG_INVALID', `the calibrated config would not validate, so nothing was written:\n${err.message}`);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.calibrate.tmp`);
  fs.writeFileSync(tmp, out, { mode: fs.statSync(file).mode });
  fs.renameSync(tmp, file);
  return out;
}
