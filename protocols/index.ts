export * from './errors.js';
export * from './framing.js';
export * from './parameters/index.js';
export * from './asap/index.js';
export * from './enrp/index.js';
export * from './samples.js';
export * from './tftp/index.js';
