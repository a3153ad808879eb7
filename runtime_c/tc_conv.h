/*
 * tinycc runtime: int8 convolution and fully connected kernels.
 *
 * Arithmetic is exactly TFLite Micro's reference ConvPerChannel, DepthwiseConvPerChannel and
 * FullyConnected (per-channel). Mirrored bit for bit by tinycc/golden/kernels_conv.py, whose
 * parameter dataclasses have the same field names in the same order as the structs below.
 *
 * Common conventions
 *  - Activations are NHWC with N = 1, i.e. [H][W][C], int8 in [-128, 127].
 *  - Zero points are stored as the zero point itself (TFLM's input_offset is -in_zp).
 *  - For every output element:
 *        acc = sum over in-image taps of w * (x - in_zp)      (int32)
 *        acc += bias[oc]                                       (if bias != NULL)
 *        y   = tc_requant_s8(acc, mult[oc], shift[oc], out_zp, act_min, act_max)
 *    Taps that fall outside the image are skipped, which equals padding with in_zp (real 0).
 *    Only top/left padding is given; bottom/right padding is implied by out_h/out_w.
 *  - mult/shift come from QuantizeMultiplier: mult in [0, 2^31-1], shift in [-31, 30].
 *  - The int32 accumulator must not overflow: |bias| + 255 * 128 * (taps per output) < 2^31,
 *    i.e. at most 65 000 multiply-accumulates per output with small biases. Like TFLM, the
 *    kernels do not check this.
 *  - Kernels return TC_ARG_ERROR (and write nothing) after cheap checks on pointers, shapes,
 *    zero points, activation range and per-channel shifts; TC_OK otherwise.
 */
#ifndef TC_CONV_H
#define TC_CONV_H

#include "tc_arm_dsp.h"
#include "tc_common.h"

/* TC_FAST_PORTABLE: the fast portable variants (tc_*_fast.c: register-blocked plain C99,
 * bit-exact with the reference) are taken on cores without the DSP extension (Cortex-M0+/M3,
 * RISC-V, ESP32, the host), unless TC_PORTABLE_SPEC is defined, which keeps the readable
 * reference (the specification the tests compare the variants with). */
#ifndef TC_FAST_PORTABLE /* also defined, the same way, by tc_eltwise.h */
#if !TC_HAVE_DSP && !defined(TC_PORTABLE_SPEC)
#define TC_FAST_PORTABLE 1
#else
#define TC_FAST_PORTABLE 0
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Parameters of tc_conv2d_s8 (regular and grouped 2-D convolution).
 *
 * out_h/out_w are the caller's choice (usually floor((in + pads - dil*(k-1) - 1)/stride) + 1);
 * bottom/right padding is whatever they imply.
 * Ranges: all sizes >= 1; in_c and out_c divisible by groups; in_zp, out_zp in [-128, 127];
 * -128 <= act_min <= act_max <= 127; pad_top, pad_left >= 0.
 */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups;
    int32_t in_zp, out_zp, act_min, act_max;
} tc_conv2d_params;

/**
 * Parameters of tc_dwconv2d_s8 / tc_dwconv2d_s8_inplace (depthwise convolution).
 *
 * out_c must equal in_c * depth_mult; output channel oc = ic * depth_mult + m reads input
 * channel ic (TFLite DEPTHWISE_CONV_2D convention). Other ranges as tc_conv2d_params.
 */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, depth_mult;
    int32_t in_zp, out_zp, act_min, act_max;
} tc_dwconv2d_params;

/**
 * Parameters of tc_fc_s8: `rows` independent input vectors of in_features values each.
 * per_channel != 0: mult/shift hold out_features entries (one per output channel);
 * per_channel == 0: one entry for the whole layer (TFLite's per-tensor fully connected), which
 * saves 8 bytes of flash per output channel.
 * Ranges: rows, in_features, out_features >= 1; zero points and activation range as above.
 */
typedef struct {
    int32_t rows, in_features, out_features;
    int32_t in_zp, out_zp, act_min, act_max;
    int32_t per_channel;
} tc_fc_params;

