/* Gather along one axis with a constant index table (the rows of [outer][axis_len][inner]). */
#include <string.h>

#include "tc_structural.h"

tc_status tc_gather_s8(const tc_gather_params *p, const int32_t *index, const int8_t *in, int8_t *out) {
    int32_t o, j;
    if (p == NULL || index == NULL || in == NULL || out == NULL || p->outer < 1 || p->axis_len < 1 || p->inner < 1 ||
        p->count < 1) {
        return TC_ARG_ERROR;
    }
    for (j = 0; j < p->count; ++j) {
        if (index[j] < 0 || index[j] >= p->axis_len) return TC_ARG_ERROR;
    }
    for (o = 0; o < p->outer; ++o) {
        const int8_t *src = in + o * p->axis_len * p->inner;
        for (j = 0; j < p->count; ++j) {
            memcpy(out, src + index[j] * p->inner, (size_t)p->inner);
            out += p->inner;
        }
    }
    return TC_OK;
}
