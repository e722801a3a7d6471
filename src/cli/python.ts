/**
 * Running matchd's Python tools (tools/): find a Python 3 that has the modules a tool needs, run the tool with its
 * progress relayed to our stderr, and turn its coded last line ({"code": ..., "problems": [...]}) into a MatchdError.
 */
import { spawn, spawnSync } from 'node:child_process';
import readline from 'node:readline';
import { ERROR_CODES, MatchdError, type ErrorCode } from '../core/errors.ts';
import { problemsError } from '../core/problems.ts';

/** Where we look, in order: $MATCHD_PYTHON alone when set; else the system Python, then python3 on PATH. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.MATCHD_PYTHON) return [env.MATCHD_PYTHON];
  return ['/usr/bin/python3', 'python3'];
}

const PROBE = `import importlib.util, json, sys
print(json.dumps({"version": sys.version.split()[0], "major": sys.version_info[0],
                  "missing": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]}))`;

/**
 * The first candidate that is Python 3 with every module in `modules`. Otherwise MATCHD_PYTHON_MISSING listing what
 * each candidate lacked and how to install it (`install`: the Debian/Ubuntu packages).
 */
export function findPython(modules: string[], install: string, env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  for (const candidate of pythonCandidates(env)) {
    const r = spawnSync(candidate, ['-c', PROBE, ...modules], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) {
      tried.push(`${candidate} (${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message})`);
      continue;
    }
    let probe: { version: string; major: number; missing: string[] } | undefined;
    try {
      probe = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      probe = undefined;
    }
    if (!probe || probe.major !== 3) {
      tried.push(`${candidate} (not a working Python 3${r.stderr ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`);
    } else if (probe.missing.length) {
      tried.push(`${candidate} (Python ${probe.version}, missing ${probe.missing.join(', ')})`);
    } else {
      return candidate;
    }
  }
  throw new MatchdError(
    'MATCHD_PYTHON_MISSING',
    `this command needs Python 3 with the modules ${modules.join(', ')}. Tried: ${tried.join('; ')}.\n` +
      `Fix: ${install} (Debian/Ubuntu), or set MATCHD_PYTHON to a Python 3 that has them.`,
    { tried, modules },
  );
}

/**
 * Run `python script args...`. Every stderr line is relayed (prefixed), except the final JSON report, which becomes
 * the thrown error: its `code` when it is one of ours, else MATCHD_IMPORT_FAILED with the last lines of output.
 * SIGINT/SIGTERM to us are passed on, so the tool can remove what it had started writing.
 */
export async function runPythonTool(python: string, script: string, args: string[], what: string, prefix: string): Promise<void> {
  const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig === 'SIGINT' ? 'SIGTERM' : sig);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const tail: string[] = [];
  let report: { code?: unknown; problems?: unknown } | undefined;
  const lines = readline.createInterface({ input: child.stderr });
  lines.on('line', (line) => {
    if (line.startsWith('{"code"')) {
      try {
        report = JSON.parse(line);
        return;
      } catch {
        // not our report after all: relay it like any other line
      }
    }
    if (line.startsWith('problem: ')) return; // listed again in the report
    tail.push(line);
    if (tail.length > 20) tail.shift();
    process.stderr.write(`${prefix}${line.replace(/^(export|quantize): /, '')}\n`);
  });
  child.stdout.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => resolve([code, sig]));
  }).finally(() => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  });
  if (exitCode === 0) return;
  const problems = Array.isArray(report?.problems) ? report.problems.map(String) : [];
  const code = typeof report?.code === 'string' && report.code in ERROR_CODES ? (report.code as ErrorCode) : 'MATCHD_IMPORT_FAILED';
  if (problems.length === 0) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    problems.push(`${what} ${how}${tail.length ? `; last output:\n    ${tail.slice(-8).join('\n    ')}` : ''}`);
  }
  const context = code === 'MATCHD_BAD_OPTION' ? '' : `${what}: `;
  if (problems.length === 1) throw new MatchdError(code, `${context}${problems[0]}`, { problems });
  throw problemsError(code, `${context}${problems.length} problems`, problems);
}
