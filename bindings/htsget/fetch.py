#!/usr/bin/env python3
"""Fetches an htsget ticket (GET, or POST with a JSON body) and writes the concatenation of
its blocks (data: URIs decoded, http URLs fetched with the ticket's headers) to OUT, or prints
a summary of the ticket with --describe (number of body URLs).

    fetch.py URL OUT [POST-JSON] [--token TOKEN]
    fetch.py --describe URL
"""
import base64
import json
import sys
import urllib.request

args = sys.argv[1:]
token = None
if "--token" in args:
    i = args.index("--token")
    token = args[i + 1]
    del args[i:i + 2]
describe = args and args[0] == "--describe"
if describe:
    args = args[1:]
url = args[0]
body = args[2].encode() if len(args) > 2 else None
headers = {"Content-Type": "application/json"} if body else {}
if token:
    headers["Authorization"] = "Bearer " + token
req = urllib.request.Request(url, data=body, headers=headers)
ticket = json.load(urllib.request.urlopen(req))["htsget"]
if describe:
    body_urls = [u for u in ticket["urls"] if u["url"].startswith("http")]
    print(len(body_urls))
    sys.exit(0)
with open(args[1], "wb") as out:
    for u in ticket["urls"]:
        if u["url"].startswith("data:"):
            out.write(base64.b64decode(u["url"].split(",", 1)[1]))
        else:
            r = urllib.request.Request(u["url"], headers=u.get("headers", {}))
            out.write(urllib.request.urlopen(r).read())
