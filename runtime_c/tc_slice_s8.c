/* Strided slice of a 4-D int8 tensor (ONNX Slice with positive steps, Split). */
#include <string.h>

#include "tc_tensor.h"

static int slice_params_valid(const tc_slice_params *p) {
    int i;
    if (!tc_dims_valid(p->in_dims) || !tc_dims_valid(p->out_dims)) return 0;
    for (i = 0; i < 4; ++i) {
        const int64_t last = (int64_t)p->begin[i] + (int64_t)(p->out_dims[i] - 1) * p->stride[i];
        if (p->begin[i] < 0 || p->stride[i] < 1 || last >= p->in_dims[i]) return 0;
    }
    return 1;
}

tc_status tc_slice_s8(const tc_slice_params *p, const int8_t *in, int8_t *out) {
    int32_t in_strides[4], step[4];
    int32_t o0, o1, o2, o3;
    int i;
    if (!slice_params_valid(p)) return TC_ARG_ERROR;
    tc_dense_strides(p->in_dims, in_strides);
    for (i = 0; i < 4; ++i) {
        in += p->begin[i] * in_strides[i];
        step[i] = p->stride[i] * in_strides[i];
    }
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                const int8_t *src = in + o0 * step[0] + o1 * step[1] + o2 * step[2];
                if (step[3] == 1) {
                    memcpy(out, src, (size_t)p->out_dims[3]);
                } else {
                    for (o3 = 0; o3 < p->out_dims[3]; ++o3) out[o3] = src[o3 * step[3]];
                }
                out += p->out_dims[3];
            }
        }
    }
    return TC_OK;
}
