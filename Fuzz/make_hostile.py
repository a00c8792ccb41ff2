#!/usr/bin/env python3
"""Writes the hostile-input corpus Fuzz/hostile/<parser>/<name> (plain python3, no torch).

Every file must be REJECTED by its parser with a clear FormatError, nothing executed, memory and
time bounded (CkptReliabilityTests.HostileInputTests checks the expected error code of each;
`scripts/fuzz --replay` runs them through the fuzz harnesses under ASan). Hostile `.metadata`
files are built in the Swift tests from a real fixture (they need a valid DCP object graph).
Run from the repository root: python3 Fuzz/make_hostile.py
"""
import io, os, struct, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "hostile")


def put(parser, name, data):
    d = os.path.join(OUT, parser)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


# --- pickles: forbidden globals (protocol 0 GLOBAL and protocol 4 STACK_GLOBAL), all REDUCEd
for module, name in [("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "eval"),
                     ("builtins", "exec"), ("__builtin__", "eval"), ("subprocess", "Popen"),
                     ("subprocess", "check_output"), ("builtins", "__import__"), ("torch", "load")]:
    arg = b"touch /tmp/ckpt-hostile-pwned"
    put("pickle", f"global-{module}.{name}",
        b"c" + module.encode() + b"\n" + name.encode() + b"\n(S'" + arg + b"'\ntR.")
    put("pickle", f"stack-global-{module}.{name}",
        b"\x80\x04" + su(module) + su(name) + b"\x93" + su(arg.decode()) + b"\x85R.")
# INST and OBJ opcodes with a forbidden class
put("pickle", "inst-os-system", b"(X\x1d\x00\x00\x00touch /tmp/ckpt-hostile-pwnedios\nsystem\n.")
put("pickle", "obj-subprocess-popen", b"\x80\x02(csubprocess\nPopen\nS'id'\no.")
# A forbidden global hidden inside an allowed-looking structure (dict value, nested tuple).
put("pickle", "nested-forbidden", b"\x80\x02}(X\x01\x00\x00\x00a(cposix\nsystem\nX\x02\x00\x00\x00idtRtu.")
# Nested REDUCE chains: an allowed callable applied to its own result 10k deep (the Swift tests
# build 1M-deep variants in memory; the corpus stays small).
deep_reduce = b"\x80\x02" + b"ccollections\nOrderedDict\n" * 10000 + b")R" + b"\x85R" * 9999 + b"."
put("pickle", "reduce-chain-10k", deep_reduce)
# Deep nesting: 20k nested lists / MARKs / 1-tuples.
put("pickle", "deep-lists-20k", b"\x80\x02" + b"]" * 20000 + b"a" * 19999 + b".")
put("pickle", "deep-marks-20k", b"\x80\x02" + b"(" * 20000 + b".")
put("pickle", "deep-tuple1-20k", b"\x80\x02N" + b"\x85" * 20000 + b".")
# Memo bombs ("billion laughs"): each level is a list of 16 references to the previous one.
# (BINPUT keeps the value on the stack: POP it, except the last level.)
bomb = b"\x80\x02X\x04\x00\x00\x00lolzq\x000"
for level in range(1, 9):
    bomb += b"(" + (b"h" + bytes([level - 1])) * 16 + b"lq" + bytes([level]) + (b"0" if level < 8 else b"")
put("pickle", "memo-bomb-16^8", bomb + b".")
dict_bomb = b"\x80\x02}q\x000"
for level in range(1, 9):
    dict_bomb += (b"}(" + b"".join(b"K" + bytes([k]) + b"h" + bytes([level - 1]) for k in range(16)) + b"uq" + bytes([level])
                  + (b"0" if level < 8 else b""))
put("pickle", "memo-bomb-dicts", dict_bomb + b".")
# Self-referencing containers (cycles through the memo).
put("pickle", "cycle-list", b"\x80\x02]q\x00h\x00a.")
put("pickle", "cycle-dict", b"\x80\x02}q\x00K\x01h\x00s.")
# Huge declared lengths with no data behind them.
put("pickle", "binunicode8-2^62", b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"abc")
put("pickle", "binbytes8-2^63-1", b"\x80\x04\x8e" + struct.pack("<Q", (1 << 63) - 1) + b"abc")
put("pickle", "binbytes-4g", b"\x80\x03B" + struct.pack("<I", 0xFFFFFFFF) + b"abc")
put("pickle", "binunicode-4g", b"\x80\x02X" + struct.pack("<I", 0xFFFFFFFF) + b"abc")
put("pickle", "long4-2g", b"\x80\x02\x8b" + struct.pack("<i", 0x7FFFFFFF) + b"\x01")
put("pickle", "long4-negative", b"\x80\x02\x8b" + struct.pack("<i", -5) + b"\x01.")
put("pickle", "frame-2^63", b"\x80\x04\x95" + struct.pack("<Q", (1 << 63) - 1) + b"N.")
put("pickle", "bytearray8-2^62", b"\x80\x05\x96" + struct.pack("<Q", 1 << 62) + b"x")
put("pickle", "long-binget-missing", b"\x80\x02j" + struct.pack("<I", 0xFFFFFFF0) + b".")
put("pickle", "proto-99", b"\x80\x63N.")
put("pickle", "empty", b"")
put("pickle", "no-stop", b"\x80\x02N")

# --- zips: a minimal torch.save-like archive, then lies in its structures.
def archive():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/data/0", b"\x00" * 64)
        z.writestr("archive/version", b"3\n")
    return bytearray(buf.getvalue())


def eocd(b):
    return b.rfind(b"PK\x05\x06")


def central_entries(b):
    e = eocd(b)
    n = struct.unpack_from("<H", b, e + 10)[0]
    off = struct.unpack_from("<I", b, e + 16)[0]
    out = []
    for _ in range(n):
        out.append(off)
        nl, xl, cl = struct.unpack_from("<HHH", b, off + 28)
        off += 46 + nl + xl + cl
    return out


base = archive()
put("zip", "valid-baseline", bytes(base))
b = archive(); cd = central_entries(b)
struct.pack_into("<I", b, cd[2] + 42, 0x7FFFFFF0)                 # local header offset past the end
put("zip", "entry-offset-past-end", bytes(b))
b = archive(); cd = central_entries(b)
struct.pack_into("<I", b, cd[2] + 42, struct.unpack_from("<I", b, cd[0] + 42)[0])  # data/0 -> data.pkl's header
put("zip", "overlapping-entries", bytes(b))
b = archive(); cd = central_entries(b)
struct.pack_into("<I", b, cd[2] + 20, 0x7FFFFFFF)                 # compressed size lie
struct.pack_into("<I", b, cd[2] + 24, 0x7FFFFFFF)
put("zip", "entry-size-lie", bytes(b))
b = archive(); cd = central_entries(b)
struct.pack_into("<I", b, cd[2] + 20, 0xFFFFFFFF)                 # zip64 marker without zip64 extra
struct.pack_into("<I", b, cd[2] + 24, 0xFFFFFFFF)
struct.pack_into("<I", b, cd[2] + 42, 0xFFFFFFFF)
put("zip", "zip64-marker-no-extra", bytes(b))
b = archive(); e = eocd(b)
struct.pack_into("<HH", b, e + 8, 0xFFFF, 0xFFFF)                 # entry count lie (max)
put("zip", "entry-count-65535", bytes(b))
b = archive(); e = eocd(b)
struct.pack_into("<HH", b, e + 8, 0, 0)
put("zip", "entry-count-0", bytes(b))
b = archive(); e = eocd(b)
struct.pack_into("<I", b, e + 16, e)                              # central directory = the EOCD itself
put("zip", "cd-points-at-eocd", bytes(b))
b = archive(); e = eocd(b)
struct.pack_into("<I", b, e + 12, 0xFFFFFFF0)                     # central directory size lie
put("zip", "cd-size-huge", bytes(b))
b = archive(); e = eocd(b)
struct.pack_into("<I", b, e + 16, 0xFFFFFFF0)
put("zip", "cd-offset-past-end", bytes(b))
# zip64 EOCD locator that points at itself, and a zip64 EOCD claiming 2^63 entries.
b = archive(); e = eocd(b)
struct.pack_into("<HHII", b, e + 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
loc_at = e
locator = b"PK\x06\x07" + struct.pack("<IQI", 0, loc_at, 1)
put("zip", "zip64-locator-loop", bytes(b[:e] + locator + b[e:]))
b = archive(); e = eocd(b)
cd_off = struct.unpack_from("<I", b, e + 16)[0]
struct.pack_into("<HHII", b, e + 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
z64 = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, 1 << 63, 1 << 63, 1 << 62, cd_off)
locator = b"PK\x06\x07" + struct.pack("<IQI", 0, e, 1)
put("zip", "zip64-count-2^63", bytes(b[:e] + z64 + locator + b[e:]))
# Central directory entries that loop: the EOCD says 1000 entries and the CD is repeated.
b = archive(); e = eocd(b)
cd_off = struct.unpack_from("<I", b, e + 16)[0]
struct.pack_into("<HH", b, e + 8, 1000, 1000)
put("zip", "cd-count-1000", bytes(b))
# Name length running past the end; a local header whose name differs from the central one.
b = archive(); cd = central_entries(b)
struct.pack_into("<H", b, cd[0] + 28, 0xFFFF)
put("zip", "name-length-past-end", bytes(b))
b = archive()
i = b.find(b"archive/data/0")
b[i:i + 14] = b"archive/data/9"
put("zip", "local-name-differs", bytes(b))
put("zip", "eocd-only", b"PK\x05\x06" + b"\x00" * 18)
put("zip", "truncated-eocd", bytes(base[:-5]))

# torch.save files and records get the same zip lies (their parsers read zips first).
for name in os.listdir(os.path.join(OUT, "zip")):
    data = open(os.path.join(OUT, "zip", name), "rb").read()
    put("torchsave", name, data)
    put("torchrecord", name, data)
# A record whose data.pkl references a forbidden global.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    z.writestr("archive/byteorder", b"little")
    z.writestr("archive/version", b"3\n")
for parser in ("torchsave", "torchrecord", "byteio"):
    put(parser, "data-pkl-posix-system", buf.getvalue())

# --- safetensors headers
def st(header, data=b""):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data
put("safetensors", "header-length-2^63", struct.pack("<Q", (1 << 63) - 1) + b"{}")
put("safetensors", "header-length-past-end", struct.pack("<Q", 1000) + b"{}")
put("safetensors", "offsets-past-data", st('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1000000]}}', b"\x00" * 16))
put("safetensors", "offsets-reversed", st('{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}', b"\x00" * 16))
put("safetensors", "offsets-negative", st('{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}', b"\x00" * 16))
put("safetensors", "shape-overflow", st('{"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}}', b"\x00" * 16))
put("safetensors", "shape-mismatch", st('{"w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}', b"\x00" * 16))
put("safetensors", "overlapping-tensors", st('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', b"\x00" * 24))
put("safetensors", "deep-json", st("[" * 20000 + "]" * 20000))
put("safetensors", "huge-number", st('{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', b"\x00" * 4))
put("safetensors", "bad-utf8", st('{"w\xff":1}'.encode("latin-1").decode("latin-1")))
put("safetensors", "duplicate-keys", st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\x00" * 4))
put("safetensors", "unknown-dtype", st('{"w":{"dtype":"F1024","shape":[1],"data_offsets":[0,4]}}', b"\x00" * 4))

# --- BYTE_IO records: pickles of forbidden values wrapped as torch.save records.
for name in ("global-posix.system", "stack-global-builtins.eval", "memo-bomb-16^8", "deep-lists-20k"):
    pk = open(os.path.join(OUT, "pickle", name), "rb").read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pk)
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/version", b"3\n")
    put("byteio", "record-" + name, buf.getvalue())
    put("torchsave", "record-" + name, buf.getvalue())

# .metadata as a pickle: forbidden globals and bombs (structure-level lies are built in Swift).
for name in ("global-posix.system", "stack-global-subprocess.Popen", "memo-bomb-16^8", "memo-bomb-dicts",
             "deep-lists-20k", "binunicode8-2^62", "cycle-list"):
    put("metadata", name, open(os.path.join(OUT, "pickle", name), "rb").read())

total = 0
for root, _, files in os.walk(OUT):
    for f in files:
        total += os.path.getsize(os.path.join(root, f))
print("hostile corpus:", sum(len(fs) for _, _, fs in os.walk(OUT)), "files,", total, "bytes")
