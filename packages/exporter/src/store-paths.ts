/** Defined once in @hoist/oci; re-exported for the store tools here. */
export { storePaths, type StorePaths } from '@hoist/oci';
