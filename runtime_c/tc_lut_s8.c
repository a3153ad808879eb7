/*
 * int8 -> int8 table lookup: any unary activation (sigmoid, tanh, hard-swish, leaky ReLU, ...)
 * with its input and output quantization folded into a 256-entry table built offline.
 */
#include "tc_eltwise.h"

tc_status tc_lut_s8(const tc_lut_params *p, const int8_t *table, const int8_t *in, int8_t *out) {
    int32_t i;
    if (p->size < 0 || table == NULL) return TC_ARG_ERROR;
    for (i = 0; i < p->size; ++i) out[i] = table[(int32_t)in[i] + 128];
    return TC_OK;
}
