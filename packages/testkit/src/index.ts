export * from './registry.js';
export * from './tools.js';
export * from './hoist.js';
export * from './tls.js';
export * from './token-issuer.js';
export * from './proxy.js';
export * from './debian.js';
export * from './users.js';
