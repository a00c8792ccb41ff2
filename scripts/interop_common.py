"""Helpers shared by scripts/interop.py and scripts/interop_cli.py (real-PyTorch round trips)."""

import torch


DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
    torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.float8_e4m3fn,
    torch.float8_e5m2,
]


def make_tensor(gen, dtype, shape):
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).to(torch.bool)
    if dtype in (torch.int64, torch.int32, torch.int16, torch.int8):
        info = torch.iinfo(dtype)
        return torch.randint(max(info.min, -(2**31)), min(info.max, 2**31 - 1), shape,
                             generator=gen, dtype=torch.int64).to(dtype)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.int64).to(dtype)
    if dtype.is_complex:
        return torch.randn(shape, generator=gen, dtype=dtype)
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)


def nest(flat):
    """fqn 'a.b.c' -> {'a': {'b': {'c': v}}}, splitting only on the first dot (two levels)."""
    out = {}
    for fqn, v in flat.items():
        top, _, rest = fqn.partition(".")
        out.setdefault(top, {})[rest] = v
    return out


def bits_equal(a, b):
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    if a.numel() == 0:
        return True
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8),
                       b.contiguous().reshape(-1).view(torch.uint8))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_diff(a, b, path="", out=None, skip_complex=False, ordered=False):
    """Differences between two nested values (tensors bit for bit; dict key order too when
    `ordered`)."""
    out = [] if out is None else out
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not bits_equal(a, b):
            out.append(f"{path or '<root>'}: tensors differ")
    elif isinstance(a, dict) and isinstance(b, dict):
        if ordered and list(a) != list(b) and set(a) == set(b):
            out.append(f"{path or '<root>'}: key order {list(a)[:6]} != {list(b)[:6]}")
        if set(a) != set(b):
            out.append(f"{path or '<root>'}: keys {sorted(map(str, set(a) ^ set(b)))[:6]} differ")
        for k in a:
            if k in b:
                deep_diff(a[k], b[k], f"{path}.{k}" if path else str(k), out, skip_complex, ordered)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            out.append(f"{path}: lengths {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            deep_diff(x, y, f"{path}.{i}", out, skip_complex, ordered)
    elif a != b or type(a) is not type(b):
        out.append(f"{path}: {a!r} != {b!r}")
    return out
