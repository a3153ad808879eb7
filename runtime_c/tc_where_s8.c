/*
 * int8 Where (select) with three-way broadcasting: out = cond ? x : y, each value rescaled to the
 * output quantization (tc_eltwise_ext.h).
 */
#include "tc_eltwise_ext.h"

static int dims_broadcast_to(const int32_t dims[4], const int32_t out_dims[4]) {
    int i;
    for (i = 0; i < 4; ++i) {
        if (dims[i] < 1 || (dims[i] != 1 && dims[i] != out_dims[i])) return 0;
    }
    return 1;
}

static int where_params_valid(const tc_where_params *p) {
    return tc_dims_valid(p->out_dims) && dims_broadcast_to(p->cond_dims, p->out_dims) &&
           dims_broadcast_to(p->x_dims, p->out_dims) && dims_broadcast_to(p->y_dims, p->out_dims) &&
           tc_is_int8(p->x_zp) && tc_is_int8(p->y_zp) && tc_is_int8(p->out_zp) &&
           tc_requant_pair_valid(p->x_multiplier, p->x_shift) &&
           tc_requant_pair_valid(p->y_multiplier, p->y_shift);
}

tc_status tc_where_s8(const tc_where_params *p, const int8_t *cond, const int8_t *x, const int8_t *y,
                      int8_t *out) {
    int32_t sc[4], sx[4], sy[4];
    int32_t i0, i1, i2, i3;
    if (!where_params_valid(p) || cond == NULL) return TC_ARG_ERROR;
    tc_broadcast_strides(p->cond_dims, sc);
    tc_broadcast_strides(p->x_dims, sx);
    tc_broadcast_strides(p->y_dims, sy);
    for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
        for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
            for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
                for (i3 = 0; i3 < p->out_dims[3]; ++i3) {
                    const int32_t c = cond[i0 * sc[0] + i1 * sc[1] + i2 * sc[2] + i3 * sc[3]];
                    const int32_t v = c != 0 ? (int32_t)x[i0 * sx[0] + i1 * sx[1] + i2 * sx[2] + i3 * sx[3]] - p->x_zp
                                             : (int32_t)y[i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3]] - p->y_zp;
                    *out++ = c != 0 ? tc_requant_s8(v, p->x_multiplier, p->x_shift, p->out_zp, -128, 127)
                                    : tc_requant_s8(v, p->y_multiplier, p->y_shift, p->out_zp, -128, 127);
                }
            }
        }
    }
    return TC_OK;
}
