/* Constant padding of a 4-D int8 tensor (TFLM PAD / PADV2 with a constant value). */
#include <string.h>

#include "tc_tensor.h"

static int pad_params_valid(const tc_pad_params *p) {
    int i;
    if (!tc_dims_valid(p->in_dims) || !tc_is_int8(p->pad_value)) return 0;
    for (i = 0; i < 4; ++i) {
        const int64_t room = (int64_t)p->out_dims[i] - p->in_dims[i];
        if (p->pad_before[i] < 0 || room < p->pad_before[i]) return 0;
    }
    return 1;
}

/* Index into the input along one axis, or -1 when the output index lies in the padding. */
static inline int32_t source_index(const tc_pad_params *p, int axis, int32_t out_index) {
    const int32_t i = out_index - p->pad_before[axis];
    return i >= 0 && i < p->in_dims[axis] ? i : -1;
}

tc_status tc_pad_s8(const tc_pad_params *p, const int8_t *in, int8_t *out) {
    const int32_t row = p->out_dims[3];
    const int32_t before = p->pad_before[3];
    const int32_t copied = p->in_dims[3];
    const int pad_byte = (int)(int8_t)p->pad_value;
    int32_t in_strides[4];
    int32_t o0, o1, o2;
    if (!pad_params_valid(p)) return TC_ARG_ERROR;
    tc_dense_strides(p->in_dims, in_strides);
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        const int32_t i0 = source_index(p, 0, o0);
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            const int32_t i1 = source_index(p, 1, o1);
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                const int32_t i2 = source_index(p, 2, o2);
                if (i0 < 0 || i1 < 0 || i2 < 0) {
                    memset(out, pad_byte, (size_t)row);
                } else {
                    const int8_t *src = in + i0 * in_strides[0] + i1 * in_strides[1] +
                                        i2 * in_strides[2];
                    memset(out, pad_byte, (size_t)before);
                    memcpy(out + before, src, (size_t)copied);
                    memset(out + before + copied, pad_byte, (size_t)(row - before - copied));
                }
                out += row;
            }
        }
    }
    return TC_OK;
}
