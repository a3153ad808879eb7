/*
 * tinycc runtime: the SIMD variant of tc_dwconv2d_cb_s8 and tc_dwconv2d_cb_s8_inplace
 * (ARMv7E-M DSP extension, or its host emulation), bit-exact with the portable reference in
 * tc_dwconv2d_cb_s8.c, whose entry points call it for 3x3 layers of 4-channel groups.
 *
 * The arithmetic and the schedule are those of the int8 kernel's 4-channel 3x3 path
 * (tc_dwconv2d_s8_quad in tc_dwconv2d_s8_dsp.c, in its C form): the NHWC layout keeps 4
 * channels of a pixel in one word, so input rows are gathered a word per pixel into a ring of 3
 * rows on the stack (zero-point words in the padding), each window tap is one word read, two
 * SXTB16 and four SMLABB/SMLATT. Only the weights differ: a group's 4 x 9 taps are decoded from
 * the codebook once per group (36 bytes on the stack) and widened into int16 pairs, so the
 * codebook costs nothing per pixel. The group, its C row, the row gathering and the calls of
 * the int8 kernel's assembly (tc_dwconv2d_s8_asm.c, TC_DSP_ASM) are tc_dwconv2d_quad_dsp.h's,
 * shared with the int8 kernel: the group is made from the decoded taps with their strides.
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"
#include "tc_dwconv2d_quad_dsp.h"

#include <stddef.h>

#if TC_HAVE_DSP

#define CBQ_PIXELS TC_DWQ_PIXELS /* ring row length in pixels */

/* Pixels of a ring row the windows read (pad_left columns, the image, the last window's 3
 * columns), 0 when they do not fit CBQ_PIXELS. */
static int32_t cbq_row_pixels(const tc_dwconv2d_cb_params *p) {
    const int32_t n = TC_MAX(p->pad_left + p->in_w, (p->out_w - 1) * p->stride_w + 3);
    return n <= CBQ_PIXELS ? n : 0;
}

int tc_dwconv2d_cb_s8_quad_applicable(const tc_dwconv2d_cb_params *p, int same_buffer) {
    return p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->depth_mult == 1 &&
           (p->in_c & 3) == 0 && p->pad_left < CBQ_PIXELS && cbq_row_pixels(p) > 0 &&
           (!same_buffer || tc_dw_ring_inplace_order_ok(p->in_h, p->in_w, p->out_h, p->out_w,
                                                        p->stride_h, p->pad_top, 3));
}

/* The group of channels c..c + 3: their taps decoded from the codebook ([channel][tap], 36
 * bytes on the stack), then made as the int8 kernel's groups (channel step 9, tap step 1). */
static void cbq_make_group(const tc_dwconv2d_cb_params *p, const uint8_t *idx,
                           const int8_t *palette, const int32_t *bias, const int32_t *mult,
                           const int32_t *shift, int32_t c, tc_dwq_group *g) {
    int8_t taps[4 * 9]; /* [channel][ky * 3 + kx] */
    tc_cb_decode_rows(idx, palette, p->bits, 9, p->palette_oc, c, 4, taps);
    tc_dwq_make_group(taps, 1, 9, bias, mult, shift, c, p->in_zp, p->out_zp, p->act_min,
                      p->act_max, g);
}

void tc_dwconv2d_cb_s8_quad(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *out) {
    uint32_t ring[5 * CBQ_PIXELS]; /* 3 rows, and copies of rows 0 and 1 for the assembly */
    tc_dwq_group g;
    const int32_t y_row = p->out_w * p->out_c;
    const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * UINT32_C(0x01010101);
    int32_t c, oy, iy, i;
    for (i = 0; i < 5 * CBQ_PIXELS; ++i) ring[i] = zp4; /* the padding columns stay so */
    for (c = 0; c < p->in_c; c += 4) {
        int32_t next_row = -p->pad_top; /* the first input row not yet gathered */
        int asm_rows = 0;
        cbq_make_group(p, idx, palette, bias, mult, shift, c, &g);
#if TC_DSP_ASM
        asm_rows = tc_dwq_asm_group(&g, p->stride_w, p->out_w);
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const uint32_t *r0 = ring + ((iy0 + p->pad_top) % 3) * CBQ_PIXELS;
            int8_t *y = out + oy * y_row + c;
            for (iy = TC_MAX(iy0, next_row); iy < iy0 + 3; ++iy) {
                /* for the assembly, slots 0 and 1 have copies 3 slots on: a window's rows
                 * are then contiguous */
                const int32_t slot = (iy + p->pad_top) % 3;
                uint32_t *copy = asm_rows && slot < 2 ? ring + (slot + 3) * CBQ_PIXELS : NULL;
                tc_dwq_gather_image_row(in, p->in_h, p->in_w, p->in_c, p->pad_left, c, iy, zp4,
                                        ring + slot * CBQ_PIXELS, copy);
            }
            next_row = TC_MAX(next_row, iy0 + 3);
#if TC_DSP_ASM
            if (asm_rows) {
                tc_dwq_row_asm(&g, r0, y, p->out_w, p->out_c, p->stride_w);
                continue;
            }
#endif
            tc_dwq_row(&g, r0, ring + ((iy0 + 1 + p->pad_top) % 3) * CBQ_PIXELS,
                       ring + ((iy0 + 2 + p->pad_top) % 3) * CBQ_PIXELS, p->out_w, p->stride_w,
                       y, p->out_c);
        }
    }
}

#else
typedef int tc_dwconv2d_cb_s8_dsp_empty; /* ISO C: a translation unit is not empty */
#endif /* TC_HAVE_DSP */
