#!/usr/bin/env python3
"""The `ckpt` command line against real PyTorch (torch 2.15, CPU, gloo ranks).

Run as `venv/bin/python scripts/interop_cli.py --ckpt PATH_TO_ckpt_BINARY`.
Every comparison is bit-exact (tensors compared as raw bytes, other values with ==).

Cases
  consolidate/<variant>:  PyTorch `dcp.save` from 4 gloo ranks (row, column, replicated, uneven,
                          empty, 0-d shards, every dtype; default layout, thread_count=2 and the
                          safetensors variant); `ckpt verify` passes, `ckpt inspect --json` sees 4
                          ranks, `ckpt consolidate` output loads with torch.load(weights_only=True)
                          and equals PyTorch's own `dcp_to_torch_save` output tensor for tensor, value
                          for value; `--format safetensors` output loads with safetensors.
  lightning:              Tests/Fixtures/g_lightning_fsdp_sharded consolidated by ckpt equals
                          Tests/Fixtures/g_lightning_consolidated.pt (Lightning's own output).
  convert:                a nested torch.save file converted by `ckpt convert --ranks 3` loads with
                          PyTorch's `dcp.load` (single process) and on 2 gloo ranks into Shard(0)
                          DTensors; same fqns as PyTorch's `torch_save_to_dcp`.
  reshard:                the 4-rank PyTorch checkpoint resharded by `ckpt reshard --ranks 3` (and
                          `--like` a 2-rank checkpoint) loads on 3 (2) gloo ranks with `dcp.load`.
Each case prints `PASS name` or `FAIL name: why`; the last line is `interop-cli: N passed, N failed`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.checkpoint import FileSystemWriter
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save, torch_save_to_dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard, distribute_tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_common import DTYPES, bits_equal, deep_diff, free_port, make_tensor, nest  # noqa: E402

CKPT = None
RESULTS = []
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def reference_state(seed=4321):
    """Full tensors with the placement they are saved with, plus plain values."""
    gen = torch.Generator().manual_seed(seed)
    specs = [
        ("model.embed.weight", torch.float32, (50, 16), "shard0"),
        ("model.attn.qkv.weight", torch.bfloat16, (48, 16), "shard0"),
        ("model.attn.out.weight", torch.float16, (16, 36), "shard1"),
        ("model.mlp.bias", torch.float64, (64,), "shard0"),
        ("model.norm.weight", torch.float32, (16,), "replicate"),
        ("model.tiny", torch.float32, (2, 5), "shard0"),
        ("model.empty", torch.float32, (0, 4), "shard0"),
        ("model.scalar", torch.float32, (), "replicate"),
        ("optim.step", torch.int64, (), "plain"),
    ]
    for i, dt in enumerate(DTYPES):
        specs.append((f"dtypes.{str(dt).replace('torch.', '')}", dt, (9, 3 + i), "shard0"))
    tensors = {fqn: (make_tensor(gen, dt, shape), pl) for fqn, dt, shape, pl in specs}
    values = {
        "optim.lr": 0.001,
        "optim.betas": (0.9, 0.999),
        "optim.name": "adamw",
        "meta.epoch": 7,
        "meta.flag": True,
        "meta.none": None,
        "meta.nested": {"a": 1, "b": [1, 2, 3]},
    }
    return tensors, values


def record(name, ok, why=""):
    RESULTS.append((name, ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {why}"), flush=True)


def ckpt(*args, expect=0):
    cmd = [CKPT, *map(str, args), "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {(p.stderr + p.stdout).strip()[-1500:]}")
    return p.stdout


def init(rank, world, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    return init_device_mesh("cpu", (world,))


def place(t, mesh, placement):
    if placement == "shard0":
        return distribute_tensor(t, mesh, [Shard(0)], src_data_rank=None)
    if placement == "shard1":
        return distribute_tensor(t, mesh, [Shard(1)], src_data_rank=None)
    if placement == "replicate":
        return distribute_tensor(t, mesh, [Replicate()], src_data_rank=None)
    return t.clone()


# ------------------------------------------------------------------------------------------------
# PyTorch writes, ckpt consolidates

def _save_worker(rank, world, out_dir, port, mode):
    mesh = init(rank, world, port)
    try:
        tensors, values = reference_state()
        sd = {fqn: place(t, mesh, pl) for fqn, (t, pl) in tensors.items()}
        sd.update(values)
        if mode == "threads2":
            writer = FileSystemWriter(out_dir, thread_count=2)
        elif mode == "safetensors":
            from torch.distributed.checkpoint.filesystem import SerializationFormat
            writer = FileSystemWriter(out_dir, serialization_format=SerializationFormat.SAFETENSORS)
        else:
            writer = FileSystemWriter(out_dir)
        dcp.save(nest(sd), storage_writer=writer)
    finally:
        dist.destroy_process_group()


def torch_checkpoint(work, mode, world=4):
    d = os.path.join(work, f"torch_{mode}_{world}")
    if not os.path.exists(os.path.join(d, ".metadata")):
        mp.spawn(_save_worker, args=(world, d, free_port(), mode), nprocs=world, join=True)
    return d


def case_consolidate(work, mode):
    name = f"consolidate/{mode}: 4-rank PyTorch checkpoint -> torch.load + safetensors, equal to dcp_to_torch_save"
    try:
        d = torch_checkpoint(work, mode)
        problems = []
        ckpt("verify", d)
        info = json.loads(ckpt("inspect", d, "--json"))
        if info["worldSize"] != 4:
            problems.append(f"inspect: world size {info['worldSize']}")
        want_variant = "safetensors" if mode == "safetensors" else "torch_save"
        if info["formatVariant"] != want_variant:
            problems.append(f"inspect: format {info['formatVariant']}")
        if mode == "safetensors":
            # dcp_to_torch_save cannot read PyTorch's own safetensors variant (it torch.loads the
            # blobs): compare with the state that was saved instead.
            tensors, values = reference_state()
            flat = {fqn: t for fqn, (t, _) in tensors.items()}
            flat.update(values)
            ref = nest(flat)
        else:
            ref_path = os.path.join(work, f"ref_{mode}.pt")
            dcp_to_torch_save(d, ref_path)
            ref = torch.load(ref_path, weights_only=True)
        ours_path = d + ".consolidated"
        ckpt("consolidate", d)  # default output name
        ours = torch.load(ours_path, weights_only=True)
        problems += deep_diff(ours, ref)
        st = os.path.join(work, f"ours_{mode}.safetensors")
        ckpt("consolidate", d, "--format", "safetensors", "--output", st)
        from safetensors.torch import load_file
        got = load_file(st)
        tensors, _ = reference_state()
        for fqn, (t, _) in tensors.items():
            if not bits_equal(got.get(fqn), t):
                problems.append(f"safetensors: {fqn} differs")
        record(name, not problems, "; ".join(problems[:6]))
    except Exception as e:  # noqa: BLE001 - every failure is a failed case
        traceback.print_exc()
        record(name, False, str(e))


def case_lightning(work):
    name = "lightning: g_lightning_fsdp_sharded consolidated by ckpt == Lightning's consolidated checkpoint"
    try:
        src = os.path.join(REPO, "Tests", "Fixtures", "g_lightning_fsdp_sharded")
        out = os.path.join(work, "lightning.consolidated")
        ckpt("consolidate", src, "--output", out)
        ours = torch.load(out, weights_only=True)
        ref = torch.load(os.path.join(REPO, "Tests", "Fixtures", "g_lightning_consolidated.pt"), weights_only=True)
        problems = deep_diff(ours, ref)
        record(name, not problems, "; ".join(problems[:6]))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        record(name, False, str(e))


# ------------------------------------------------------------------------------------------------
# ckpt writes (convert, reshard), PyTorch loads

def convert_source():
    gen = torch.Generator().manual_seed(99)
    return {
        "model": {
            "embed.weight": make_tensor(gen, torch.float32, (37, 8)),
            "layers": [
                {"w": make_tensor(gen, torch.bfloat16, (10, 4)), "b": make_tensor(gen, torch.float16, (10,))},
                {"w": make_tensor(gen, torch.float8_e4m3fn, (10, 4)), "b": make_tensor(gen, torch.complex64, (3,))},
            ],
            "scale": make_tensor(gen, torch.float64, ()),
            "none_rows": make_tensor(gen, torch.float32, (0, 3)),
        },
        "optim": {"lr": 0.01, "betas": (0.9, 0.999), "groups": [1, 2, 3], "name": "sgd"},
        "step": 1234,
    }


def zeros_like_tree(x):
    if isinstance(x, torch.Tensor):
        return torch.zeros_like(x)
    if isinstance(x, dict):
        return {k: zeros_like_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [zeros_like_tree(v) for v in x]
    return None  # a placeholder: dcp.load replaces non-tensor values


def shard_tree(x, mesh):
    if isinstance(x, torch.Tensor):
        if x.dim() == 0:
            return distribute_tensor(torch.zeros_like(x), mesh, [Replicate()], src_data_rank=None)
        return distribute_tensor(torch.zeros_like(x), mesh, [Shard(0)], src_data_rank=None)
    if isinstance(x, dict):
        return {k: shard_tree(v, mesh) for k, v in x.items()}
    if isinstance(x, list):
        return [shard_tree(v, mesh) for v in x]
    return zeros_like_tree(x)


def local_diff(loaded, ref, mesh, path, out):
    """Compares loaded DTensors' local shards with the reference's (no collectives)."""
    if isinstance(ref, torch.Tensor):
        placement = [Replicate()] if ref.dim() == 0 else [Shard(0)]
        want = distribute_tensor(ref, mesh, placement, src_data_rank=None).to_local()
        got = loaded.to_local() if hasattr(loaded, "to_local") else loaded
        if not bits_equal(got, want):
            out.append(f"{path}: local shard differs")
    elif isinstance(ref, dict):
        for k in ref:
            local_diff(loaded[k], ref[k], mesh, f"{path}.{k}", out)
    elif isinstance(ref, list):
        for i, (a, b) in enumerate(zip(loaded, ref)):
            local_diff(a, b, mesh, f"{path}.{i}", out)
    elif loaded != ref:
        out.append(f"{path}: {loaded!r} != {ref!r}")


def _load_worker(rank, world, ckpt_dir, port, reference_pt, result_dir):
    mesh = init(rank, world, port)
    problems = []
    try:
        ref = torch.load(reference_pt, weights_only=True)
        state = shard_tree(ref, mesh)
        dcp.load(state, checkpoint_id=ckpt_dir)
        local_diff(state, ref, mesh, "", problems)
    except Exception as e:  # noqa: BLE001
        problems.append(f"rank {rank}: {e}")
    finally:
        with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as f:
            json.dump(problems, f)
        dist.destroy_process_group()


def load_on_ranks(ckpt_dir, reference_pt, world, work):
    result_dir = tempfile.mkdtemp(dir=work)
    mp.spawn(_load_worker, args=(world, ckpt_dir, free_port(), reference_pt, result_dir), nprocs=world, join=True)
    problems = []
    for r in range(world):
        with open(os.path.join(result_dir, f"rank{r}.json")) as f:
            problems += json.load(f)
    return problems


def case_convert(work):
    name = "convert: nested torch.save file -> ckpt convert --ranks 3 -> dcp.load (1 process and 2 gloo ranks)"
    try:
        src = convert_source()
        pt = os.path.join(work, "convert_src.pt")
        torch.save(src, pt)
        out = os.path.join(work, "converted")
        ckpt("convert", pt, out, "--ranks", "3")
        ckpt("verify", out)
        problems = []
        # Single process (no process group): plain tensors.
        state = zeros_like_tree(src)
        dcp.load(state, checkpoint_id=out)
        problems += deep_diff(state, src)
        # Same fqns as PyTorch's own torch_save_to_dcp.
        theirs = os.path.join(work, "converted_by_torch")
        torch_save_to_dcp(pt, theirs)
        a = dcp.FileSystemReader(out).read_metadata()
        b = dcp.FileSystemReader(theirs).read_metadata()
        if set(a.state_dict_metadata) != set(b.state_dict_metadata):
            problems.append(f"fqns differ from torch_save_to_dcp: {sorted(set(a.state_dict_metadata) ^ set(b.state_dict_metadata))[:6]}")
        if a.planner_data != b.planner_data:
            problems.append("planner_data differs from torch_save_to_dcp")
        info = json.loads(ckpt("inspect", out, "--json"))
        if info["worldSize"] != 3:
            problems.append(f"inspect: world size {info['worldSize']}")
        problems += load_on_ranks(out, pt, 2, work)
        record(name, not problems, "; ".join(problems[:6]))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        record(name, False, str(e))


def case_reshard(work, like):
    label = "--like a 2-rank checkpoint" if like else "--ranks 3"
    name = f"reshard: 4-rank PyTorch checkpoint -> ckpt reshard {label} -> dcp.load on {2 if like else 3} gloo ranks"
    try:
        d = torch_checkpoint(work, "default")
        out = os.path.join(work, "resharded_like" if like else "resharded3")
        if like:
            template = torch_checkpoint(work, "default", world=2)
            ckpt("reshard", d, out, "--like", template)
            world = 2
        else:
            ckpt("reshard", d, "--ranks", "3", out)
            world = 3
        ckpt("verify", out)
        problems = []
        info = json.loads(ckpt("inspect", out, "--json"))
        if info["worldSize"] != world:
            problems.append(f"inspect: world size {info['worldSize']}")
        # Reference: the full state as PyTorch consolidates the original.
        ref_pt = os.path.join(work, "reshard_ref.pt")
        if not os.path.exists(ref_pt):
            dcp_to_torch_save(d, ref_pt)
        problems += load_on_ranks(out, ref_pt, world, work)
        if like:
            a = dcp.FileSystemReader(out).read_metadata()
            b = dcp.FileSystemReader(template).read_metadata()
            for fqn, md in b.state_dict_metadata.items():
                if hasattr(md, "chunks"):
                    ca = sorted((tuple(c.offsets), tuple(c.sizes)) for c in a.state_dict_metadata[fqn].chunks)
                    cb = sorted((tuple(c.offsets), tuple(c.sizes)) for c in md.chunks)
                    if ca != cb:
                        problems.append(f"{fqn}: chunks differ from the template")
        record(name, not problems, "; ".join(problems[:6]))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        record(name, False, str(e))


def case_failures(work):
    name = "failures: missing folder, incomplete checkpoint, existing output -> one-line error, exit 1, nothing written"
    try:
        problems = []
        for args in (["consolidate", os.path.join(work, "absent")],
                     ["reshard", os.path.join(work, "absent"), "--ranks", "2", os.path.join(work, "absent_out")],
                     ["convert", os.path.join(work, "absent.pt"), os.path.join(work, "absent_out2")]):
            p = subprocess.run([CKPT, *args], capture_output=True, text=True)
            lines = p.stderr.strip().splitlines()
            if p.returncode != 1 or len(lines) != 1 or not lines[0].startswith("ckpt: error:"):
                problems.append(f"{args[0]}: exit {p.returncode}, stderr {p.stderr!r}")
        incomplete = os.path.join(work, "incomplete")
        os.makedirs(incomplete, exist_ok=True)
        p = subprocess.run([CKPT, "consolidate", incomplete], capture_output=True, text=True)
        if p.returncode != 1 or ".metadata" not in p.stderr or os.path.exists(incomplete + ".consolidated"):
            problems.append(f"incomplete: exit {p.returncode}, {p.stderr.strip()}")
        left = [n for n in os.listdir(work) if "ckpt-tmp" in n or n.startswith("absent")]
        if left:
            problems.append(f"left behind: {left}")
        record(name, not problems, "; ".join(problems))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        record(name, False, str(e))


def main():
    global CKPT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="path of the ckpt executable")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    CKPT = os.path.abspath(args.ckpt)
    work = tempfile.mkdtemp(prefix="ckpt-interop-cli-")
    try:
        for mode in ("default", "threads2", "safetensors"):
            case_consolidate(work, mode)
        case_lightning(work)
        case_convert(work)
        case_reshard(work, like=False)
        case_reshard(work, like=True)
        case_failures(work)
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", work])
    passed = sum(1 for _, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"interop-cli: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
