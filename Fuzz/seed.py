#!/usr/bin/env python3
"""Seeds Fuzz/corpus/<parser>/ from the real PyTorch fixtures (Tests/Fixtures + manifest.json).

Plain python3 (no torch needed). Run from the repository root: python3 Fuzz/seed.py
Record slices are cut at the offsets the manifest gives; data.pkl members are pulled out of the
zip records for the pickle corpus. Duplicate inputs are dropped (named by content hash).
"""
import hashlib, io, json, os, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(ROOT, "Fuzz", "corpus")
PER_FIXTURE = 6  # record slices per fixture and kind: keeps the corpus small


def put(parser, data):
    d = os.path.join(OUT, parser)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pickles_of_zip(blob):
    try:
        z = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile:
        return []
    return [z.read(n) for n in z.namelist() if n.endswith(".pkl")]


manifest = json.load(open(os.path.join(FIX, "manifest.json")))
for fx in manifest["fixtures"]:
    kind, name = fx["kind"], fx["name"]
    if kind in ("dcp", "lightning_sharded"):
        md = read(os.path.join(FIX, name, ".metadata"))
        put("metadata", md)
        put("pickle", md)
        st = fx.get("serialization_format") == "safetensors"
        tensors = [c for t in fx["tensors"] for c in t["chunks"]][:PER_FIXTURE]
        for c in tensors:
            blob = read(os.path.join(FIX, name, c["file"]))
            if st:
                put("safetensors", blob[c["offset"]:])
            else:
                rec = blob[c["offset"]:c["offset"] + c["length"]]
                put("torchrecord", rec)
                put("zip", rec)
                for p in pickles_of_zip(rec)[:1]:
                    put("pickle", p)
        for o in fx.get("objects", [])[:PER_FIXTURE]:
            blob = read(os.path.join(FIX, name, o["file"]))
            rec = blob[o["offset"]:o["offset"] + o["length"]]
            put("byteio", rec)
            for p in pickles_of_zip(rec)[:1]:
                put("pickle", p)
        if kind == "lightning_sharded":
            meta = read(os.path.join(FIX, name, "meta.pt"))
            put("torchsave", meta)
            put("zip", meta)
            for p in pickles_of_zip(meta):
                put("pickle", p)
    elif kind == "torch_save":
        blob = read(os.path.join(FIX, name))
        put("torchsave", blob)
        put("zip", blob)
        for p in pickles_of_zip(blob):
            put("pickle", p)
    elif kind == "safetensors":
        put("safetensors", read(os.path.join(FIX, name)))
blob = read(os.path.join(FIX, "g_lightning_consolidated.pt"))
put("torchsave", blob)
for p in pickles_of_zip(blob):
    put("pickle", p)
for p in sorted(os.listdir(OUT)):
    files = os.listdir(os.path.join(OUT, p))
    print(p, len(files), sum(os.path.getsize(os.path.join(OUT, p, f)) for f in files))
