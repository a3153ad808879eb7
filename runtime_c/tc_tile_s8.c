/* Tile / broadcast of a 4-D int8 tensor: every output index reads the input index modulo the
 * input's extent (ONNX Tile repeats, Expand broadcasts axes of extent 1). */
#include <string.h>

#include "tc_structural.h"

tc_status tc_tile_s8(const tc_tile_params *p, const int8_t *in, int8_t *out) {
    int32_t i0, i1, i2, i3, k;
    if (p == NULL || in == NULL || out == NULL) return TC_ARG_ERROR;
    for (k = 0; k < 4; ++k) {
        if (p->in_dims[k] < 1 || p->out_dims[k] < 1 || p->out_dims[k] % p->in_dims[k] != 0) return TC_ARG_ERROR;
    }
    for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
        const int8_t *s0 = in + (i0 % p->in_dims[0]) * p->in_dims[1] * p->in_dims[2] * p->in_dims[3];
        for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
            const int8_t *s1 = s0 + (i1 % p->in_dims[1]) * p->in_dims[2] * p->in_dims[3];
            for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
                const int8_t *row = s1 + (i2 % p->in_dims[2]) * p->in_dims[3];
                if (p->in_dims[3] == p->out_dims[3]) {
                    memcpy(out, row, (size_t)p->out_dims[3]);
                    out += p->out_dims[3];
                } else if (p->in_dims[3] == 1) {
                    memset(out, row[0], (size_t)p->out_dims[3]);
                    out += p->out_dims[3];
                } else {
                    for (i3 = 0; i3 < p->out_dims[3]; ++i3) *out++ = row[i3 % p->in_dims[3]];
                }
            }
        }
    }
    return TC_OK;
}
