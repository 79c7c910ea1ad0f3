#!/usr/bin/env python3
"""samtools region strings (one a line, from bindings/htslib/regions.py) to htsget query
strings: prints `REGION<TAB>QUERY` lines, where QUERY asks /reads/{id} for exactly the
records `samtools view BAM REGION` prints (1-based inclusive becomes 0-based half-open).

    regions.py < regions.txt
"""
import sys
import urllib.parse

for line in sys.stdin:
    r = line.rstrip("\n")
    if not r:
        continue
    if r == "*":
        q = {"referenceName": "*"}
    else:
        if r.startswith("{"):
            name, rest = r[1:].split("}", 1)
            coords = rest[1:] if rest.startswith(":") else None
        elif ":" in r:
            name, coords = r.rsplit(":", 1)
        else:
            name, coords = r, None
        q = {"referenceName": name}
        if coords:
            if "-" in coords:
                b, e = coords.split("-", 1)
                q["start"] = int(b) - 1
                if e:
                    q["end"] = int(e)
            else:
                q["start"] = int(coords) - 1
    print(r + "\t" + urllib.parse.urlencode(q))
