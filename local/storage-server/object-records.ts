/**
 * What the server keeps about buckets and objects, independent of how it is stored or shown.
 * The JSON API resources are rendered from these in resources.ts.
 */

/** A bucket. Only the fields the clients read are kept; the rest are rendered as constants. */
export interface BucketRecord {
  name: string;
  timeCreated: string;
  updated: string;
  metageneration: number;
  location: string;
  storageClass: string;
  labels?: Record<string, string>;
}

/** The metadata fields a client may set on an object (at upload, by patch, or on copy). */
export interface WritableObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  customTime?: string;
  metadata?: Record<string, string>;
}

/** The live generation of one object. */
export interface ObjectRecord extends WritableObjectFields {
  bucket: string;
  name: string;
  /** Decimal int64, as the JSON API writes it; increases with every new content. */
  generation: string;
  /** Starts at 1 and increases with every metadata change of one generation. */
  metageneration: number;
  size: number;
  /** Absent for composed objects, as in Cloud Storage. */
  md5Hash?: string;
  crc32c: string;
  storageClass: string;
  timeCreated: string;
  updated: string;
  /** Set on objects made by compose: the number of source components. */
  componentCount?: number;
}

/** The names of {@link WritableObjectFields} whose values are plain strings. */
export const WRITABLE_STRING_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
  'customTime',
] as const satisfies readonly (keyof WritableObjectFields)[];
