#!/usr/bin/env python3
"""Round trips between ckpt and real PyTorch (torch 2.15, CPU, gloo ranks).

Run through `scripts/interop`, which prepares the virtual environment and builds the Swift side.
Every comparison is bit-exact (tensors compared as raw bytes, non-tensor values with ==).

Cases
  torch-writes:   PyTorch `dcp.save` from 4 gloo ranks (row, column, replicated, uneven, empty,
                  0-d, every dtype; default layout, thread_count=2, and the safetensors variant);
                  ckpt reads every tensor and value and writes them to a torch.save file and a
                  safetensors file, which torch.load(weights_only=True) / safetensors load.
  ckpt-writes:    ckpt writes a DCP checkpoint from a layout of N ranks; PyTorch `dcp.load` reads it
                  back on 1, 2 and 3 ranks (Shard(0) and Shard(1) targets) and compares.
Each case prints `PASS name` or `FAIL name: why`; the last line is `N passed, N failed`.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard, distribute_tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_common import DTYPES, bits_equal, deep_diff, free_port, make_tensor, nest  # noqa: E402

SWIFT_TOOL = None  # path of the ckpt-interop executable, set in main()
RESULTS = []

def reference_state(seed=1234):
    """Full (unsharded) tensors, each with the placement it is saved with, plus plain values."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    # (fqn, dtype, shape, placement)
    specs = [
        ("model.embed.weight", torch.float32, (50, 16), "shard0"),      # uneven over 4 ranks
        ("model.layers.0.attn.qkv.weight", torch.bfloat16, (48, 16), "shard0"),
        ("model.layers.0.attn.out.weight", torch.float16, (16, 36), "shard1"),  # column shards
        ("model.layers.0.mlp.fc1.weight", torch.float32, (64, 16), "shard0"),
        ("model.layers.0.mlp.fc1.bias", torch.float64, (64,), "shard0"),
        ("model.norm.weight", torch.float32, (16,), "replicate"),
        ("model.tiny", torch.float32, (2, 5), "shard0"),                # empty shards on ranks 2,3
        ("model.empty", torch.float32, (0, 4), "shard0"),               # globally empty
        ("model.scalar", torch.float32, (), "replicate"),               # 0-d
        ("optim.step", torch.int64, (), "plain"),                       # plain tensor, replicated
    ]
    for i, dt in enumerate(DTYPES):
        specs.append((f"dtypes.{str(dt).replace('torch.', '')}", dt, (8, 3 + i), "shard0"))
    for fqn, dtype, shape, placement in specs:
        tensors[fqn] = (make_tensor(gen, dtype, shape), placement)
    values = {
        "optim.lr": 0.001,
        "optim.betas": [0.9, 0.999],
        "optim.name": "adamw",
        "meta.epoch": 7,
        "meta.big": 2**40 + 3,
        "meta.neg": -5,
        "meta.flag": True,
        "meta.none": None,
        "meta.nested": {"a": 1, "b": [1, 2, 3], "c": "x"},
    }
    return tensors, values


