/** A transfer thread's entry point (see workers.ts): runs the transfers the server admits and sends it their events. */
import { createSecretKey } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../../clock.js';
import { encodeCookie, verifyCookie } from './cookie.js';
import { TransferRunner } from './runner.js';
import { openTransferSocket, type Transfer } from './transfer.js';
import { toThreadError, type FromWorker, type ToWorker, type WorkerInit } from './worker-messages.js';

const port = parentPort;
if (port) {
  const init = workerData as WorkerInit;
  const cookieKey = { aead: createSecretKey(init.key) };
  const runner = new TransferRunner(init.root, { ...init.cfg, cookieKey }, { clock: systemClock, wallClock: Date.now });
  const transfers = new Map<number, Transfer>();
  const post = (m: FromWorker): void => port.postMessage(m);

  const run = (id: number, m: Extract<ToWorker, { t: 'run' }>): void => {
    let begun = false;
    runner
      .run(m.job, {
        begin: (info, t, temp) => {
          begun = true;
          transfers.set(id, t);
          post({ t: 'begin', id, info, wantsCookies: t.wantsCookies, temp, bytes: runner.transferBytes });
        },
        underWay: () => post({ t: 'underway', id }),
        end: (end) => {
          transfers.delete(id);
          const { error, ...rest } = end;
          post({ t: 'end', id, end: { ...rest, ...(error ? { error: toThreadError(error) } : {}) }, bytes: runner.transferBytes });
        },
        cookieIssued: (next) => post({ t: 'cookie', id, next }),
      })
      .then(
        () => {
          if (!begun) post({ t: 'skipped', id });
        },
        (err: unknown) => post({ t: 'failed', id, error: toThreadError(err) }),
      );
  };

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'run':
        run(m.id, m);
        break;
      case 'abort':
        transfers.get(m.id)?.abort(m.notify, m.message, m.resumable);
        break;
      case 'repeat':
        transfers.get(m.id)?.repeat();
        break;
      case 'leave':
        transfers.get(m.id)?.leave(m.notice);
        break;
      case 'closing':
        runner.closing(m.leaving);
        break;
      case 'stop':
        port.close();
        break;
    }
  });

  // As the server does before it takes requests: the first AEAD and the first transfer socket are not a resuming client's wait.
  const address = isIPv6(init.cfg.host) ? '::1' : '127.0.0.1';
  const now = Date.now();
  const state = { path: 'warm-up', size: 1, mtimeMs: 0, blksize: 512, windowsize: 1, timeout: 0, next: 1, interval: 1 };
  verifyCookie(encodeCookie(state, cookieKey, { address, now, lifetimeMs: 60_000 }), cookieKey, { address, now });
  void openTransferSocket(init.cfg.host, { address, port: 9 }, 4096)
    .then(
      (s) => s.close(),
      () => {},
    )
    .then(() => post({ t: 'ready' }));
}
