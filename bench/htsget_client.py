#!/usr/bin/env python3
"""An htsget client for bench/htsget.sh: fetches a ticket and every block it lists (in order,
as htslib does), and measures.

    htsget_client.py ttlb TICKET_URL...          per URL: seconds to last byte, bytes, blocks
    htsget_client.py load SECONDS CLIENTS TICKET_URL...
                                                 CLIENTS threads fetch the URLs round-robin for
                                                 SECONDS; prints completed tickets per second
    htsget_client.py cat TICKET_URL OUT          the concatenated blob
"""
import base64
import http.client
import json
import sys
import threading
import time
import urllib.parse

_local = threading.local()


def conn(netloc):
    """One keep-alive connection per host and thread (both servers allow keep-alive)."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    c = pool.get(netloc)
    if c is None:
        c = pool[netloc] = http.client.HTTPConnection(netloc, timeout=600)
    return c


def get(url, headers=None):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    for attempt in (0, 1):
        c = conn(u.netloc)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            if r.status not in (200, 206):
                raise RuntimeError(f"{url}: HTTP {r.status}: {body[:200]!r}")
            return body
        except (http.client.HTTPException, ConnectionError):
            c.close()
            _local.pool.pop(u.netloc, None)
            if attempt:
                raise


def fetch(ticket_url, out=None):
    """Ticket, then its blocks; returns (bytes, blocks)."""
    ticket = json.loads(get(ticket_url))["htsget"]
    total = 0
    for b in ticket["urls"]:
        if b["url"].startswith("data:"):
            data = base64.b64decode(b["url"].split(",", 1)[1])
        else:
            data = get(b["url"], b.get("headers"))
        total += len(data)
        if out:
            out.write(data)
    return total, len(ticket["urls"])


def main():
    mode = sys.argv[1]
    if mode == "ttlb":
        for url in sys.argv[2:]:
            t0 = time.perf_counter()
            n, blocks = fetch(url)
            print(f"{time.perf_counter() - t0:.4f} {n} {blocks}")
    elif mode == "cat":
        with open(sys.argv[3], "wb") as f:
            fetch(sys.argv[2], f)
    elif mode == "load":
        secs, clients, urls = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
        done = [0] * clients
        errors = []
        stop = time.perf_counter() + secs

        def worker(i):
            k = i
            try:
                while time.perf_counter() < stop:
                    fetch(urls[k % len(urls)])
                    done[i] += 1
                    k += clients
            except Exception as e:  # reported, and the run fails
                errors.append(str(e))

        t0 = time.perf_counter()
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            print("error: " + errors[0], file=sys.stderr)
            sys.exit(1)
        print(f"{sum(done) / (time.perf_counter() - t0):.2f}")
    else:
        sys.exit(f"unknown mode {mode}")


main()
