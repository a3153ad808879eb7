/* Permutation of the axes of a 4-D int8 tensor (TFLM TRANSPOSE). */
#include <string.h>

#include "tc_tensor.h"

static int transpose_params_valid(const tc_transpose_params *p) {
    int seen[4] = {0, 0, 0, 0};
    int i;
    if (!tc_dims_valid(p->in_dims)) return 0;
    for (i = 0; i < 4; ++i) {
        if (p->perm[i] < 0 || p->perm[i] > 3 || seen[p->perm[i]]) return 0;
        seen[p->perm[i]] = 1;
    }
    return 1;
}

tc_status tc_transpose_s8(const tc_transpose_params *p, const int8_t *in, int8_t *out) {
    int32_t in_strides[4], out_dims[4], step[4];
    int32_t o0, o1, o2, o3;
    int i;
    if (!transpose_params_valid(p)) return TC_ARG_ERROR;
    tc_dense_strides(p->in_dims, in_strides);
    for (i = 0; i < 4; ++i) {
        out_dims[i] = p->in_dims[p->perm[i]];
        step[i] = in_strides[p->perm[i]]; /* input elements between neighbours along out axis i */
    }
    for (o0 = 0; o0 < out_dims[0]; ++o0) {
        for (o1 = 0; o1 < out_dims[1]; ++o1) {
            for (o2 = 0; o2 < out_dims[2]; ++o2) {
                const int8_t *src = in + o0 * step[0] + o1 * step[1] + o2 * step[2];
                if (step[3] == 1) {
                    memcpy(out, src, (size_t)out_dims[3]);
                } else {
                    for (o3 = 0; o3 < out_dims[3]; ++o3) out[o3] = src[o3 * step[3]];
                }
                out += out_dims[3];
            }
        }
    }
    return TC_OK;
}
