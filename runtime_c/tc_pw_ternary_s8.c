/*
 * tinycc runtime: PROM ternary pointwise convolution (1x1, stride 1, group 1, weights in
 * {-1, 0, 1} packed 2-bit or base-3). Mirrored by tinycc/ops/conv.py::pw_ternary_s8; the
 * integer semantics are TFLM ConvPerChannel's with those weights (tc_conv2d_s8), the input
 * zero point folded into the bias by the caller.
 *
 * This file is the entry point and the portable C99 reference: its inner loop adds and
 * subtracts activations (no multiplication). tc_pw_ternary_s8_dsp.c (TC_HAVE_DSP) runs the
 * 2-bit layers with in_c >= 4: a table turns each weight byte into two int16 pairs for SMLAD,
 * two pixels by two output channels at a time.
 */
#include "tc_arm_dsp.h"
#include "tc_conv.h"

#include <stddef.h>

/* A base-3 byte v in [0, 242] as five 2-bit codes in natural order (trit n at bits 2n): one
 * lookup instead of four divisions by 3 (486 bytes of flash). */
static const uint16_t base3_codes[243] = {
    0x3FF, 0x3FC, 0x3FD, 0x3F3, 0x3F0, 0x3F1, 0x3F7, 0x3F4, 0x3F5, 0x3CF, 0x3CC, 0x3CD,
    0x3C3, 0x3C0, 0x3C1, 0x3C7, 0x3C4, 0x3C5, 0x3DF, 0x3DC, 0x3DD, 0x3D3, 0x3D0, 0x3D1,
    0x3D7, 0x3D4, 0x3D5, 0x33F, 0x33C, 0x33D, 0x333, 0x330, 0x331, 0x337, 0x334, 0x335,
    0x30F, 0x30C, 0x30D, 0x303, 0x300, 0x301, 0x307, 0x304, 0x305, 0x31F, 0x31C, 0x31D,
    0x313, 0x310, 0x311, 0x317, 0x314, 0x315, 0x37F, 0x37C, 0x37D, 0x373, 0x370, 0x371,
    0x377, 0x374, 0x375, 0x34F, 0x34C, 0x34D, 0x343, 0x340, 0x341, 0x347, 0x344, 0x345,
    0x35F, 0x35C, 0x35D, 0x353, 0x350, 0x351, 0x357, 0x354, 0x355, 0x0FF, 0x0FC, 0x0FD,
    0x0F3, 0x0F0, 0x0F1, 0x0F7, 0x0F4, 0x0F5, 0x0CF, 0x0CC, 0x0CD, 0x0C3, 0x0C0, 0x0C1,
    0x0C7, 0x0C4, 0x0C5, 0x0DF, 0x0DC, 0x0DD, 0x0D3, 0x0D0, 0x0D1, 0x0D7, 0x0D4, 0x0D5,
    0x03F, 0x03C, 0x03D, 0x033, 0x030, 0x031, 0x037, 0x034, 0x035, 0x00F, 0x00C, 0x00D,
    0x003, 0x000, 0x001, 0x007, 0x004, 0x005, 0x01F, 0x01C, 0x01D, 0x013, 0x010, 0x011,
    0x017, 0x014, 0x015, 0x07F, 0x07C, 0x07D, 0x073, 0x070, 0x071, 0x077, 0x074, 0x075,
    0x04F, 0x04C, 0x04D, 0x043, 0x040, 0x041, 0x047, 0x044, 0x045, 0x05F, 0x05C, 0x05D,
    0x053, 0x050, 0x051, 0x057, 0x054, 0x055, 0x1FF, 0x1FC, 0x1FD, 0x1F3, 0x1F0, 0x1F1,
    0x1F7, 0x1F4, 0x1F5, 0x1CF, 0x1CC, 0x1CD, 0x1C3, 0x1C0, 0x1C1, 0x1C7, 0x1C4, 0x1C5,
    0x1DF, 0x1DC, 0x1DD, 0x1D3, 0x1D0, 0x1D1, 0x1D7, 0x1D4, 0x1D5, 0x13F, 0x13C, 0x13D,
    0x133, 0x130, 0x131, 0x137, 0x134, 0x135, 0x10F, 0x10C, 0x10D, 0x103, 0x100, 0x101,
    0x107, 0x104, 0x105, 0x11F, 0x11C, 0x11D, 0x113, 0x110, 0x111, 0x117, 0x114, 0x115,
    0x17F, 0x17C, 0x17D, 0x173, 0x170, 0x171, 0x177, 0x174, 0x175, 0x14F, 0x14C, 0x14D,
    0x143, 0x140, 0x141, 0x147, 0x144, 0x145, 0x15F, 0x15C, 0x15D, 0x153, 0x150, 0x151,
    0x157, 0x154, 0x155,
};

/* The ternary dot product of one pixel with one packed weight row. */
static int32_t ternary_row_sum(const int8_t *x, const uint8_t *w, int32_t in_c, int32_t format) {
    const int32_t per_byte = format == TC_TERNARY_2BIT ? 4 : 5;
    int32_t acc = 0, k;
    for (k = 0; k < in_c; k += per_byte, ++w) {
        const uint32_t codes = format == TC_TERNARY_2BIT ? tc_ternary_2bit_natural(*w)
                                                         : base3_codes[*w < 243 ? *w : 121];
        acc += tc_ternary_terms(codes, x + k, TC_MIN(per_byte, in_c - k));
    }
    return acc;
}

static void pw_ternary_s8_portable(const tc_pw_ternary_params *p, const int8_t *in,
                                   const uint8_t *w, const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift, int8_t *out) {
    const int32_t row = p->format == TC_TERNARY_2BIT ? (p->in_c + 3) / 4 : (p->in_c + 4) / 5;
    int32_t i, oc;
    for (i = 0; i < p->pixels; ++i) {
        const int8_t *x = in + i * p->in_c;
        int8_t *y = out + i * p->out_c;
        for (oc = 0; oc < p->out_c; ++oc) {
            int32_t acc = ternary_row_sum(x, w + oc * row, p->in_c, p->format);
            if (bias != NULL) acc += bias[oc];
            y[oc] = tc_requant_s8_nonneg(acc, mult[oc], shift[oc], p->out_zp, p->act_min,
                                         p->act_max);
        }
    }
}

tc_status tc_pw_ternary_s8(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                           int8_t *out) {
    if (p == NULL || in == NULL || w == NULL || mult == NULL || shift == NULL || out == NULL) {
        return TC_ARG_ERROR;
    }
    if (p->pixels < 1 || p->in_c < 1 || p->out_c < 1 ||
        (p->format != TC_TERNARY_2BIT && p->format != TC_TERNARY_BASE3) ||
        !tc_conv_quant_args_ok(0, p->out_zp, p->act_min, p->act_max, mult, shift, p->out_c)) {
        return TC_ARG_ERROR;
    }
#if TC_HAVE_DSP
    if (p->format == TC_TERNARY_2BIT && p->in_c >= 4) {
        tc_pw_ternary_s8_dsp(p, in, w, bias, mult, shift, out);
        return TC_OK;
    }
#endif
    pw_ternary_s8_portable(p, in, w, bias, mult, shift, out);
    return TC_OK;
}