/* tc_pw_ternary_params.format */
#define TC_TERNARY_2BIT 0  /* 4 weights per byte, 2-bit two's complement, interleaved (below) */
#define TC_TERNARY_BASE3 1 /* 5 weights per byte: v = sum_n 3^n (t_n + 1), v in [0, 242] */

/**
 * Parameters of tc_pw_ternary_s8 (PROM ternary pointwise convolution): a 1x1, stride-1,
 * unpadded, group-1 convolution over `pixels` NHWC pixels whose weights are in {-1, 0, 1}.
 * Ranges: pixels, in_c, out_c >= 1; format TC_TERNARY_2BIT or TC_TERNARY_BASE3; out_zp and
 * the activation range as tc_conv2d_params. There is no in_zp: the caller folds
 * -in_zp * sum_k t[oc][k] into the bias (tinycc/ops/conv.py fold_input_zero_point).
 */
typedef struct {
    int32_t pixels, in_c, out_c, format;
    int32_t out_zp, act_min, act_max;
} tc_pw_ternary_params;

/**
 * int8 2-D convolution, TFLM ConvPerChannel semantics, with dilation and groups.
 *
 * @param p      shapes and quantization parameters
 * @param in     input  [in_h][in_w][in_c]
 * @param w      weights [out_c][k_h][k_w][in_c / groups] (OHWI); output channel oc belongs to
 *               group oc / (out_c / groups) and reads input channels of that group
 * @param bias   int32 [out_c], scale in_scale * w_scale[oc], or NULL for no bias
 * @param mult   requantization multipliers [out_c]
 * @param shift  requantization shifts [out_c], in [-31, 30]
 * @param out    output [out_h][out_w][out_c]; must not overlap the input
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out);

/**
 * int8 depthwise 2-D convolution, TFLM DepthwiseConvPerChannel semantics.
 *
 * @param w      weights [k_h][k_w][out_c] (TFLite layout, out_c = in_c * depth_mult)
 * @param out    output [out_h][out_w][out_c]; must not overlap the input
 * Other parameters as tc_conv2d_s8.
 */
tc_status tc_dwconv2d_s8(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out);

/** Bytes of scratch tc_dwconv2d_s8_inplace needs: one input channel plane, in_h * in_w. */
int32_t tc_dwconv2d_s8_inplace_scratch_size(const tc_dwconv2d_params *p);

/**
 * Depthwise convolution that may write its output over its input (TinyEngine-style in-place),
 * bit-exact with tc_dwconv2d_s8.
 *
 * Channels are processed one at a time: channel c of the input is copied into `scratch`
 * (a [in_h][in_w] plane), then output channel c is written to out[(y*out_w + x)*C + c]. With
 * out == in these writes only touch channel-c slots of pixels y*out_w + x < out_h*out_w, whose
 * input values were already copied, so channels not yet processed are never overwritten.
 *
 * Preconditions: depth_mult == 1; out == in, or out does not overlap in at all; when
 * out == in, out_h * out_w <= in_h * in_w (true for stride >= 1 with "same" or "valid"
 * padding), and the output then occupies the first out_h*out_w*C bytes of the buffer;
 * scratch holds tc_dwconv2d_s8_inplace_scratch_size(p) bytes and overlaps nothing else.
 *
 * @return TC_OK, or TC_ARG_ERROR (also when the preconditions above are checkably violated)
 */
tc_status tc_dwconv2d_s8_inplace(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                 int8_t *scratch, int8_t *out);

