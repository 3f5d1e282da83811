export * from './types.js';
export * from './codec.js';
export { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './ip.js';
