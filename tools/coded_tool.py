"""What matchd's Python tools (gme/export.py, quantize/quantize.py) share: how they fail.

The CLI that runs them (src/cli/python.ts) reads the last stderr line: on failure it is JSON,
  {"code": "MATCHD_...", "problems": [...]}
with exit code 2 for an input or option problem, 1 for a failure while writing, 130 when interrupted.
"""
import json
import signal
import sys
import traceback


class Failure(Exception):
    """A coded failure: the problems are printed one per line, then the JSON line."""

    def __init__(self, code, problems, exit_code):
        super().__init__(code)
        self.code, self.problems, self.exit_code = code, problems, exit_code


def _interrupted(signum, frame):
    """SIGINT or SIGTERM: unwind once (each tool removes its partial output on the way out); later signals are
    ignored so that they cannot cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _coded(code, problems):
    print(json.dumps({'code': code, 'problems': problems}), file=sys.stderr, flush=True)


def run_coded(body):
    """Run `body()` (returns the exit code) with the signal handling and the failure protocol above."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        return body()
    except Failure as f:
        for problem in f.problems:
            print(f'problem: {problem}', file=sys.stderr)
        _coded(f.code, f.problems)
        return f.exit_code
    except KeyboardInterrupt:
        _coded('MATCHD_IMPORT_FAILED', ['interrupted; nothing was written'])
        return 130
    except OSError as e:
        _coded('MATCHD_IMPORT_FAILED', [f'{e.filename or ""}: {e.strerror or e}'.lstrip(': ')])
        return 1
    except Exception as e:  # a bug: keep the traceback for the report, then the coded line
        traceback.print_exc()
        _coded('MATCHD_IMPORT_FAILED', [f'{type(e).__name__}: {e}'])
        return 1
