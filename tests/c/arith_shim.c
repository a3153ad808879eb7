/* Test shim: exports the static inline arithmetic of tc_common.h for ctypes. */
#include "tc_common.h"

int32_t shim_srdhm(int32_t a, int32_t b);
int32_t shim_rdbpot(int32_t x, int32_t e);
int32_t shim_mbqm(int32_t x, int32_t m, int32_t s);

int32_t shim_srdhm(int32_t a, int32_t b) { return tc_srdhm(a, b); }
int32_t shim_rdbpot(int32_t x, int32_t e) { return tc_rdbpot(x, e); }
int32_t shim_mbqm(int32_t x, int32_t m, int32_t s) { return tc_mbqm(x, m, s); }

int32_t shim_requant_nonneg(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo, int32_t hi);
int32_t shim_requant_nonneg(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo, int32_t hi) {
    return tc_requant_s8_nonneg(acc, m, s, zp, lo, hi);
}
