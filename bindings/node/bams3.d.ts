// Types of the `bams3` package (bams3.js). The native addon's own generated declarations are
// in index.d.ts.

/** An Error from bams3: `code` is the C ABI's name (BAMS3_ERR_NOT_FOUND, ...). */
export interface Bams3Error extends Error {
  code:
    | 'BAMS3_ERR_INVALID'
    | 'BAMS3_ERR_NOT_FOUND'
    | 'BAMS3_ERR_EXISTS'
    | 'BAMS3_ERR_INCOMPLETE'
    | 'BAMS3_ERR_CORRUPT'
    | 'BAMS3_ERR_IO'
    | 'BAMS3_ERR_REGION'
    | 'BAMS3_ERR_MISUSE'
    | 'BAMS3_ERR_PANIC'
    | 'BAMS3_ERR_CANCELLED';
}

/** How `s3://` locations are reached (ignored for local paths). */
export interface OpenOptions {
  /** Endpoint of an S3-compatible store, with path-style addressing (as `--endpoint-url`). */
  endpointUrl?: string;
  /** Unsigned requests, for public buckets (as `--no-sign-request`). */
  noSignRequest?: boolean;
  /** Also cache fetched chunk data locally (as `--cache-chunks`). */
  cacheChunks?: boolean;
}

/** Record filters, as `samtools view -q/-f/-F`. */
export interface Filter {
  minMapq?: number;
  requireFlags?: number;
  excludeFlags?: number;
}

/** Options of `depth()`, as `bams3 depth` (samtools depth). */
export interface DepthOptions {
  /** Every position, zero depth included (`-a`). */
  all?: boolean;
  /** Count deletions (`-J`). */
  deletions?: boolean;
  /** `-Q` */
  minMapq?: number;
  /** `-q` */
  minBaseq?: number;
  /** `-l` */
  minLen?: number;
  /** Flags removed from the default filter UNMAP,SECONDARY,QCFAIL,DUP (`-g`). */
  includeFlags?: number;
  /** Flags added to the filter (`-G`). */
  excludeFlags?: number;
}

export interface WriterOptions extends OpenOptions {
  /** Genomic span of a chunk: a power of two from 262144 to 8388608 (default 1048576). */
  chunkSize?: number;
  /** zstd level 1-22 (default 3). */
  level?: number;
  /** Worker threads (default 2). */
  threads?: number;
  /** Memory budget for buffered records, in bytes (default 512 MiB). */
  memory?: number;
}

export interface ConvertOptions extends WriterOptions {
  /** Called with the number of records converted so far, a few times a second. */
  onProgress?: (records: number) => void;
}

/** What a committed dataset holds. */
export interface Summary {
  records: number;
  mapped: number;
  unmapped: number;
  chunks: number;
  storedBytes: number;
}

export interface Reference {
  name: string;
  length: number;
}

export type TagValue =
  | number
  | string
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array;

/** One alignment record; fields as SAM shows them (pos 1-based, 0 when unplaced). */
export declare class Record {
  private constructor();
  readonly name: string;
  readonly flag: number;
  /** `*` when unplaced. */
  readonly refName: string;
  readonly pos: number;
  readonly mapq: number;
  readonly cigar: string;
  /** The mate's reference name (SAM's `=` resolved), `*` when none. */
  readonly nextRefName: string;
  readonly nextPos: number;
  readonly tlen: number;
  readonly seq: string;
  /** Phred+33 text, `*` when absent. */
  readonly qual: string;
  /** Optional fields with their types: integers and floats as numbers, B arrays as typed arrays. */
  readonly tags: { [tag: string]: TagValue };
  /** The line `bams3 query` prints, without the newline. */
  toSam(): string;
  /** The record's BAM encoding with its block_size prefix (a copy). */
  toBam(): Buffer;
  toJSON(): object;
}

/** Regions as `samtools view` takes them: `chr`, `chr:beg`, `chr:beg-end` (1-based), `*`. */
export type Regions = string | string[];

export declare class Dataset {
  private constructor();
  /** SAM header text. */
  readonly header: string;
  readonly references: Reference[];
  /** The object `bams3 stats --json` prints. */
  stats(): Promise<{ [key: string]: unknown }>;
  /** As `bams3 query -c`; no regions: the whole dataset. */
  count(regions?: Regions, filter?: Filter): Promise<number>;
  /** Records in the order `bams3 query` prints them; no regions: the whole dataset. */
  query(regions?: Regions, filter?: Filter): AsyncGenerator<Record, void, undefined>;
  /** Buffers of BAM records (each with its block_size prefix), many records per Buffer. */
  queryBam(regions?: Regions, filter?: Filter): AsyncGenerator<Buffer, void, undefined>;
  /** `[pos, depth, refName]` per position, as `bams3 depth`. */
  depth(regions?: Regions, options?: DepthOptions): AsyncGenerator<[number, number, string], void, undefined>;
  /** Later calls reject with BAMS3_ERR_MISUSE. */
  close(): void;
}

export declare class Writer {
  private constructor();
  /** One SAM line, or several. */
  write(lines: string | string[]): Promise<void>;
  /** BAM records, each with its block_size prefix (what `queryBam()` yields). */
  writeBam(records: Uint8Array): Promise<void>;
  /** Commits the dataset; `_metadata.json` is written last. */
  finish(): Promise<Summary>;
  /** Removes what was written. */
  abort(): Promise<void>;
}

/** Opens a committed dataset: a directory or `s3://bucket/prefix`. */
export declare function open(location: string, options?: OpenOptions): Promise<Dataset>;
/** Starts a new dataset (the location must not exist) with this SAM header. */
export declare function create(location: string, headerText: string, options?: WriterOptions): Promise<Writer>;
/** Converts BAM or SAM (a file or `s3://bucket/key`) into a new dataset, as `bams3 convert`. */
export declare function convert(input: string, output: string, options?: ConvertOptions): Promise<Summary>;
