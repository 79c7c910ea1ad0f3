#!/usr/bin/env python3
"""Regions for the plugin tests, one per line: N seeded random ones over the references of
`samtools idxstats` output on stdin, then edge cases (contig ends, c:1-1, past the end, whole
references, empty references, `*`) and the chunk and bin boundaries of a dataset's index.

    samtools idxstats BAM | regions.py SEED N DATASET_DIR
"""
import json
import os
import random
import sys

seed, n, dataset = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
refs = []
for line in sys.stdin:
    name, length, mapped, unmapped = line.rstrip("\n").split("\t")
    if name != "*":
        refs.append((name, int(length), int(mapped) + int(unmapped)))
rng = random.Random(seed)


def q(name):
    """htslib's quoting of names that hold a colon."""
    return "{" + name + "}" if ":" in name else name


used = [r for r in refs if r[2] > 0] or refs
out = []
for _ in range(n if used else 0):
    name, length, _ = rng.choice(used)
    span = rng.choice([1, 10, 100, 1000, 10_000, 100_000, length])
    beg = rng.randint(1, max(1, length + 50))
    out.append(f"{q(name)}:{beg}-{beg + span - 1}")
# Edge cases on the first references with records and on a few empty ones.
empty = [r for r in refs if r[2] == 0]
for name, length, reads in used[:8] + empty[:3]:
    out += [f"{q(name)}:1-1", f"{q(name)}:{length}-{length}", f"{q(name)}:{length}",
            f"{q(name)}:{length + 1}-{length + 1000}", q(name)]
out.append("*")
# Chunk and bin boundaries: a unit's first position and end, and 16 kb / 1 Mb bin edges.
index = os.path.join(dataset, "_index", "spatial.json")
with open(index) as f:
    idx = json.load(f)
with_chunks = [r for r in idx["references"] if r["chunks"]]
for r in with_chunks[:3]:
    for c in r["chunks"][:12]:
        p, e = c["first_pos"], c["max_end"]
        out += [f"{q(r['name'])}:{p + 1}-{p + 1}", f"{q(r['name'])}:{max(1, p)}-{p + 1}",
                f"{q(r['name'])}:{e}-{e}", f"{q(r['name'])}:{e + 1}-{e + 100}"]
for name, length, reads in used[:3]:
    for edge in (1 << 14, 1 << 17, 1 << 18, 1 << 20):
        if edge < length:
            out += [f"{q(name)}:{edge}-{edge}", f"{q(name)}:{edge + 1}-{edge + 1}",
                    f"{q(name)}:{edge - 5}-{edge + 5}"]
print("\n".join(out))
