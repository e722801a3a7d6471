/**
 * The one catalogue of error codes. Every failure a user can see carries one of these as `.code`;
 * tests assert the code, not only the message. The addon creates its errors through `MatchdError`
 * (handed to it by native.ts), so native failures arrive typed as well.
 */
export const ERROR_CODES = {
  MATCHD_ADDON_LOAD: 'The native addon or libonnxruntime.so.1 could not be loaded',
  MATCHD_BAD_INPUT: 'A call received an argument of the wrong type, element type, rank or shape',
  MATCHD_BAD_OPTION: 'An option has a wrong value (named in the message)',
  MATCHD_MODEL_LOAD: 'A model file is missing, unreadable or not a valid ONNX model',
  MATCHD_CUDA_UNAVAILABLE: 'The CUDA execution provider or a CUDA library it needs cannot be loaded',
  MATCHD_SESSION_BUSY: 'The session cannot be disposed while runs are in flight',
  MATCHD_SESSION_DISPOSED: 'The session was disposed',
  MATCHD_RUN_FAILED: 'ONNX Runtime failed while running the model',
  MATCHD_MODEL_INVALID: 'A model package (model.yaml, tokenizer, ONNX files) does not match its manifest; every mismatch is listed',
  MATCHD_CONFIG_INVALID: 'The daemon configuration is invalid; every problem is listed with its path',
  MATCHD_PLUGIN: 'A plugin could not be loaded, registered or started',
  MATCHD_ACTION_FAILED: 'A routing action (move, copy, sidecar...) failed; it is retried from the journal on the runner\'s backoff, and dead after its last attempt',
  MATCHD_ACTION_PERMANENT: 'A routing action failed in a way retrying cannot fix (the file or object is gone, the endpoint is disabled, no handler for its kind); it is dead at once, kept in the journal for `matchd replay --dead`',
  MATCHD_ACTION_RETRY_LATER: "A routing action failed and chose when to try again (its own backoff, or a server's Retry-After); it is retried then",
  MATCHD_JOURNAL: 'The journal (SQLite or PostgreSQL) could not be opened or written',
  MATCHD_TEXT_INVALID: 'A text is empty, not well-formed Unicode / UTF-8, or no texts were given; or an item has more texts, or a longer text, than the configured limits',
  MATCHD_TEXTS_REQUIRED: "A job has no texts of its own but its rule scores only per-item texts (`texts: per-item`)",
  MATCHD_META_INVALID: "An item's meta is not a JSON object, or is nested deeper or is larger than the configured limits",
  MATCHD_COMPANION_INVALID: 'A companion file (photo.txt, photo.json), a manifest row or S3 texts metadata cannot be used: not UTF-8, malformed JSON, wrong shape, still being written, or naming a file that does not exist',
  MATCHD_JOURNAL_FULL: "The journal's disk is full: intake is paused and /healthz is down until space returns",
  MATCHD_JOURNAL_CORRUPT: 'The journal failed its integrity check or returned corrupt pages (`matchd journal check`, `matchd journal recover`)',
  MATCHD_JOURNAL_UNREACHABLE: 'The PostgreSQL journal does not answer: the node pauses intake, scoring and actions and reconnects with back-off; nothing is lost',
  MATCHD_JOURNAL_LOCKED: 'Another running matchd holds the journal: the same SQLite file, or the same node name on a PostgreSQL journal (the message names the process)',
  MATCHD_JOURNAL_SQLITE_ONLY: 'A command that reads the SQLite journal file itself (replay, endpoint, journal, calibrate --from-journal) was given a config whose journal is on PostgreSQL (journal.url)',
  MATCHD_JOURNAL_INVALID: 'The journal path holds an empty file or a file that is not a matchd journal (`matchd journal init` for a new one)',
  MATCHD_PORT_IN_USE: 'A port matchd must listen on is already taken (the message names the config key to change)',
  MATCHD_IMAGE_UNREACHABLE: "A worker cannot see a job's image file: folder and spool paths must be on storage every worker mounts at the same path",
  MATCHD_IMAGE_DECODE: 'An image is empty, truncated, corrupt or unreadable (the message names the input)',
  MATCHD_IMAGE_TOO_LARGE: 'An image exceeds the pixel limit (checked from its header, before decoding) or the byte limit',
  MATCHD_IMAGE_ASPECT: "An image's shape is beyond what the model's preprocessing accepts (aspect ratio over its limit, or a side that would resize to 0); per item",
  MATCHD_IMAGE_UNSUPPORTED: 'An input is not an image (sniffed by content, not extension) or is in a format this build cannot decode',
  MATCHD_UNAUTHORIZED: 'An HTTP request lacks a valid bearer token or Standard Webhooks signature (401)',
  MATCHD_REQUEST_INVALID: 'An HTTP request is malformed or names something that does not exist (400/404; the message says what)',
  MATCHD_REQUEST_TOO_LARGE: 'An HTTP request body is over its configured limit (413)',
  MATCHD_RATE_LIMITED: 'Too many requests from one token or address, or the queue is full (429 with Retry-After)',
  MATCHD_URL_REFUSED: 'An outbound URL or the address it resolves to is not allowed (scheme, credentials, private/loopback/metadata address)',
  MATCHD_FETCH_FAILED: 'Fetching an image URL failed (status, redirect, timeout or connection error)',
  MATCHD_S3_ACCESS: 'An S3 source cannot list its bucket (AccessDenied, NoSuchBucket, bad credentials): that source stops, the daemon goes on; or one object cannot be read (403 after downloadAttempts): a failed job for it',
  MATCHD_S3_DOWNLOAD: 'An S3 object could not be downloaded in downloadAttempts listings while the store answered (an error on that object alone); journalled as a failed job',
  MATCHD_S3_OBJECT_GONE: 'An S3 object disappeared between listing and download (a per-item outcome kept in the source state, not a job)',
  MATCHD_QUEUE_FULL: 'An internal batch queue refused an item because its caller ignored the room it reported (a bug: please report it)',
  MATCHD_PYTHON_MISSING: 'A command that runs a Python tool (matchd model import, matchd model quantize) found no Python 3 with the modules it needs; the message says what to install',
  MATCHD_IMPORT_FAILED: 'matchd model import or quantize failed while writing the package (disk space, I/O, interrupted, exporter crash); nothing half-written is left',
  MATCHD_REVIEW_DECIDED: 'A review decision came second: another reviewer decided the job first (409; the message says who, when and what); nothing was changed',
  MATCHD_REVIEW_INVALID: 'A review decision names a job that is not waiting for review, a band the rule does not have, or a job whose file is still being moved; nothing was changed',
  MATCHD_CSRF_INVALID: "A state-changing request to the web page lacked a valid CSRF token or came from another origin (403); nothing was changed",
  MATCHD_CALIBRATE_INPUT: 'A file given to matchd calibrate is not CSV or JSON Lines, or has no usable labelled pairs (per-line problems are reported, not fatal)',
  MATCHD_USAGE: 'A command was called wrongly: an unknown option, a missing or extra argument (exit code 2; `matchd help COMMAND` shows its usage)',
  MATCHD_PATH_INVALID: 'A file or folder given on the command line does not exist, is of the wrong kind or cannot be read (the message names the option and the path)',
  MATCHD_NOTHING_TO_DO: 'A command found nothing to act on — no images in a --dir folder, no job or callback a replay names; the message says what was looked at (exit code 1)',
  MATCHD_BUILD_MISSING: "matchd's compiled JavaScript (dist/) is missing: run `npm run build` (`npm install` runs it)",
  MATCHD_INTERNAL: 'An internal invariant broke (a bug: please report it)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable `code` from the catalogue, and optional structured details. */
export class MatchdError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'MatchdError';
    this.code = code;
    if (details) this.details = details;
  }
}

/** True when `err` is a MatchdError, optionally with the given code. */
export function isMatchdError(err: unknown, code?: ErrorCode): err is MatchdError {
  return err instanceof MatchdError && (code === undefined || err.code === code);
}
