/** ringkv's server-side entry points (the client SDK is `ringkv/client`). */
export { type NodeConfig, ConfigError, parseNodeConfig } from './config.js';
export { ERROR_CODES, type ErrorCode, RingkvError } from './errors.js';
export { RingkvNode } from './node.js';
