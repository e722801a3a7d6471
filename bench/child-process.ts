/**
 * A long-lived bench child answering requests over IPC (the one-shot kind is `runJsonChild` in lib.ts). Used where
 * engines must live in separate processes (matchd's addon and onnxruntime-node each bring a `libonnxruntime.so.1` with
 * the same soname) and the parent interleaves commands between them; the children time their own work, so the IPC
 * stays outside every timed region. Children print to the parent's stderr, so a scenario's `--json` stdout stays clean.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { nodeArgs, repoRoot } from './lib.ts';

type Reply = { id: number; value?: unknown; error?: string };

/** The parent's handle on a long-lived child: `ready` is what the child sent first, `call` one request. */
export class ChildClient<Req> {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly proc: ChildProcess;
  /** The child's first message (e.g. the engine version it loaded). */
  readonly ready: Promise<unknown>;

  constructor(readonly name: string, file: string, args: readonly string[]) {
    this.proc = spawn(process.execPath, nodeArgs(file, args), { cwd: repoRoot, stdio: ['ignore', 2, 2, 'ipc'] });
    this.ready = new Promise((resolve, reject) => this.waiting.set(0, { resolve, reject }));
    this.proc.on('message', (m: Reply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(`${name} child: ${m.error}`));
      else w.resolve(m.value);
    });
    this.proc.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${name} child exited (${signal ?? code})`));
      this.waiting.clear();
    });
  }

  call<T>(req: Req): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, req });
    });
  }

  /** Disconnect; the child exits when it notices (serveParent). */
  stop(): void {
    if (this.proc.connected) this.proc.disconnect();
  }
}

/** The child's side: answer each request with `handle`, after announcing `ready`; exit when the parent disconnects. */
export function serveParent<Req>(ready: unknown, handle: (req: Req) => Promise<unknown>): void {
  process.on('message', (msg: { id: number; req: Req }) => {
    handle(msg.req).then(
      (value) => process.send!({ id: msg.id, value } satisfies Reply),
      (err: unknown) => process.send!({ id: msg.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ id: 0, value: ready } satisfies Reply);
}
