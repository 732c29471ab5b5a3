export { ExportError, type ExportErrorCode } from './errors.js';
export { parseSize, formatSize, SIZE_UNITS } from './size.js';
export { parseOutputSpec, parseOutputSpecs, writesStdout, pushes, OUTPUT_TYPES, OUTPUT_USAGE, type OutputSpec, type OutputType } from './output-spec.js';
export { TarSink, type TarSinkOptions } from './tar-sink.js';
export { openFileTarget, openDirTarget, type FileTarget, type DirTarget } from './dest.js';
export { loadExportImage, resolveImages, imageBlobs, exportBlobs, checkBlobsPresent, type ExportBlob, type ExportImage, type ImageManifest, type LoadImageOptions } from './images.js';
export { uncompressedLayer, measureLayer, diffIdOf } from './layer-data.js';
export { writeOciArchive, writeOciDir, indexEntries } from './oci-layout.js';
export { writeDockerArchive, legacyLayerIds, type DockerManifestEntry } from './docker-archive.js';
export { writeArchive, saveImages, saveOciDir, type ArchiveFormat, type SaveOptions } from './save.js';
export { exportRootfsDir, exportRootfsTar, ensureLayers } from './rootfs.js';
export { writeOutput, type OutputContext, type OutputResult } from './outputs.js';
export { loadArchive, type LoadResult, type LoadedImage } from './load.js';
export { storePaths, type StorePaths } from './store-paths.js';
export { listCacheRecords, type CacheRecordFile } from './cache-records.js';
export { pruneStore, type PruneOptions, type PruneReport, type Freed } from './prune.js';
export { fsckStore, type FsckIssue, type FsckReport } from './fsck.js';
export { diskUsage, type DiskUsage } from './du.js';
export { storeActivity } from './snapshots.js';
export { imagePurl, imageSubjects, statement, STATEMENT_TYPE, PREDICATE_PROVENANCE_V1, PREDICATE_SPDX, type Statement, type Subject } from './attest/intoto.js';
export { provenancePredicate, BUILD_TYPE, type ProvenanceInput, type ProvenanceMode, type ResolvedDependency } from './attest/provenance.js';
export {
  writeAttestedIndex,
  writeAttestationManifest,
  isAttestationManifest,
  INTOTO_MEDIA_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  REFERENCE_DIGEST_ANNOTATION,
  ATTESTATION_MANIFEST,
  type AttestedImage,
} from './attest/attach.js';
export { imageSbom, imagePackages, type ImageSbomOptions } from './attest/sbom/index.js';
export { spdxDocument, type SpdxOptions } from './attest/sbom/spdx.js';
export { scanFiles, parseOsRelease } from './attest/sbom/scan.js';
export { collectFiles, wantedFile, type CollectLimits, type CollectedFiles } from './attest/sbom/collect.js';
export { parseDpkgStatus, debPurl } from './attest/sbom/dpkg.js';
export { parseApkInstalled, apkPurl } from './attest/sbom/apk.js';
export { parsePackageLock, parsePackageJson, npmPurl, isInstalledPackageJson } from './attest/sbom/npm.js';
export { parseMetadata, pypiPurl, isDistInfoMetadata } from './attest/sbom/python.js';
export type { FoundPackage, Distro } from './attest/sbom/types.js';