/**
 * int8 fully connected layer, TFLM FullyConnected semantics with per-output-channel
 * requantization (pass out_features copies of the same multiplier for per-tensor).
 *
 * @param in     input [rows][in_features]
 * @param w      weights [out_features][in_features]
 * @param bias   int32 [out_features], or NULL
 * @param mult   requantization multipliers [out_features]
 * @param shift  requantization shifts [out_features], in [-31, 30]
 * @param out    output [rows][out_features]; must not overlap the input
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_fc_s8(const tc_fc_params *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int8_t *out);

/**
 * PROM ternary pointwise convolution, bit-exact with tc_conv2d_s8 on the same layer whose int8
 * weights are the ternary codes (and in_zp folded into the bias):
 *     acc = sum over k of t[oc][k] * in[pixel][k] + bias[oc]   (adds and subtracts only)
 *     y   = tc_requant_s8(acc, mult[oc], shift[oc], out_zp, act_min, act_max)
 *
 * @param w      packed rows, one per output channel, each starting on a byte:
 *               TC_TERNARY_2BIT: (in_c + 3) / 4 bytes; byte j holds weights 4j..4j+3 as 2-bit
 *               codes (0: 0, 1: +1, 3: -1) at bits 0-1: w0, 2-3: w2, 4-5: w1, 6-7: w3 (its
 *               low nibble pairs with the even activations, as SXTB16 splits them);
 *               TC_TERNARY_BASE3: (in_c + 4) / 5 bytes; byte j = sum_n 3^n (w_{5j+n} + 1).
 *               Padding weights of the last byte are 0.
 * @param bias   int32 [out_c] with -in_zp * sum_k t[oc][k] folded in; NULL for none
 * @param out    output [pixels][out_c]; may start below the input by the amount
 *               tinycc/ops/conv.py pw_ternary_overlap_delta allows, else must not overlap it
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_pw_ternary_s8(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                           int8_t *out);

/**
 * tc_pw_ternary_s8 by activation tables (T-MAC style, tc_pw_ternary_s8_lut.c), for wide
 * layers: same arithmetic and arguments, TC_TERNARY_2BIT rows and in_c >= 4 only, plus
 * `scratch` of tc_pw_ternary_s8_lut_scratch_size(p) bytes, 4-byte aligned, overlapping nothing.
 * Every output is written after both pixels of its pair were read, as tc_pw_ternary_s8 does.
 */
#define TC_PW_TERNARY_LUT_GROUPS 4 /* tables (of 256 words) built per chunk of input channels */
int32_t tc_pw_ternary_s8_lut_scratch_size(const tc_pw_ternary_params *p);
tc_status tc_pw_ternary_s8_lut(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                               const int32_t *bias, const int32_t *mult, const int32_t *shift,
                               int8_t *scratch, int8_t *out);

/**
 * tc_pw_ternary_s8 by expansion (tc_pw_ternary_s8_expand.c), for narrow layers: the weights
 * decoded into `scratch` (tc_pw_ternary_s8_expand_scratch_size(p) = out_c * in_c bytes,
 * overlapping nothing) as int8, then tc_conv2d_s8 (its SMLAD path on DSP cores). Either format.
 * Writes its output as tc_conv2d_s8 does a 1x1 convolution of the same pixels.
 */
int32_t tc_pw_ternary_s8_expand_scratch_size(const tc_pw_ternary_params *p);
tc_status tc_pw_ternary_s8_expand(const tc_pw_ternary_params *p, const int8_t *in,
                                  const uint8_t *w, const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int8_t *scratch, int8_t *out);

/* Internal (tc_pw_ternary_s8.c, tc_pw_ternary_s8_dsp.c): up to 5 weights as 2-bit codes in
 * natural order (weight n at bits 2n), and their sum of t * x over `count` activations, with
 * adds, subtracts and masks only: code 1 gives x, 3 gives -x = (x ^ -1) + 1, 0 gives 0. */
static inline int32_t tc_ternary_terms(uint32_t codes, const int8_t *x, int32_t count) {
    int32_t acc = 0, n;
    for (n = 0; n < count; ++n, codes >>= 2) {
        const int32_t nonzero = -(int32_t)(codes & 1u);
        const int32_t negative = -(int32_t)((codes >> 1) & 1u);
        acc += (((int32_t)x[n] ^ negative) - negative) & nonzero;
    }
    return acc;
}

