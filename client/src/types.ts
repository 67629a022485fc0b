/**
 * The manifest and status answers as the client reads them: the fields it uses, typed by hand from
 * ManifestV1 in shared/core/schemas.ts (the client carries no zod). Readers ignore fields they do
 * not know, so newer manifests still type-check here.
 */

/** An output format, in the manifest's preference order. */
export type Format = 'avif' | 'webp' | 'jpeg';

/** One variant: a width of one format (of an aspect's crop when listed under `aspects`). */
export interface ManifestVariant {
  readonly width: number;
  readonly height: number;
  readonly format: Format;
  readonly contentType: string;
  readonly bytes: number;
  readonly name: string;
  readonly url: string;
  readonly animated?: true;
}

/** One aspect's crop and its variants. */
export interface ManifestAspect {
  readonly crop: { left: number; top: number; width: number; height: number; by: string };
  readonly formats: readonly Format[];
  readonly variants: readonly ManifestVariant[];
  /** The crop's variants as ready-made `srcset` values per format; absent in older manifests. */
  readonly srcset?: Readonly<Partial<Record<Format, string>>>;
}

/** `{id}/manifest.json`, version 1 (docs/api.md, "The manifest"). */
export interface Manifest {
  readonly v: 1;
  readonly id: string;
  readonly original: {
    readonly format: string;
    readonly width: number;
    readonly height: number;
    readonly bytes: number;
    readonly contentType: string;
  };
  /** Formats in preference order (best compression first). */
  readonly formats: readonly Format[];
  readonly variants: readonly ManifestVariant[];
  /** Ready-made `srcset` values per format (`url 320w, url 640w`); absent in older manifests. */
  readonly srcset?: Readonly<Partial<Record<Format, string>>>;
  readonly aspects?: Readonly<Record<string, ManifestAspect>>;
  readonly placeholder?: { readonly color: string; readonly thumbhash: string };
  readonly createdAt: string;
}

/** A variant already finished while the image is processing. */
export interface FinishedVariant {
  readonly url: string;
  readonly width: number;
  readonly height: number;
  readonly format: Format;
  readonly aspect?: string;
}

/** The image is ready: its manifest. */
export interface ReadyStatus {
  readonly status: 'ready';
  /** The upload's id (what `GET /uploads/{id}` takes). */
  readonly id: string;
  /** The image's content id (the same as `id` on servers without per-upload ids). */
  readonly imageId: string;
  readonly manifest: Manifest;
  /** The file name given with this upload (only its owner sees it; the manifest has none). */
  readonly filename?: string;
  readonly createdAt?: string;
  /** The metadata given with this upload (`upload`'s `metadata`), on servers that keep it (issue 22). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** The image is being made: progress, and the variants already finished. */
export interface ProcessingStatus {
  readonly status: 'processing';
  readonly id: string;
  readonly imageId: string;
  readonly done?: number;
  readonly total?: number;
  readonly finished?: readonly FinishedVariant[];
  readonly placeholder?: { readonly color: string; readonly thumbhash: string };
  readonly statusUrl?: string;
  /** The file name given with this upload (only its owner sees it). */
  readonly filename?: string;
  readonly createdAt?: string;
  /** The metadata given with this upload, on servers that keep it (issue 22). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** A signed-URL upload that ingest has not taken yet. */
export interface WaitingStatus {
  readonly status: 'waiting';
  readonly ticket: string;
}

/** What a status request answers (a failed image is an `ApiError` with code `image_failed`). */
export type UploadStatus = ReadyStatus | ProcessingStatus | WaitingStatus;
