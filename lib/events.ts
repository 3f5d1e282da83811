import type { EventEmitter } from 'eventemitter3';

/** The subscribe side of an eventemitter3 emitter; emitting stays internal. Every layer exposes its events as this. */
export type Events<E extends object> = Pick<EventEmitter<E>, 'on' | 'once' | 'off' | 'listenerCount'>;
