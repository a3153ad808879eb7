/*
 * tinycc runtime: convolution, depthwise and fully connected kernels on codebook weights
 * (tinycc/quant/codebook.py): an int8 palette per group of output channels and bit-packed
 * indices, one row per output channel.
 *
 * The arithmetic is exactly that of tc_conv2d_s8 / tc_dwconv2d_s8 / tc_fc_s8 (tc_conv.h) on the
 * decoded int8 weights: the per-channel scale, bias and requantization are unchanged. The
 * kernels decode `tile_oc` rows at a time into the caller's scratch (the memory planner places
 * it; `<kernel>_scratch_size` bytes), never the whole tensor, then run int8 loops on them.
 *
 * Format of the codebook arguments:
 *  - palette: int8 [out_c / palette_oc][1 << bits]; output channel oc uses palette
 *    oc / palette_oc.
 *  - idx: uint8 [out_c][row_bytes], row_bytes = (depth * bits + 7) / 8, depth = the values one
 *    output channel reads (k_h * k_w * in_c / groups; k_h * k_w for depthwise, in the order
 *    (ky, kx); in_features). A row is a bit stream, least significant bit first: stream slot j
 *    holds its index in bits [j * bits, (j + 1) * bits). In each whole group of 4 values of a
 *    row, slots 0, 1, 2, 3 hold the indices of values 0, 2, 1, 3 (SXTB16's lane order); the
 *    last depth % 4 values are in order.
 * Ranges: bits in [2, 6]; palette_oc >= 1 divides out_c; 1 <= tile_oc <= out_c; the rest as
 * the int8 kernel's params.
 */
#ifndef TC_CODEBOOK_H
#define TC_CODEBOOK_H

#include "tc_conv.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Parameters of tc_conv2d_cb_s8: tc_conv2d_params' fields, then the codebook's, and band_h:
 * output rows computed per decoded tile (1 <= band_h <= out_h; see tc_conv2d_cb_s8). */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups;
    int32_t in_zp, out_zp, act_min, act_max;
    int32_t bits, palette_oc, tile_oc, band_h;
} tc_conv2d_cb_params;

/** Parameters of tc_dwconv2d_cb_s8: tc_dwconv2d_params' fields, then the codebook's. */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, depth_mult;
    int32_t in_zp, out_zp, act_min, act_max;
    int32_t bits, palette_oc, tile_oc;
} tc_dwconv2d_cb_params;

/** Parameters of tc_fc_cb_s8: tc_fc_params' fields, then the codebook's. */
typedef struct {
    int32_t rows, in_features, out_features;
    int32_t in_zp, out_zp, act_min, act_max;
    int32_t per_channel;
    int32_t bits, palette_oc, tile_oc;
} tc_fc_cb_params;

/** Bytes of scratch each kernel needs: tile_oc decoded rows of depth int8 values (for
 * tc_fc_cb_s8 at least TC_FC_CB_TABLE_BYTES where tc_fc_cb_uses_table; the scratch must then be
 * word-aligned, as the memory planner's buffers are). */
int32_t tc_conv2d_cb_s8_scratch_size(const tc_conv2d_cb_params *p);
int32_t tc_dwconv2d_cb_s8_scratch_size(const tc_dwconv2d_cb_params *p);
int32_t tc_fc_cb_s8_scratch_size(const tc_fc_cb_params *p);

/**
 * tc_conv2d_s8 (regular and grouped convolution) on codebook weights.
 * @param idx      packed indices [out_c][row_bytes] (see above)
 * @param palette  int8 palettes [out_c / palette_oc][1 << bits]
 * @param scratch  tc_conv2d_cb_s8_scratch_size(p) bytes, overlapping nothing else
 * Other parameters as tc_conv2d_s8. With tile_oc == out_c the rows are decoded once and
 * tc_conv2d_s8 runs on them (its output order, and its overlap licence).
 * Otherwise the output goes in bands of band_h rows; for each band every tile of channels is
 * decoded and computed, so output rows [r0, r0 + band_h) are written while the input is still
 * read from the band's first window row on (what bounds how far the output may overlap the
 * input: tinycc/ops/conv.py::codebook_band_overlap_delta).
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_conv2d_cb_s8(const tc_conv2d_cb_params *p, const int8_t *in, const uint8_t *idx,
                          const int8_t *palette, const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, int8_t *scratch, int8_t *out);

/**
 * tc_dwconv2d_s8 on codebook weights (a row: one output channel's k_h * k_w taps). Channels
 * are computed tile by tile, each over all output pixels.
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_dwconv2d_cb_s8(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *scratch,
                            int8_t *out);

/** Bytes of scratch tc_dwconv2d_cb_s8_inplace needs: the decoded tile, then one input channel
 * plane (in_h * in_w). */
int32_t tc_dwconv2d_cb_s8_inplace_scratch_size(const tc_dwconv2d_cb_params *p);

