/*
 * The cases of tests/test_kernels_qemu.py, as compiled into the Cortex-M image: the test writes
 * qemu_kernels_cases.c (the arrays and the table) for the driver qemu_kernels_driver.c.
 */
#ifndef QEMU_KERNELS_CASES_H
#define QEMU_KERNELS_CASES_H

#include <stddef.h>
#include <stdint.h>

enum {
    QK_CONV = 0, QK_DWCONV = 1, QK_FC = 2, QK_DWCONV_INPLACE = 3, QK_MAXPOOL = 4, QK_ADD = 5,
    QK_MUL = 6, QK_AVGPOOL = 7, QK_ADD_TABLE = 8
};

typedef struct {
    int32_t kind;          /* QK_CONV, ... (above) */
    const int32_t *params; /* the kernel's params struct, field by field (all int32_t) */
    const int8_t *x, *w; /* QK_ADD, QK_MUL: w is the second input; w, mult, shift may be NULL */
    const int32_t *bias; /* NULL: no bias; QK_ADD_TABLE: the tables */
    const int32_t *mult, *shift;
    int32_t out_len; /* bytes of output */
} qk_case;

extern const qk_case qk_cases[];
extern const int32_t qk_case_count;

/* Per case: the status byte, then out_len output bytes. */
extern int8_t qk_results[];

/* QK_DWCONV_INPLACE: the buffer the input is copied to (output over it, as large as the largest
 * such input) and the kernel's scratch (one channel plane). */
extern int8_t qk_inplace_buf[];
extern int8_t qk_scratch[];

#endif /* QEMU_KERNELS_CASES_H */
