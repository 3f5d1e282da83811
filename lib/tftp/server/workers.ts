/**
 * Transfers on worker threads: the server keeps its request port and admits
 * requests; each admitted transfer goes to the thread with the fewest, which
 * opens the transfer's own socket there (a socket cannot move between
 * threads) and sends back its events. A thread that fails ends its
 * transfers with an error and is replaced.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker, threadId } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import type { Job, JobHooks, RunnerConfig, TransferBackend } from './runner.js';
import type { LeaveNotice, Transfer } from './transfer.js';
import { fromThreadError, type FromWorker, type ToWorker, type WorkerInit } from './worker-messages.js';

/** A thread must be up within this long (it loads its modules first). */
const READY_MS = 60_000;
/** A thread that failed before it was ready is tried again after this long, not in a tight loop. */
const RESPAWN_BACKOFF_MS = 1_000;
/** A stopping thread has this long to close its files, then it is terminated. */
const STOP_MS = 2_000;

interface RunningJob {
  hooks: JobHooks;
  /** Until the transfer began, failed or was skipped. */
  settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  transfer: ThreadTransfer | undefined;
  /** An upload's temporary file, removed here if the thread dies. */
  temp: string | undefined;
}

interface Slot {
  worker: Worker;
  threadId: number;
  ready: boolean;
  jobs: Map<number, RunningJob>;
  transferBytes: number;
  /** Asked to stop: its exit is no failure. */
  stopping: boolean;
  lastError: Error | undefined;
}

/** The server's handle on a transfer in another thread: its commands are posted there. */
class ThreadTransfer implements Transfer {
  readonly wantsCookies: boolean;
  done = false;
  #leaving = false;
  readonly #id: number;
  readonly #worker: Worker;

  constructor(id: number, wantsCookies: boolean, worker: Worker) {
    this.#id = id;
    this.wantsCookies = wantsCookies;
    this.#worker = worker;
  }

  get leaving(): boolean {
    return this.#leaving;
  }

  #post(m: ToWorker): void {
    if (!this.done) this.#worker.postMessage(m);
  }

  abort(notify: boolean, message: string, resumable = false): void {
    this.#post({ t: 'abort', id: this.#id, notify, message, resumable });
  }

  repeat(): void {
    this.#post({ t: 'repeat', id: this.#id });
  }

  /** As the transfer itself answers: a transfer with cookies leaves, anything else stays. */
  leave(notice: LeaveNotice): boolean {
    if (this.done || !this.wantsCookies) return false;
    if (!this.#leaving) {
      this.#leaving = true;
      this.#post({ t: 'leave', id: this.#id, notice });
    }
    return true;
  }
}

let bundled: Promise<URL> | undefined;

/**
 * The worker's entry: worker.js next to this module. Run from the
 * TypeScript sources (tests, tsx), workers inherit no loader hooks on Node
 * 20: the entry is bundled once per process (esbuild) into
 * node_modules/.cache, where its package imports resolve.
 */
function workerEntry(): Promise<URL> {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return Promise.resolve(new URL('./worker.js', self));
  bundled ??= (async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('./worker.ts', self))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]!.contents;
    const dir = new URL('../../../node_modules/.cache/rserpool/', self);
    const file = new URL(`tftp-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`, dir);
    await mkdir(dir, { recursive: true });
    // Written aside and renamed: processes starting at once never load half a file.
    const temp = `${fileURLToPath(file)}.${process.pid}.${threadId}`;
    await writeFile(temp, code);
    await rename(temp, file);
    return file;
  })();
  return bundled;
}

export class TransferThreads implements TransferBackend {
  readonly #init: WorkerInit;
  readonly #logger: Logger;
  readonly #slots: (Slot | undefined)[];
  /** Ties go round the threads from here. */
  #next = 0;
  #nextJob = 1;
  #closed = false;
  #entry: URL | undefined;
  #closing: { leaving: boolean } | undefined;
  readonly #readyWaiters = new Map<Slot, { resolve: () => void; reject: (err: Error) => void }>();

  constructor(n: number, root: string, cfg: RunnerConfig, logger: Logger) {
    const { cookieKey, ...rest } = cfg;
    this.#init = { root, cfg: rest, key: new Uint8Array(cookieKey.aead.export()) };
    this.#logger = logger;
    this.#slots = Array.from({ length: n }, () => undefined);
  }

  /** The worker threads now serving (for tests and status). */
  get workers(): Worker[] {
    return this.#slots.filter((s): s is Slot => s !== undefined && !s.stopping).map((s) => s.worker);
  }