/* A TC_TERNARY_2BIT byte (w0 w2 w1 w3 from bit 0) in natural order (w0 w1 w2 w3). */
static inline uint32_t tc_ternary_2bit_natural(uint32_t b) {
    return (b & 0xC3u) | ((b >> 2) & 0x0Cu) | ((b << 2) & 0x30u);
}

/* The DSP variant of tc_pw_ternary_s8 (TC_TERNARY_2BIT rows, in_c >= 4). */
void tc_pw_ternary_s8_dsp(const tc_pw_ternary_params *p, const int8_t *in, const uint8_t *w,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out);

/* Internal: the SIMD variants behind the entry points above (tc_conv2d_s8_dsp.c,
 * tc_dwconv2d_s8_dsp.c, tc_fc_s8_dsp.c; only with TC_HAVE_DSP, tc_arm_dsp.h). Each is called by
 * its entry point after the argument checks, for the layers the entry point hands it. */
void tc_conv2d_s8_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out);
/* tc_conv2d_s8_first_dsp.c: first layers (groups 1, dil_w 1, in_c <= 4, a window of 2 to 64
 * values, every shift in [-23, 1]), entered at the top of tc_conv2d_s8_dsp. */
int tc_conv2d_s8_first_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift);
/* TC_CONV2D_FIRST: whether tc_conv2d_s8_dsp has that first-layer path (about 1.9 KB of M4 code,
 * linked with any convolution since the dispatch is at run time): a generated project with no
 * layer that can take it defines TC_CONV2D_FIRST=0 (tinycc/ops/conv.py conv2d_first_may_run);
 * such a layer, if one came, would take the gathered path, bit-exact. */
#ifndef TC_CONV2D_FIRST
#define TC_CONV2D_FIRST 1
#endif
/* Runs a layer tc_conv2d_s8_first_dsp_applicable accepts; 0 (nothing written) when the layer
 * needs two passes over the input and its buffers overlap. */
int tc_conv2d_s8_first_dsp(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                           int8_t *out);
/* tc_conv2d_s8_dsp.c: whether a layer takes its shallow pointwise path (1x1, unpadded, groups 1,
 * in_c <= 8, every shift in [-23, 1]); the entry point hands it such layers of any in_c. */
int tc_conv2d_s8_shallow_dsp_applicable(const tc_conv2d_params *p, const int32_t *shift);
/* tc_dwconv2d_s8_dsp.c: out of place, depth_mult == 1 and in_c >= 4 (4 channels along the
 * window); in place, one gathered channel plane c when tc_dwconv2d_s8_plane_dsp_applicable;
 * 3x3 windows of 4 channels at a time (both entry points; dwq_applicable in tc_dwconv2d_s8.c). */
void tc_dwconv2d_s8_dsp(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                        const int32_t *bias, const int32_t *mult, const int32_t *shift,
                        int8_t *out);
#define TC_DWCONV2D_PACKED_WORDS 32 /* the plane path's packed weights, words */
static inline int tc_dwconv2d_s8_plane_dsp_applicable(const tc_dwconv2d_params *p) {
    return p->dil_w == 1 && p->k_h * 2 * ((p->k_w + 3) / 4) <= TC_DWCONV2D_PACKED_WORDS;
}
void tc_dwconv2d_s8_plane_dsp(const tc_dwconv2d_params *p, const int8_t *plane,
                              const int8_t *w, const int32_t *bias, int32_t c, int32_t mult,
                              int32_t shift, int8_t *out_c);
#define TC_DWCONV2D_QUAD_PIXELS 50 /* the quad path's ring rows hold up to 50 pixels */
/* Output pixels per column tile of tc_dwconv2d_s8_quad (rows wider than the ring go by tiles). */
static inline int32_t tc_dwconv2d_s8_quad_tile(const tc_dwconv2d_params *p) {
    return (TC_DWCONV2D_QUAD_PIXELS - 3) / p->stride_w + 1;
}
void tc_dwconv2d_s8_quad(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out);

