/**
 * Buckets and objects, in memory or in a directory. Metadata always lives in memory; with a
 * directory every change is written there first, bytes then record, and the record's rename is the
 * commit, so a crash never leaves half an object. Read-check-write sequences run inside
 * {@link Store.withLock} for the object's name. (README, "What it covers": persistence.)
 */
import { createHash, randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, noSuchBucket } from './api-errors.js';
import type { BucketRecord, ObjectRecord } from './object-records.js';

/** Where records and bytes are kept. */
interface Persistence {
  load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }>;
  writeBucket(bucket: BucketRecord): Promise<void>;
  removeBucket(name: string): Promise<void>;
  /** Stores the bytes and the record of a new generation; the previous generation's bytes go. */
  writeObject(record: ObjectRecord, data: Buffer, previous: ObjectRecord | undefined): Promise<void>;
  writeObjectMetadata(record: ObjectRecord): Promise<void>;
  removeObject(record: ObjectRecord): Promise<void>;
  /** Bytes `start` (inclusive) to `end` (exclusive) of one generation. */
  readObject(record: ObjectRecord, start: number, end: number): Promise<Buffer>;
}

const dataKey = (record: ObjectRecord): string => `${record.bucket}\u0000${record.name}\u0000${record.generation}`;

class MemoryPersistence implements Persistence {
  private readonly data = new Map<string, Buffer>();

  async load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }> {
    return { buckets: [], objects: [] };
  }
  async writeBucket(): Promise<void> {}
  async removeBucket(): Promise<void> {}
  async writeObject(record: ObjectRecord, data: Buffer, previous: ObjectRecord | undefined): Promise<void> {
    this.data.set(dataKey(record), data);
    if (previous) this.data.delete(dataKey(previous));
  }
  async writeObjectMetadata(): Promise<void> {}
  async removeObject(record: ObjectRecord): Promise<void> {
    this.data.delete(dataKey(record));
  }
  async readObject(record: ObjectRecord, start: number, end: number): Promise<Buffer> {
    const data = this.data.get(dataKey(record));
    if (!data) throw new GenerationGoneError();
    return data.subarray(start, end);
  }
}

/** Raised when a read races with an overwrite that removed the generation being read. */
export class GenerationGoneError extends Error {
  constructor() {
    super('The object generation was replaced while it was being read');
    this.name = 'GenerationGoneError';
  }
}

/**
 * Layout:
 * ```
 * {dir}/buckets/{bucket}/bucket.json
 * {dir}/buckets/{bucket}/objects/{sha256(name)}.json    the object record (names can be any UTF-8,
 * {dir}/buckets/{bucket}/data/{sha256(name)}.{generation}  up to 1024 bytes: too long for a file name)
 * {dir}/tmp/                                              files being written, renamed into place
 * ```
 */
class DirectoryPersistence implements Persistence {
  constructor(
    private readonly root: string,
    private readonly log: (line: string) => void,
  ) {}

  private bucketDir(bucket: string): string {
    return join(this.root, 'buckets', bucket);
  }
  private static nameHash(name: string): string {
    return createHash('sha256').update(name, 'utf8').digest('hex');
  }
  private metadataPath(record: Pick<ObjectRecord, 'bucket' | 'name'>): string {
    return join(this.bucketDir(record.bucket), 'objects', `${DirectoryPersistence.nameHash(record.name)}.json`);
  }
  private dataPath(record: ObjectRecord): string {
    return join(
      this.bucketDir(record.bucket),
      'data',
      `${DirectoryPersistence.nameHash(record.name)}.${record.generation}`,
    );
  }