  get transferBytes(): number {
    let sum = 0;
    for (const s of this.#slots) sum += s?.transferBytes ?? 0;
    return sum;
  }

  /** Resolves once every thread is ready; rejects (and stops them) if one fails first. */
  async start(): Promise<void> {
    this.#entry = await workerEntry();
    const ready = this.#slots.map((_, i) => this.#spawn(i));
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  #spawn(i: number): Promise<void> {
    const worker = new Worker(this.#entry!, { workerData: this.#init });
    const slot: Slot = { worker, threadId: worker.threadId, ready: false, jobs: new Map(), transferBytes: 0, stopping: false, lastError: undefined };
    this.#slots[i] = slot;
    if (this.#closing) worker.postMessage({ t: 'closing', leaving: this.#closing.leaving } satisfies ToWorker);
    worker.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    worker.on('error', (err) => {
      slot.lastError = err;
      this.#logger.error({ err, threadId: slot.threadId }, 'TFTP transfer thread failed');
    });
    worker.on('exit', (code) => this.#onExit(i, slot, code));
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#readyWaiters.delete(slot);
        reject(new Error(`TFTP transfer thread ${slot.threadId} not ready within ${READY_MS} ms`));
      }, READY_MS);
      t.unref();
      this.#readyWaiters.set(slot, {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (err) => {
          clearTimeout(t);
          reject(err);
        },
      });
    });
  }

  /** The thread with the fewest transfers (set up or running), ties taken in turn. */
  #pick(): Slot | undefined {
    const n = this.#slots.length;
    let best: Slot | undefined;
    let at = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const s = this.#slots[i];
      if (!s || s.stopping) continue;
      if (!best || s.jobs.size < best.jobs.size) {
        best = s;
        at = i;
      }
    }
    this.#next = (at + 1) % n;
    return best;
  }

  run(job: Job, hooks: JobHooks): Promise<void> {
    const slot = this.#pick();
    if (!slot) return Promise.reject(new Error('no transfer thread is running'));
    const id = this.#nextJob++;
    return new Promise<void>((resolve, reject) => {
      slot.jobs.set(id, { hooks, settle: { resolve, reject }, transfer: undefined, temp: undefined });
      slot.worker.postMessage({ t: 'run', id, job } satisfies ToWorker);
    });
  }

  closing(leaving: boolean): void {
    this.#closing = { leaving };
    for (const s of this.#slots) s?.worker.postMessage({ t: 'closing', leaving } satisfies ToWorker);
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (m.t === 'ready') {
      slot.ready = true;
      this.#readyWaiters.get(slot)?.resolve();
      this.#readyWaiters.delete(slot);
      return;
    }
    const job = slot.jobs.get(m.id);
    if (!job) return;
    switch (m.t) {
      case 'begin': {
        slot.transferBytes = m.bytes;
        const t = new ThreadTransfer(m.id, m.wantsCookies, slot.worker);
        job.transfer = t;
        job.temp = m.temp;
        job.hooks.begin(m.info, t);
        job.settle?.resolve();
        job.settle = undefined;
        break;
      }
      case 'failed':
        slot.jobs.delete(m.id);
        job.settle?.reject(fromThreadError(m.error));
        break;
      case 'skipped':
        slot.jobs.delete(m.id);
        job.settle?.resolve();
        break;
      case 'underway':
        job.hooks.underWay();
        break;
      case 'cookie':
        job.hooks.cookieIssued(m.next);
        break;
      case 'end': {
        slot.transferBytes = m.bytes;
        slot.jobs.delete(m.id);
        if (job.transfer) job.transfer.done = true;
        const { error, ...end } = m.end;
        job.hooks.end({ ...end, ...(error ? { error: fromThreadError(error) } : {}) });
        break;
      }
    }
  }

  #onExit(i: number, slot: Slot, code: number): void {
    if (this.#slots[i] === slot) this.#slots[i] = undefined;
    const err = new Error(
      `the TFTP transfer thread ${slot.threadId} ${slot.stopping ? 'stopped' : 'failed'} (exit code ${code}${slot.lastError ? `: ${slot.lastError.message}` : ''})`,
    );
    const waiter = this.#readyWaiters.get(slot);
    this.#readyWaiters.delete(slot);
    waiter?.reject(err);
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    slot.transferBytes = 0;
    if (jobs.length > 0) this.#logger.warn({ threadId: slot.threadId, transfers: jobs.length, err: err.message }, 'transfers ended with their thread');
    for (const job of jobs) {
      if (job.settle) {
        job.settle.reject(err);
        continue;
      }
      if (job.transfer) job.transfer.done = true;
      // Nothing more is known of its progress.
      const end = (): void => job.hooks.end({ reason: 'error', bytes: 0, lastBlock: 0, error: err });
      // As in-thread, an upload ends once its temporary file is gone; one with cookies keeps it for its client to resume.
      if (job.temp !== undefined && !job.transfer?.wantsCookies)
        void unlink(job.temp)
          .catch(() => {})
          .finally(end);
      else end();
    }
    if (slot.stopping || this.#closed) return;
    // One that served is replaced at once; one that failed before it was ready is tried again after a pause.
    if (slot.ready) this.#spawn(i).catch(() => {});
    else this.#respawnLater(i);
  }

  #respawnLater(i: number): void {
    const t = setTimeout(() => {
      if (!this.#closed && this.#slots[i] === undefined) this.#spawn(i).catch(() => {});
    }, RESPAWN_BACKOFF_MS);
    t.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.stopping = true;
            const t = setTimeout(() => void s.worker.terminate(), STOP_MS);
            s.worker.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            s.worker.postMessage({ t: 'stop' } satisfies ToWorker);
          }),
      ),
    );
  }
}