/**
 * tc_dwconv2d_cb_s8 that may write its output over its input (as tc_dwconv2d_s8_inplace):
 * channel by channel, each input channel plane is copied into the scratch before its output
 * channel is written. Preconditions: depth_mult == 1; out == in (then out_h * out_w <=
 * in_h * in_w, the output in the buffer's first out_h * out_w * C bytes) or no overlap at all.
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_dwconv2d_cb_s8_inplace(const tc_dwconv2d_cb_params *p, const int8_t *in,
                                    const uint8_t *idx, const int8_t *palette,
                                    const int32_t *bias, const int32_t *mult,
                                    const int32_t *shift, int8_t *scratch, int8_t *out);

/**
 * tc_fc_s8 on codebook weights (a row: one output feature's in_features weights).
 * @return TC_OK, or TC_ARG_ERROR
 */
tc_status tc_fc_cb_s8(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                      const int8_t *palette, const int32_t *bias, const int32_t *mult,
                      const int32_t *shift, int8_t *scratch, int8_t *out);

/* Internal (tc_codebook.c): rows [first, first + count) of the codebook decoded to int8, row r
 * at dst + (r - first) * depth. */
void tc_cb_decode_rows(const uint8_t *idx, const int8_t *palette, int32_t bits, int32_t depth,
                       int32_t palette_oc, int32_t first, int32_t count, int8_t *dst);

/* Internal: the index in stream slot `slot` of a row (it may straddle two bytes; never reads
 * past the row's last byte). */
static inline int32_t tc_cb_index(const uint8_t *row, int32_t slot, int32_t bits) {
    const int32_t bit = slot * bits;
    uint32_t v = row[bit >> 3];
    if ((bit & 7) + bits > 8) v |= (uint32_t)row[(bit >> 3) + 1] << 8;
    return (int32_t)((v >> (bit & 7)) & ((UINT32_C(1) << bits) - 1u));
}

/* Internal: weights per palette from which a fully connected layer with 2- or 4-bit indices
 * goes through a decode table on the DSP path (tc_fc_cb_s8_table): 256 words of scratch built
 * per palette (about 800 instructions), against 3 instructions per 2 (4-bit) or 4 (2-bit)
 * weights saved over the per-value lookup. Mirrored by tinycc/ops/dense.py. */
#define TC_FC_CB_TABLE_MIN_WEIGHTS 4096
#define TC_FC_CB_TABLE_BYTES 1024

static inline int tc_fc_cb_uses_table(const tc_fc_cb_params *p) {
    return (p->bits == 2 || p->bits == 4) && p->in_features >= 4 &&
           p->palette_oc * p->in_features >= TC_FC_CB_TABLE_MIN_WEIGHTS;
}

/* Internal (tc_fc_cb_s8_dsp.c, TC_HAVE_DSP): tc_fc_cb_s8 where tc_fc_cb_uses_table(p), table:
 * TC_FC_CB_TABLE_BYTES of word-aligned scratch. Per palette, table[b] is what index byte b
 * stands for: with 4-bit indices the packed int16 pair (palette[b & 15], palette[b >> 4]) (the
 * byte holds values 0 and 2, or 1 and 3, of a group of 4: one SMLAD operand), with 2-bit
 * indices the group's 4 int8 weights in memory order (two SXTB16 make the two operands), and
 * four output rows run against each widened input word. */
void tc_fc_cb_s8_table(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                       const int8_t *palette, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, uint32_t *table, int8_t *out);

/* Internal (tc_fc_cb_s8_dsp.c, TC_HAVE_DSP): tc_fc_cb_s8 for in_features >= 4 and bits 2 or 4
 * (or any bits with rows == 1) without decoding: each index pair is looked up straight into an
 * SMLAD operand. */
void tc_fc_cb_s8_dsp(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                     const int8_t *palette, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int8_t *out);

/* Internal: the codebook fields' checks shared by the three kernels. */
static inline int tc_cb_args_ok(int32_t bits, int32_t palette_oc, int32_t tile_oc,
                                int32_t out_c) {
    return bits >= 2 && bits <= 6 && palette_oc >= 1 && out_c % palette_oc == 0 &&
           tile_oc >= 1 && tile_oc <= out_c;
}

/* Internal (tc_conv2d_cb_s8_dsp.c, TC_HAVE_DSP): output channels [c0, c0 + n) of output rows
 * [r0, r1) of a layer with groups == 1, from their decoded rows w (depth values each). */
void tc_conv2d_cb_s8_tile_dsp(const tc_conv2d_cb_params *p, const int8_t *in, const int8_t *w,
                              int32_t c0, int32_t n, int32_t r0, int32_t r1,
                              const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              int8_t *out);

/* Internal (tc_dwconv2d_cb_s8_dsp.c, TC_HAVE_DSP): the 3x3 path of 4 channels at a time, for
 * depth_mult 1, in_c a multiple of 4, dilation 1 and rows of up to 50 pixels; same_buffer: the
 * call writes its output over its input (then only where the row order keeps that safe). */
int tc_dwconv2d_cb_s8_quad_applicable(const tc_dwconv2d_cb_params *p, int same_buffer);
void tc_dwconv2d_cb_s8_quad(const tc_dwconv2d_cb_params *p, const int8_t *in,
                            const uint8_t *idx, const int8_t *palette, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TC_CODEBOOK_H */
