"""A synthetic sharded conversion for bench/shard.sh: N shard manifests listing CHUNKS chunk
entries in all (over 25 references of 2^27 bases, bins of 2^20, several parts a bin), and an
empty object for each chunk, so `bams3 finalize` runs its real checks and commit on an index
of that size without converting a genome first.

  synthetic_shards.py DIR CHUNKS N
"""

import json
import os
import sys


def main():
    out, chunks, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    refs, bin_size = 25, 1 << 20
    bins_per_ref = (1 << 27) // bin_size
    parts = -(-chunks // (refs * bins_per_ref))
    header = {
        "text": "".join(f"@SQ\tSN:chr{r}\tLN:{1 << 27}\n" for r in range(refs)),
        "references": [{"name": f"chr{r}", "length": 1 << 27} for r in range(refs)],
    }
    entries = []
    for r in range(refs):
        os.makedirs(f"{out}/data/chr{r}", exist_ok=True)
        for b in range(bins_per_ref):
            for p in range(parts):
                if len(entries) == chunks:
                    break
                start = b * bin_size
                name = f"{start:09d}-{start + bin_size:09d}" + (f".p{p}" if p else "") + ".chunk"
                path = f"data/chr{r}/{name}"
                open(f"{out}/{path}", "wb").close()
                entries.append(([r, b], {
                    "path": path, "bin_start": start, "bin_end": start + bin_size, "part": p,
                    "count": 5000, "first_pos": start, "last_pos": start + bin_size - 200,
                    "max_end": start + bin_size - 50, "mapq_min": 0, "mapq_max": 60,
                    "flags_all": 1, "flags_any": 4083, "unmapped": 10, "duplicates": 40,
                    "secondary": 5, "bases": 750000, "raw_bytes": 1900000, "stored_bytes": 500000,
                    "checksum": "crc32:0badf00d",
                    "streams": [[100 + 4000 * i, 4000, 12000, 3735928559, 1] for i in range(16)],
                }))
    os.makedirs(f"{out}/_shards", exist_ok=True)
    # Shards end on bin boundaries, as real ones do: never between two parts of a bin.
    bins = sorted({tuple(b) for b, _ in entries})
    per = -(-len(bins) // n)
    for k in range(n):
        mine = set(bins[k * per:(k + 1) * per])
        own = [(b, e) for b, e in entries if tuple(b) in mine]
        nxt = list(bins[(k + 1) * per]) if (k + 1) * per < len(bins) else None
        first = [0, 0] if k == 0 else list(bins[k * per])
        m = {
            "format": "bams3-shard-manifest", "version": 1, "shard": k + 1, "of": n,
            "fingerprint": "sha256:synthetic", "source": {"file": "synthetic.bam", "format": "BAM"},
            "options": {"chunk_size": bin_size, "level": 3, "part_bytes": 2 << 20},
            "header": header, "first": first, "end": None if k == n - 1 else nxt,
            "input": {"size": 0, "start": 0, "bytes_read": 0}, "records": 5000 * len(own),
            "sorted": True, "chunks": [{"bin": b, "entry": e} for b, e in own],
        }
        with open(f"{out}/_shards/{k + 1}-of-{n}.json", "w") as f:
            json.dump(m, f)


if __name__ == "__main__":
    main()
