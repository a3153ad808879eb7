"""TFLite requantization arithmetic: C (tc_common.h) ≡ numpy (golden/arith.py) ≡ an exact
rational reference, on edge values, rounding ties and random values."""
from __future__ import annotations

import ctypes
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cbuild import runtime_library
from tinycc.golden import arith

I32 = (-(2**31), 2**31 - 1)


@pytest.fixture(scope="module")
def shim():
    lib = runtime_library([Path(__file__).parent / "c" / "arith_shim.c"])
    for name in ("shim_srdhm", "shim_rdbpot", "shim_mbqm"):
        getattr(lib, name).restype = ctypes.c_int32
        getattr(lib, name).argtypes = [ctypes.c_int32] * (2 if name != "shim_mbqm" else 3)
    return lib


def exact_srdhm(a: int, b: int) -> int:
    if a == b == I32[0]:
        return I32[1]
    return (a * b + 2**30) // 2**31  # round half up


def exact_rdbpot(x: int, e: int) -> int:
    q = Fraction(x, 2**e)
    mag = abs(q)
    r = int(mag) + (1 if mag - int(mag) >= Fraction(1, 2) else 0)  # half away from zero
    return r if q >= 0 else -r


EDGES = [I32[0], I32[0] + 1, -(2**30), -12164, -1, 0, 1, 2**30, I32[1] - 1, I32[1]]


def test_srdhm_edges_and_ties(shim):
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a in EDGES for b in EDGES]
    # exact ties: a*b = k*2^31 + 2^30 (b = 2^30 + 2^29 ... chosen so products land on halves)
    pairs += [(2 * k + 1, 2**30) for k in range(-50, 50)] + [(-(2 * k + 1), 2**30) for k in range(50)]
    pairs += [tuple(int(v) for v in rng.integers(I32[0], I32[1], 2, endpoint=True)) for _ in range(20000)]
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    golden = arith.srdhm(a, b)
    for (x, y), g in zip(pairs, golden):
        want = exact_srdhm(x, y)
        assert g == want, (x, y)
        assert shim.shim_srdhm(x, y) == want, (x, y)


def test_rdbpot_matches_half_away_from_zero(shim):
    rng = np.random.default_rng(1)
    xs = EDGES + [int(v) for v in rng.integers(I32[0], I32[1], 3000, endpoint=True)]
    for e in range(0, 32):
        ties = [(2 * k + 1) * 2 ** (e - 1) for k in range(-4, 4)] if e else []
        for x in xs + [t for t in ties if I32[0] <= t <= I32[1]]:
            want = exact_rdbpot(x, e)
            assert int(arith.rdbpot(x, e)) == want, (x, e)
            assert shim.shim_rdbpot(x, e) == want, (x, e)


def test_mbqm_c_equals_golden_over_the_shift_range(shim):
    rng = np.random.default_rng(2)
    for shift in range(-31, 8):
        xs = rng.integers(-(2**24), 2**24, 300)
        ms = rng.integers(2**30, 2**31 - 1, 300)
        golden = arith.mbqm(xs, ms, shift)
        for x, m, g in zip(xs, ms, golden):
            assert shim.shim_mbqm(int(x), int(m), shift) == g, (x, m, shift)


def test_double_rounding_example_from_the_spec():
    # quantization.md §2.5: double rounding gives -1150 where single rounding gives -1149
    assert int(arith.mbqm(-12164, 1623474109, -3)) == -1150


def test_quantize_multiplier_known_values():
    assert arith.quantize_multiplier(0.0072474) == (1992150143, -7)
    assert arith.quantize_multiplier(0.0) == (0, 0)
    assert arith.quantize_multiplier(1e-12) == (0, 0)  # flush to zero below 2^-31
    m, s = arith.quantize_multiplier(0.5)
    assert (m, s) == (2**30, 0)
    m, s = arith.quantize_multiplier(np.nextafter(1.0, 0.0))
    assert m == 2**30 and s == 1  # rounds up to 2^31: halved, shift + 1


def test_fast_requantization_equals_the_reference(shim):
    """tc_requant_s8_nonneg (one SMLAL + shift) against the golden double-rounding pipeline."""
    f = shim.shim_requant_nonneg
    f.restype = ctypes.c_int32
    f.argtypes = [ctypes.c_int32] * 6
    rng = np.random.default_rng(3)
    for shift in list(range(-31, 1)) + [1, 3, 7]:
        accs = np.concatenate([rng.integers(-(2**31), 2**31 - 1, 400, endpoint=True),
                               rng.integers(-(2**20), 2**20, 400), np.array(EDGES)])
        mults = np.concatenate([rng.integers(2**30, 2**31 - 1, accs.size - 3), [0, 2**30, 2**31 - 1]])
        zps = rng.integers(-128, 128, accs.size)
        for acc, m, zp in zip(accs, mults, zps):
            want = int(np.clip(int(arith.mbqm(int(acc), int(m), shift)) + int(zp), -100, 120))
            assert f(int(acc), int(m), shift, int(zp), -100, 120) == want, (acc, m, shift, zp)
