"""Integer arithmetic shared by the golden model's kernels, bit for bit with runtime_c/.

Only what several kernel families use lives here: requantization (arith.py, tc_common.h), the
gemmlowp fixed point (fixedpoint.py, tc_fixedpoint.h), the float <-> int8 boundary conversions
(boundary.py), argument checks (checks.py) and the window / accumulator helpers of the MAC
kernels (spatial.py). Each kernel's own reference (params dataclass, make_*_params, the kernel
function) sits next to its operator in tinycc/ops/<family>.py.
"""
