/* int8 matrix product of two activations with broadcast batch axes (TFLM BATCH_MATMUL). */
#include "tc_matmul.h"

static int batch_matmul_params_valid(const tc_batch_matmul_params *p) {
    int i;
    for (i = 0; i < 3; ++i) {
        if (p->lhs_batch[i] < 1 || p->rhs_batch[i] < 1) return 0;
        if (p->lhs_batch[i] != p->rhs_batch[i] && p->lhs_batch[i] != 1 && p->rhs_batch[i] != 1) return 0;
    }
    if (p->rows < 1 || p->cols < 1 || p->depth < 1 || p->depth > TC_BATCH_MATMUL_MAX_DEPTH) return 0;
    if (p->lhs_zp < -128 || p->lhs_zp > 127 || p->rhs_zp < -128 || p->rhs_zp > 127) return 0;
    if (p->out_zp < -128 || p->out_zp > 127) return 0;
    if (p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max) return 0;
    return p->multiplier >= 0 && p->shift >= -31 && p->shift <= 30;
}

static int8_t requant(const tc_batch_matmul_params *p, int32_t acc) {
    return tc_requant_s8(acc, p->multiplier, p->shift, p->out_zp, p->act_min, p->act_max);
}

/* One [rows][depth] x [depth][cols] product. Four output columns at a time: the right side is
 * read one row of four neighbours per k (contiguous) instead of one strided value; the sums are
 * the same integers in any order. */
static void matmul_one(const tc_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs, int8_t *out) {
    int32_t i, j, k;
    for (i = 0; i < p->rows; ++i) {
        const int8_t *a = lhs + i * p->depth;
        int8_t *y = out + i * p->cols;
        for (j = 0; j + 4 <= p->cols; j += 4) {
            int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
            const int8_t *b = rhs + j;
            for (k = 0; k < p->depth; ++k) {
                const int32_t x = (int32_t)a[k] - p->lhs_zp;
                acc0 += x * ((int32_t)b[0] - p->rhs_zp);
                acc1 += x * ((int32_t)b[1] - p->rhs_zp);
                acc2 += x * ((int32_t)b[2] - p->rhs_zp);
                acc3 += x * ((int32_t)b[3] - p->rhs_zp);
                b += p->cols;
            }
            y[j] = requant(p, acc0);
            y[j + 1] = requant(p, acc1);
            y[j + 2] = requant(p, acc2);
            y[j + 3] = requant(p, acc3);
        }
        for (; j < p->cols; ++j) {
            int32_t acc = 0;
            for (k = 0; k < p->depth; ++k) {
                acc += ((int32_t)a[k] - p->lhs_zp) * ((int32_t)rhs[k * p->cols + j] - p->rhs_zp);
            }
            y[j] = requant(p, acc);
        }
    }
}

tc_status tc_batch_matmul_s8(const tc_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs,
                             int8_t *out) {
    int32_t lhs_step[3], rhs_step[3], out_dims[3];
    int32_t b0, b1, b2;
    const int32_t lhs_size = p == NULL ? 0 : p->rows * p->depth;
    const int32_t rhs_size = p == NULL ? 0 : p->depth * p->cols;
    const int32_t out_size = p == NULL ? 0 : p->rows * p->cols;
    int i;
    if (p == NULL || lhs == NULL || rhs == NULL || out == NULL || !batch_matmul_params_valid(p)) {
        return TC_ARG_ERROR;
    }
    /* matrices between neighbours along each batch axis; 0 where that side is broadcast */
    lhs_step[2] = p->lhs_batch[2] == 1 ? 0 : 1;
    rhs_step[2] = p->rhs_batch[2] == 1 ? 0 : 1;
    lhs_step[1] = p->lhs_batch[1] == 1 ? 0 : p->lhs_batch[2];
    rhs_step[1] = p->rhs_batch[1] == 1 ? 0 : p->rhs_batch[2];
    lhs_step[0] = p->lhs_batch[0] == 1 ? 0 : p->lhs_batch[1] * p->lhs_batch[2];
    rhs_step[0] = p->rhs_batch[0] == 1 ? 0 : p->rhs_batch[1] * p->rhs_batch[2];
    for (i = 0; i < 3; ++i) out_dims[i] = TC_MAX(p->lhs_batch[i], p->rhs_batch[i]);
    for (b0 = 0; b0 < out_dims[0]; ++b0) {
        for (b1 = 0; b1 < out_dims[1]; ++b1) {
            for (b2 = 0; b2 < out_dims[2]; ++b2) {
                const int32_t l = b0 * lhs_step[0] + b1 * lhs_step[1] + b2 * lhs_step[2];
                const int32_t r = b0 * rhs_step[0] + b1 * rhs_step[1] + b2 * rhs_step[2];
                matmul_one(p, lhs + l * lhs_size, rhs + r * rhs_size, out);
                out += out_size;
            }
        }
    }
    return TC_OK;
}
