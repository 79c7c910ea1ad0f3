"""Objects of a loopback S3 server, for workflows/snakemake/test.sh (boto3 from moto's venv).

  s3objects.py put BUCKET KEY FILE          upload a file (creating the bucket)
  s3objects.py keys BUCKET PREFIX           print the keys under PREFIX, one a line
  s3objects.py rm BUCKET KEY                delete an object
  s3objects.py get BUCKET KEY               print an object
  s3objects.py same BUCKET PREFIX_A PREFIX_B
      exit 0 when both prefixes hold the same object names with the same bytes, except
      _metadata.json, whose JSON must be equal once `created` is dropped; prints what it
      compared (objects, chunk objects, index entries)
"""

import json
import sys

import boto3


def client():
    # The endpoint and credentials come from the environment (AWS_ENDPOINT_URL etc.).
    return boto3.client("s3")


def keys(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
    return sorted(out)


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def same(s3, bucket, a, b):
    ka, kb = keys(s3, bucket, a), keys(s3, bucket, b)
    if ka != kb:
        print(f"object names differ: only in {a}: {sorted(set(ka) - set(kb))[:5]}, "
              f"only in {b}: {sorted(set(kb) - set(ka))[:5]}")
        return False
    for k in ka:
        x, y = body(s3, bucket, a + k), body(s3, bucket, b + k)
        if k == "_metadata.json":
            x, y = json.loads(x), json.loads(y)
            x.pop("created"), y.pop("created")
        if x != y:
            print(f"{k} differs between {a} and {b}")
            return False
    index = json.loads(body(s3, bucket, a + "_index/spatial.json"))
    entries = sum(len(r["chunks"]) for r in index["references"]) + len(index["unmapped"])
    chunks = sum(k.startswith("data/") for k in ka)
    print(f"{a} = {b}: {len(ka)} objects, {chunks} chunks, {entries} index entries")
    return chunks == entries and chunks > 0


def main():
    cmd, s3 = sys.argv[1], client()
    if cmd == "put":
        bucket, key, path = sys.argv[2:5]
        if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=bucket)
        s3.upload_file(path, bucket, key)
    elif cmd == "keys":
        print("\n".join(keys(s3, sys.argv[2], sys.argv[3])))
    elif cmd == "get":
        sys.stdout.buffer.write(body(s3, sys.argv[2], sys.argv[3]))
    elif cmd == "rm":
        s3.delete_object(Bucket=sys.argv[2], Key=sys.argv[3])
    elif cmd == "same":
        sys.exit(0 if same(s3, *sys.argv[2:5]) else 1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