/* Any kernel size, 4 channels at a time in column tiles (tc_dwconv2d_s8_k; dwk_applicable in
 * tc_dwconv2d_s8.c): ring of TC_DWCONV2D_K_RING_WORDS words, k_h <= TC_DWCONV2D_K_MAX_ROWS,
 * k_h * k_w <= TC_DWCONV2D_K_MAX_TAPS, k_w <= the ring's pitch. */
#define TC_DWCONV2D_K_RING_WORDS 210
#define TC_DWCONV2D_K_MAX_ROWS 8
#define TC_DWCONV2D_K_MAX_TAPS 49
/* TC_DWCONV2D_K57: whether tc_dwconv2d_s8_k has its code for kernels 5 and 7 wide: the unrolled
 * 5x5 / 7x7 pixel-pair assembly (tc_dwconv2d_s8_asm.c, about 7.5 KB on GNU Thumb-2 builds) and
 * the C rows unrolled for those widths (1.4 KB). The dispatch is at run time, so all of it is
 * linked with any depthwise layer: a generated project with no layer that can take it defines
 * TC_DWCONV2D_K57=0 (tinycc/ops/conv.py dwconv2d_k57_may_run), and such a layer, if one came,
 * would run the C row for any width, bit-exact. */
#ifndef TC_DWCONV2D_K57
#define TC_DWCONV2D_K57 1
#endif
/* Output pixels per column tile of tc_dwconv2d_s8_k. */
static inline int32_t tc_dwconv2d_s8_k_tile(const tc_dwconv2d_params *p) {
    return (TC_DWCONV2D_K_RING_WORDS / p->k_h - p->k_w) / p->stride_w + 1;
}
void tc_dwconv2d_s8_k(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out);

/* Internal: the fast portable variants (TC_FAST_PORTABLE), called by their entry point after
 * the argument checks, for the layers their _applicable function accepts. */
int tc_conv2d_s8_fast_applicable(const tc_conv2d_params *p);
void tc_conv2d_s8_fast(const tc_conv2d_params *p, const int8_t *in, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int8_t *out);

int tc_dwconv2d_s8_fast_applicable(const tc_dwconv2d_params *p);
int tc_dwconv2d_s8_fast_plane_applicable(const tc_dwconv2d_params *p); /* also in place */
void tc_dwconv2d_s8_fast(const tc_dwconv2d_params *p, const int8_t *in, const int8_t *w,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out);

/* Internal (tc_dwconv2d_s8.c): the portable window sum of one depthwise output pixel, which the
 * in-place SIMD path takes at the plane's borders. */
int32_t tc_dwconv2d_tap_sum(const tc_dwconv2d_params *p, const int8_t *plane,
                            int32_t plane_stride, const int8_t *w, int32_t oc, int32_t in_y0,
                            int32_t in_x0);

/* Internal: argument checks shared by the kernels of this header. */
static inline int tc_conv_quant_args_ok(int32_t in_zp, int32_t out_zp, int32_t act_min,
                                        int32_t act_max, const int32_t *mult,
                                        const int32_t *shift, int32_t channels) {
    int32_t c;
    if (in_zp < -128 || in_zp > 127 || out_zp < -128 || out_zp > 127) return 0;
    if (act_min < -128 || act_max > 127 || act_min > act_max) return 0;
    for (c = 0; c < channels; ++c) {
        if (mult[c] < 0 || shift[c] < -31 || shift[c] > 30) return 0;
    }
    return 1;
}

/* Internal: the geometry checks of tc_conv2d_s8, shared with tc_conv2d_cb_s8 (tc_codebook.h),
 * which checks its codebook fields besides. */
static inline int tc_conv2d_args_ok(const tc_conv2d_params *p) {
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->out_c < 1) {
        return 0;
    }
    if (p->k_h < 1 || p->k_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 ||
        p->dil_w < 1 || p->pad_top < 0 || p->pad_left < 0) {
        return 0;
    }
    return p->groups >= 1 && p->in_c % p->groups == 0 && p->out_c % p->groups == 0;
}

#ifdef __cplusplus
}
#endif

#endif /* TC_CONV_H */