  /** Writes a whole file under a temporary name, flushes it, and renames it into place. */
  private async atomicWrite(path: string, data: Buffer | string): Promise<void> {
    const temporary = join(this.root, 'tmp', randomUUID());
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(data);
      // Without the flush, a power cut after the rename can leave an empty file in place.
      await handle.datasync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  async load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }> {
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    await mkdir(join(this.root, 'buckets'), { recursive: true });
    const buckets: BucketRecord[] = [];
    const objects: ObjectRecord[] = [];
    for (const entry of await readdir(join(this.root, 'buckets'), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = this.bucketDir(entry.name);
      let bucket: BucketRecord;
      try {
        bucket = JSON.parse(await readFile(join(dir, 'bucket.json'), 'utf8')) as BucketRecord;
      } catch {
        // bucket.json is written first and removed first, so a bucket without it was never
        // committed or was being deleted.
        this.log(`storage-server: removing incomplete bucket directory ${dir}`);
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      buckets.push(bucket);
      const referenced = new Set<string>();
      const objectsDir = join(dir, 'objects');
      await mkdir(objectsDir, { recursive: true });
      await mkdir(join(dir, 'data'), { recursive: true });
      for (const file of await readdir(objectsDir)) {
        if (!file.endsWith('.json')) continue;
        const record = JSON.parse(await readFile(join(objectsDir, file), 'utf8')) as ObjectRecord;
        referenced.add(this.dataPath(record));
        objects.push(record);
      }
      for (const file of await readdir(join(dir, 'data'))) {
        const path = join(dir, 'data', file);
        // Left by a crash between writing an object's bytes and committing its record, or
        // between committing a new generation and removing the old one's bytes.
        if (!referenced.has(path)) await unlink(path).catch(() => undefined);
      }
    }
    return { buckets, objects };
  }

  async writeBucket(bucket: BucketRecord): Promise<void> {
    const dir = this.bucketDir(bucket.name);
    await mkdir(join(dir, 'objects'), { recursive: true });
    await mkdir(join(dir, 'data'), { recursive: true });
    await this.atomicWrite(join(dir, 'bucket.json'), JSON.stringify(bucket, null, 2));
  }

  async removeBucket(name: string): Promise<void> {
    const dir = this.bucketDir(name);
    await unlink(join(dir, 'bucket.json')).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  async writeObject(record: ObjectRecord, data: Buffer, previous: ObjectRecord | undefined): Promise<void> {
    await this.atomicWrite(this.dataPath(record), data);
    await this.atomicWrite(this.metadataPath(record), JSON.stringify(record, null, 2));
    if (previous && previous.generation !== record.generation) {
      await unlink(this.dataPath(previous)).catch(() => undefined);
    }
  }

  async writeObjectMetadata(record: ObjectRecord): Promise<void> {
    await this.atomicWrite(this.metadataPath(record), JSON.stringify(record, null, 2));
  }

  async removeObject(record: ObjectRecord): Promise<void> {
    // Record first: once it is gone the object is gone, even if removing the bytes fails.
    await unlink(this.metadataPath(record)).catch(() => undefined);
    await unlink(this.dataPath(record)).catch(() => undefined);
  }

  async readObject(record: ObjectRecord, start: number, end: number): Promise<Buffer> {
    const length = Math.max(0, end - start);
    let handle: FileHandle;
    try {
      handle = await open(this.dataPath(record), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new GenerationGoneError();
      throw error;
    }
    try {
      const buffer = Buffer.alloc(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    } finally {
      await handle.close();
    }
  }
}

interface BucketState {
  record: BucketRecord;
  objects: Map<string, ObjectRecord>;
  /** Names in UTF-8 byte order (Cloud Storage's listing order); rebuilt lazily after changes. */
  sortedNames: string[] | undefined;
}

/** Compares names the way Cloud Storage orders them: by UTF-8 bytes (= by code point). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Buckets and objects with per-name locking; see the file comment. */
export class Store {
  private readonly buckets = new Map<string, BucketState>();
  private readonly locks = new Map<string, Promise<void>>();
  private lastGeneration = 0n;

  private constructor(private readonly persistence: Persistence) {}

  /** Opens a store: in memory without `dir`, else loading what `dir` holds. */
  static async open(options: { dir?: string; log?: (line: string) => void } = {}): Promise<Store> {
    const persistence = options.dir
      ? new DirectoryPersistence(options.dir, options.log ?? (() => undefined))
      : new MemoryPersistence();
    const store = new Store(persistence);
    const { buckets, objects } = await persistence.load();
    for (const record of buckets)
      store.buckets.set(record.name, { record, objects: new Map(), sortedNames: undefined });
    for (const record of objects) {
      const state = store.buckets.get(record.bucket);
      if (!state) continue;
      state.objects.set(record.name, record);
      const generation = BigInt(record.generation);
      if (generation > store.lastGeneration) store.lastGeneration = generation;
    }
    return store;
  }

  /**
   * A new generation number: microseconds since the epoch like Cloud Storage's, but strictly
   * increasing even within one microsecond or if the clock steps back.
   */
  nextGeneration(): string {
    const now = BigInt(Date.now()) * 1000n;
    this.lastGeneration = now > this.lastGeneration ? now : this.lastGeneration + 1n;
    return this.lastGeneration.toString();
  }

  /**
   * Runs `fn` while holding the lock for one object name. Calls for the same name run one after
   * another in arrival order; other names are not blocked.
   */
  async withLock<T>(bucket: string, name: string, fn: () => Promise<T>): Promise<T> {
    const key = `${bucket}\u0000${name}`;
    const previous = this.locks.get(key);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => held) : held;
    this.locks.set(key, tail);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  getBucket(name: string): BucketRecord | undefined {
    return this.buckets.get(name)?.record;
  }

  /** The bucket, or a 404 naming it. */
  requireBucket(name: string): BucketRecord {
    const record = this.getBucket(name);
    if (!record) throw noSuchBucket(name);
    return record;
  }

  /** All buckets, by name. */
  listBuckets(): BucketRecord[] {
    return [...this.buckets.values()].map((state) => state.record).sort((a, b) => compareNames(a.name, b.name));
  }

  /** Creates a bucket; 409 if it exists. */
  async createBucket(record: BucketRecord): Promise<BucketRecord> {
    if (this.buckets.has(record.name)) {
      throw conflict('Your previous request to create the named bucket succeeded and you already own it.');
    }
    // Reserve the name before the write so a concurrent create gets the 409.
    this.buckets.set(record.name, { record, objects: new Map(), sortedNames: undefined });
    try {
      await this.persistence.writeBucket(record);
    } catch (error) {
      this.buckets.delete(record.name);
      throw error;
    }
    return record;
  }

  /** Replaces a bucket's record (after a patch). */
  async updateBucket(record: BucketRecord): Promise<void> {
    const state = this.buckets.get(record.name);
    if (!state) throw noSuchBucket(record.name);
    await this.persistence.writeBucket(record);
    state.record = record;
  }

  /** Deletes an empty bucket; 404 if missing, 409 if it holds objects. */
  async deleteBucket(name: string): Promise<void> {
    const state = this.buckets.get(name);
    if (!state) throw noSuchBucket(name);
    if (state.objects.size > 0) throw conflict('The bucket you tried to delete is not empty.');
    this.buckets.delete(name);
    await this.persistence.removeBucket(name);
  }

  getObject(bucket: string, name: string): ObjectRecord | undefined {
    return this.buckets.get(bucket)?.objects.get(name);
  }

  /** Every object name in the bucket, in listing order. */
  sortedNames(bucket: string): string[] {
    const state = this.buckets.get(bucket);
    if (!state) throw noSuchBucket(bucket);
    state.sortedNames ??= [...state.objects.keys()].sort(compareNames);
    return state.sortedNames;
  }

  /**
   * Makes `record` (a new generation) with `data` the live object. Call inside
   * {@link withLock} after checking preconditions against {@link getObject}.
   */
  async putObject(record: ObjectRecord, data: Buffer): Promise<void> {
    const state = this.buckets.get(record.bucket);
    if (!state) throw noSuchBucket(record.bucket);
    const previous = state.objects.get(record.name);
    await this.persistence.writeObject(record, data, previous);
    if (!previous) state.sortedNames = undefined;
    state.objects.set(record.name, record);
  }

  /** Replaces the record of the live generation (a metadata change). Call inside {@link withLock}. */
  async updateObject(record: ObjectRecord): Promise<void> {
    const state = this.buckets.get(record.bucket);
    if (!state) throw noSuchBucket(record.bucket);
    await this.persistence.writeObjectMetadata(record);
    state.objects.set(record.name, record);
  }

  /** Removes the live object. Call inside {@link withLock}. */
  async deleteObject(record: ObjectRecord): Promise<void> {
    const state = this.buckets.get(record.bucket);
    if (!state) throw noSuchBucket(record.bucket);
    await this.persistence.removeObject(record);
    state.objects.delete(record.name);
    state.sortedNames = undefined;
  }

  /** Bytes `start` (inclusive) to `end` (exclusive) of a generation, by default all of them. */
  readData(record: ObjectRecord, start = 0, end = record.size): Promise<Buffer> {
    return this.persistence.readObject(record, start, end);
  }
}