def flatten_dicts(d, prefix=""):
    """Nested dicts -> {'a.b.c': leaf} (lists and tuples are leaves), as DCP names them."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_dicts(v, key + "."))
        else:
            out[key] = v
    return out


def record(name, ok, why=""):
    RESULTS.append((name, ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {why}"), flush=True)


def run_tool(*args):
    cmd = [SWIFT_TOOL, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout


# ------------------------------------------------------------------------------------------------
# PyTorch writes, ckpt reads

def _torch_save_worker(rank, world, out_dir, port, mode):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        tensors, values = reference_state()
        sd = {}
        for fqn, (t, placement) in tensors.items():
            if placement == "shard0":
                sd[fqn] = distribute_tensor(t, mesh, [Shard(0)], src_data_rank=None)
            elif placement == "shard1":
                sd[fqn] = distribute_tensor(t, mesh, [Shard(1)], src_data_rank=None)
            elif placement == "replicate":
                sd[fqn] = distribute_tensor(t, mesh, [Replicate()], src_data_rank=None)
            else:
                sd[fqn] = t.clone()
        sd.update(values)
        state = nest(sd)
        if mode == "threads2":
            writer = FileSystemWriter(out_dir, thread_count=2)
        elif mode == "safetensors":
            from torch.distributed.checkpoint.filesystem import SerializationFormat
            writer = FileSystemWriter(out_dir, serialization_format=SerializationFormat.SAFETENSORS)
        else:
            writer = FileSystemWriter(out_dir)
        dcp.save(state, storage_writer=writer)
    finally:
        dist.destroy_process_group()


def case_torch_writes(work, mode):
    name = f"torch-writes/{mode}: ckpt reads a 4-rank PyTorch checkpoint"
    try:
        d = os.path.join(work, f"torch_{mode}")
        mp.spawn(_torch_save_worker, args=(4, d, free_port(), mode), nprocs=4, join=True)
        tensors, values = reference_state()
        pt = os.path.join(work, f"torch_{mode}.pt")
        st = os.path.join(work, f"torch_{mode}.safetensors")
        run_tool("read", d, "--out", pt)
        run_tool("read", d, "--out", st)
        got = torch.load(pt, weights_only=True)
        flat = flatten_dicts(got)
        problems = []
        for fqn, (t, _) in tensors.items():
            if not bits_equal(flat.get(fqn), t):
                problems.append(f"tensor {fqn} differs in {os.path.basename(pt)}")
        for fqn, v in flatten_dicts(values).items():
            if flat.get(fqn) != v:
                problems.append(f"value {fqn}: {flat.get(fqn)!r} != {v!r}")
        if mode != "safetensors":
            # PyTorch's own consolidation of the same checkpoint must be identical to ours.
            from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
            theirs_path = os.path.join(work, f"torch_{mode}_dcp_to_torch_save.pt")
            dcp_to_torch_save(d, theirs_path)
            theirs = torch.load(theirs_path, weights_only=False)
            problems += [f"vs dcp_to_torch_save: {p}" for p in deep_diff(got, theirs, ordered=True)]
        from safetensors.torch import load_file
        got_st = load_file(st)
        for fqn, (t, _) in tensors.items():
            if t.dtype.is_complex:
                continue  # safetensors has no complex dtype in torch's mapping
            if not bits_equal(got_st.get(fqn), t):
                problems.append(f"tensor {fqn} differs in {os.path.basename(st)}")
        record(name, not problems, "; ".join(problems[:5]))
    except Exception as e:  # noqa: BLE001 - report every failure as a failed case
        traceback.print_exc()
        record(name, False, str(e))
        return
    # ckpt reshards PyTorch's checkpoint: loads it on other world sizes, row and column slices.
    for ranks, axis in ((1, 0), (3, 0), (3, 1), (8, 0)):
        name = f"torch-writes/{mode}: ckpt loads it on {ranks} ranks (axis {axis})"
        try:
            st = os.path.join(work, f"torch_{mode}_{ranks}_{axis}.safetensors")
            run_tool("load", d, ranks, axis, st)
            from safetensors.torch import load_file
            got = load_file(st)
            problems = [f"tensor {fqn} differs" for fqn, (t, _) in tensors.items()
                        if not t.dtype.is_complex and not bits_equal(got.get(fqn), t)]
            record(name, not problems, "; ".join(problems[:5]))
        except Exception as e:  # noqa: BLE001
            record(name, False, str(e))


# ------------------------------------------------------------------------------------------------
# ckpt writes, PyTorch reads on other world sizes

def layout_for(tensors, world):
    """A saved layout over `world` ranks: row shards (uneven/empty included), column shards for 2-D
    tensors whose name says so, and replicated small tensors (every rank lists the chunk)."""
    layout = {"world_size": world, "tensors": {}}
    for fqn, (t, placement) in tensors.items():
        shape = list(t.shape)
        chunks = []
        if len(shape) == 0 or placement in ("replicate", "plain"):
            for r in range(world):
                chunks.append({"rank": r, "offsets": [0] * len(shape), "sizes": shape})
        else:
            dim = 1 if placement == "shard1" and len(shape) > 1 else 0
            n = shape[dim]
            step = -(-n // world) if n else 0  # torch.chunk-style split
            for r in range(world):
                start = min(r * step, n)
                end = min(start + step, n)
                offs = [0] * len(shape)
                sizes = list(shape)
                offs[dim] = start
                sizes[dim] = end - start
                chunks.append({"rank": r, "offsets": offs, "sizes": sizes})
        layout["tensors"][fqn] = chunks
    return layout


def _torch_load_worker(rank, world, ckpt_dir, port, ref_path, place_dim, result_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    problems = []
    try:
        mesh = init_device_mesh("cpu", (world,))
        ref = torch.load(ref_path, weights_only=True)
        md = FileSystemReader(ckpt_dir).read_metadata()
        sd = {}
        placements = {}
        for fqn, m in md.state_dict_metadata.items():
            if isinstance(m, TensorStorageMetadata):
                z = torch.zeros(m.size, dtype=m.properties.dtype)
                dim = place_dim if len(m.size) > place_dim else 0
                placements[fqn] = [Shard(dim)]
                sd[fqn] = (distribute_tensor(z, mesh, [Shard(dim)], src_data_rank=None)
                           if len(m.size) else z)
            else:
                sd[fqn] = None
        dcp.load(sd, checkpoint_id=ckpt_dir)
        for fqn, v in sd.items():
            want = ref.get(fqn)
            if hasattr(v, "to_local"):
                # gloo cannot all-gather every dtype (fp8, complex): compare this rank's shard with
                # the same shard cut from the reference, no collective needed.
                full = v.to_local()
                want = distribute_tensor(want, mesh, placements[fqn], src_data_rank=None).to_local()
            else:
                full = v
            if isinstance(want, torch.Tensor):
                if not bits_equal(full, want):
                    problems.append(f"rank {rank}: tensor {fqn} differs")
            elif full != want:
                problems.append(f"rank {rank}: value {fqn}: {full!r} != {want!r}")
        missing = set(ref) - set(sd)
        if missing:
            problems.append(f"rank {rank}: missing {sorted(missing)[:5]}")
    except Exception as e:  # noqa: BLE001
        problems.append(f"rank {rank}: {type(e).__name__}: {e}")
    finally:
        dist.destroy_process_group()
    with open(f"{result_path}.{rank}", "w") as f:
        json.dump(problems, f)


def case_ckpt_writes(work, saved_world):
    tensors, values = reference_state(seed=99 + saved_world)
    ref = {fqn: t for fqn, (t, _) in tensors.items()}
    ref.update(values)
    src = os.path.join(work, f"src_{saved_world}.pt")
    torch.save(ref, src)
    lay = os.path.join(work, f"layout_{saved_world}.json")
    with open(lay, "w") as f:
        json.dump(layout_for(tensors, saved_world), f)
    d = os.path.join(work, f"ckpt_{saved_world}")
    try:
        run_tool("write-dcp", src, lay, d)
    except Exception as e:  # noqa: BLE001
        record(f"ckpt-writes/{saved_world} ranks: write", False, str(e))
        return
    for world in (1, 2, 3):
        for place_dim in (0, 1):
            name = f"ckpt-writes/{saved_world}->{world} ranks, Shard({place_dim}): PyTorch dcp.load"
            res = os.path.join(work, f"res_{saved_world}_{world}_{place_dim}")
            try:
                mp.spawn(_torch_load_worker,
                         args=(world, d, free_port(), src, place_dim, res), nprocs=world, join=True)
                problems = []
                for r in range(world):
                    with open(f"{res}.{r}") as f:
                        problems += json.load(f)
                record(name, not problems, "; ".join(problems[:5]))
            except Exception as e:  # noqa: BLE001
                record(name, False, str(e))


def main():
    global SWIFT_TOOL
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="path of the ckpt-interop executable")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    SWIFT_TOOL = os.path.abspath(args.tool)
    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix="ckpt-interop-")
    try:
        for mode in ("default", "threads2", "safetensors"):
            case_torch_writes(work, mode)
        for saved_world in (1, 4):
            case_ckpt_writes(work, saved_world)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(1 for _, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not RESULTS else 0)


if __name__ == "__main__":
    main()
