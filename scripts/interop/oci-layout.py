"""Writes a one-image OCI layout: the given gzipped tars as its layers (in order), a config naming
them, and the manifest tagged `v1` in index.json. Usage: oci-layout.py LAYER.tar.gz... OUT_DIR"""
import gzip
import hashlib
import json
import os
import sys

layer_paths, out = sys.argv[1:-1], sys.argv[-1]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)


def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


layers = []
for path in layer_paths:
    with open(path, "rb") as f:
        layers.append(f.read())
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
                                                   for layer in layers]}}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(json.dumps(config).encode())},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)} for layer in layers]}
described = put(json.dumps(manifest).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **described,
               "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
