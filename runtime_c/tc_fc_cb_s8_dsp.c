/*
 * tinycc runtime: the SIMD variant of tc_fc_cb_s8 (ARMv7E-M DSP extension, or its host
 * emulation), bit-exact with the portable reference in tc_fc_cb_s8.c: 2- and 4-bit indices,
 * and 3-, 5- and 6-bit ones for a single input row.
 *
 * A fully connected layer uses each weight once per input row, so decoding the weights first
 * costs as much as the products. Here the weights are never decoded: the index order of a row
 * (values 0, 2, 1, 3 of each group of 4, tc_codebook.h) is SXTB16's lane order, so the two
 * indices in a slot pair give, through the palette, the packed int16 pair (w0, w2) or (w1, w3)
 * that SMLAD multiplies with the input pair (x0, x2) or (x1, x3) from SXTAB16. 2-bit rows go
 * through a 16-entry table (a nibble = two indices -> a packed pair), built once per palette.
 * 4-bit rows multiply each palette value with SMLABB/SMLATB against one lane of the widened
 * input pair (no packing), two output rows at a time for a single input row (fc_cb_dot4x2: the
 * input widened once for both).
 * Other widths read a group's 4 indices as one word (fc_cb_dotn); with several input rows those
 * decode the rows instead (tc_fc_cb_s8.c), which then serve every input row.
 * Where a 2- or 4-bit palette serves enough weights (tc_fc_cb_uses_table: fully connected
 * palettes are shared by many rows, quant/codebook.py fc_palette_channels), tc_fc_cb_s8_table
 * first builds a 256-word table per palette in the scratch: an index byte is then one load
 * giving an SMLAD operand (4-bit) or the group's 4 int8 weights (2-bit, as tc_fc_s8 reads them),
 * 6 instructions per 4 weights and row, and four rows share each widened input word (the int8
 * kernel's 1x4 block spends 5).
 */
#include "tc_codebook.h"
#include "tc_dot_s8_dsp.h"

#include <stddef.h>

#if TC_HAVE_DSP

/* The row's last n % 4 values (stored in order) against x. */
static int32_t fc_cb_tail(const int8_t *x, const uint8_t *row, const int8_t *pal, int32_t bits,
                          int32_t n, int32_t in_zp, int32_t acc) {
    int32_t j;
    for (j = n & ~3; j < n; ++j) acc += ((int32_t)x[j] - in_zp) * pal[tc_cb_index(row, j, bits)];
    return acc;
}

/* The row's index bytes [at, at + 4) as one word (callers keep it inside the row). */
static inline uint32_t fc_cb_index_word(const uint8_t *row) {
    return tc_read_s8x4((const int8_t *)(const void *)row);
}

/* x . row for 4-bit indices: a group of 4 values is two bytes, (v0, v2) and (v1, v3), low
 * nibble first; two groups are one index word. A palette value loaded sign-extended holds its
 * int16 weight in its low halfword: SMLABB / SMLATB multiply it with the even / odd lane of the
 * widened input pair, so no pair is packed (3 instructions per MAC: extract, load, multiply). */
static TC_DSP_NOINLINE int32_t fc_cb_dot4(const int8_t *x, const uint8_t *row, const int8_t *pal,
                                          int32_t n, int32_t in_zp) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    const int8_t *x0 = x;
    const uint8_t *r = row;
    int32_t acc = 0, g;
    for (g = n >> 3; g > 0; --g) {
        const uint32_t iw = fc_cb_index_word(r);
        const uint32_t xa = tc_read_s8x4(x0), xb = tc_read_s8x4(x0 + 4);
        uint32_t xe = tc_sxtab16(offset, xa), xo = tc_sxtab16_ror8(offset, xa);
        acc = tc_smlabb(xe, (uint32_t)(int32_t)pal[iw & 15u], acc);
        acc = tc_smlatb(xe, (uint32_t)(int32_t)pal[(iw >> 4) & 15u], acc);
        acc = tc_smlabb(xo, (uint32_t)(int32_t)pal[(iw >> 8) & 15u], acc);
        acc = tc_smlatb(xo, (uint32_t)(int32_t)pal[(iw >> 12) & 15u], acc);
        xe = tc_sxtab16(offset, xb);
        xo = tc_sxtab16_ror8(offset, xb);
        acc = tc_smlabb(xe, (uint32_t)(int32_t)pal[(iw >> 16) & 15u], acc);
        acc = tc_smlatb(xe, (uint32_t)(int32_t)pal[(iw >> 20) & 15u], acc);
        acc = tc_smlabb(xo, (uint32_t)(int32_t)pal[(iw >> 24) & 15u], acc);
        acc = tc_smlatb(xo, (uint32_t)(int32_t)pal[iw >> 28], acc);
        x0 += 8;
        r += 4;
    }
    if (n & 4) { /* a last whole group: two bytes */
        const uint32_t xa = tc_read_s8x4(x0);
        const uint32_t xe = tc_sxtab16(offset, xa), xo = tc_sxtab16_ror8(offset, xa);
        const uint32_t b0 = r[0], b1 = r[1];
        acc = tc_smlabb(xe, (uint32_t)(int32_t)pal[b0 & 15u], acc);
        acc = tc_smlatb(xe, (uint32_t)(int32_t)pal[b0 >> 4], acc);
        acc = tc_smlabb(xo, (uint32_t)(int32_t)pal[b1 & 15u], acc);
        acc = tc_smlatb(xo, (uint32_t)(int32_t)pal[b1 >> 4], acc);
    }
    return fc_cb_tail(x, row, pal, 4, n, in_zp, acc);
}

/* fc_cb_dot4 for two rows at once (rows 1 and 2 of the weights, palettes 1 and 2): each input
 * word is widened once for both (the input side costs half as much per MAC). acc[k] += x . row k. */
static TC_DSP_NOINLINE void fc_cb_dot4x2(const int8_t *x, const uint8_t *row0, const uint8_t *row1,
                                         const int8_t *pal0, const int8_t *pal1, int32_t n,
                                         int32_t in_zp, int32_t acc[2]) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    const int8_t *x0 = x;
    const uint8_t *r0 = row0, *r1 = row1;
    int32_t a0 = 0, a1 = 0, g;
    for (g = n >> 3; g > 0; --g) {
        const uint32_t i0 = fc_cb_index_word(r0), i1 = fc_cb_index_word(r1);
        const uint32_t xa = tc_read_s8x4(x0);
        uint32_t xe = tc_sxtab16(offset, xa), xo = tc_sxtab16_ror8(offset, xa);
        a0 = tc_smlabb(xe, (uint32_t)(int32_t)pal0[i0 & 15u], a0);
        a1 = tc_smlabb(xe, (uint32_t)(int32_t)pal1[i1 & 15u], a1);
        a0 = tc_smlatb(xe, (uint32_t)(int32_t)pal0[(i0 >> 4) & 15u], a0);
        a1 = tc_smlatb(xe, (uint32_t)(int32_t)pal1[(i1 >> 4) & 15u], a1);
        a0 = tc_smlabb(xo, (uint32_t)(int32_t)pal0[(i0 >> 8) & 15u], a0);
        a1 = tc_smlabb(xo, (uint32_t)(int32_t)pal1[(i1 >> 8) & 15u], a1);
        a0 = tc_smlatb(xo, (uint32_t)(int32_t)pal0[(i0 >> 12) & 15u], a0);
        a1 = tc_smlatb(xo, (uint32_t)(int32_t)pal1[(i1 >> 12) & 15u], a1);
        {
            const uint32_t xb = tc_read_s8x4(x0 + 4);
            xe = tc_sxtab16(offset, xb);
            xo = tc_sxtab16_ror8(offset, xb);
        }
        a0 = tc_smlabb(xe, (uint32_t)(int32_t)pal0[(i0 >> 16) & 15u], a0);
        a1 = tc_smlabb(xe, (uint32_t)(int32_t)pal1[(i1 >> 16) & 15u], a1);
        a0 = tc_smlatb(xe, (uint32_t)(int32_t)pal0[(i0 >> 20) & 15u], a0);
        a1 = tc_smlatb(xe, (uint32_t)(int32_t)pal1[(i1 >> 20) & 15u], a1);
        a0 = tc_smlabb(xo, (uint32_t)(int32_t)pal0[(i0 >> 24) & 15u], a0);
        a1 = tc_smlabb(xo, (uint32_t)(int32_t)pal1[(i1 >> 24) & 15u], a1);
        a0 = tc_smlatb(xo, (uint32_t)(int32_t)pal0[i0 >> 28], a0);
        a1 = tc_smlatb(xo, (uint32_t)(int32_t)pal1[i1 >> 28], a1);
        x0 += 8;
        r0 += 4;
        r1 += 4;
    }
    /* the last n % 8 values of each row: fc_cb_dot4's tail, from the first value after the words */
    {
        const int32_t done = n & ~7;
        acc[0] = a0 + fc_cb_dot4(x + done, row0 + (done >> 1), pal0, n - done, in_zp);
        acc[1] = a1 + fc_cb_dot4(x + done, row1 + (done >> 1), pal1, n - done, in_zp);
    }
}

/* x . row for 2-bit indices: a group of 4 values is one byte, whose low nibble holds (v0, v2)
 * and high nibble (v1, v3); pairs[nibble] is their packed int16 pair. Four groups are one index
 * word. */
static TC_DSP_NOINLINE int32_t fc_cb_dot2(const int8_t *x, const uint8_t *row,
                                          const uint32_t pairs[16], const int8_t *pal, int32_t n,
                                          int32_t in_zp) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    const int8_t *x0 = x;
    const uint8_t *r = row;
    int32_t acc = 0, g;
    for (g = n >> 4; g > 0; --g) {
        const uint32_t iw = fc_cb_index_word(r);
        uint32_t xw = tc_read_s8x4(x0);
        acc = tc_smlad(tc_sxtab16(offset, xw), pairs[iw & 15u], acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), pairs[(iw >> 4) & 15u], acc);
        xw = tc_read_s8x4(x0 + 4);
        acc = tc_smlad(tc_sxtab16(offset, xw), pairs[(iw >> 8) & 15u], acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), pairs[(iw >> 12) & 15u], acc);
        xw = tc_read_s8x4(x0 + 8);
        acc = tc_smlad(tc_sxtab16(offset, xw), pairs[(iw >> 16) & 15u], acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), pairs[(iw >> 20) & 15u], acc);
        xw = tc_read_s8x4(x0 + 12);
        acc = tc_smlad(tc_sxtab16(offset, xw), pairs[(iw >> 24) & 15u], acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), pairs[iw >> 28], acc);
        x0 += 16;
        r += 4;
    }
    for (g = (n >> 2) & 3; g > 0; --g) {
        const uint32_t xw = tc_read_s8x4(x0);
        const uint32_t b = *r++;
        acc = tc_smlad(tc_sxtab16(offset, xw), pairs[b & 15u], acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw), pairs[b >> 4], acc);
        x0 += 4;
    }
    return fc_cb_tail(x, row, pal, 2, n, in_zp, acc);
}

/* pairs[k] = (palette[k & 3], palette[k >> 2]) packed: the 4 low halves in registers, one OR
 * per entry, written out (gcc keeps a loop here: 13 instructions per entry, which with a palette
 * per 128-value row cost as much as the row's products). */
static void fc_cb_pair_table(const int8_t *pal, uint32_t pairs[16]) {
    const uint32_t l0 = tc_pack_s16x2(pal[0], 0), l1 = tc_pack_s16x2(pal[1], 0);
    const uint32_t l2 = tc_pack_s16x2(pal[2], 0), l3 = tc_pack_s16x2(pal[3], 0);
    int32_t h;
    for (h = 0; h < 4; ++h) {
        const uint32_t hi = tc_pack_s16x2(0, pal[h]);
        uint32_t *t = pairs + 4 * h;
        t[0] = l0 | hi;
        t[1] = l1 | hi;
        t[2] = l2 | hi;
        t[3] = l3 | hi;
    }
}

/* x . row for 3-, 5- and 6-bit indices: the 4 indices of a whole group (stream slots 4g..4g+3:
 * values 0, 2, 1, 3) are the 4 * bits bits from bit 4g * bits on, at most 31 bits from the
 * group's first byte: one word, read whole where it lies inside the row, byte by byte at its
 * end (never past the row's last byte). */
static inline int32_t fc_cb_dotn(const int8_t *x, const uint8_t *row, const int8_t *pal,
                                 int32_t bits, int32_t n, int32_t row_bytes, int32_t in_zp) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    const uint32_t mask = (UINT32_C(1) << bits) - 1u;
    const int32_t groups = n >> 2;
    int32_t acc = 0, g, k, bit = 0;
    for (g = 0; g < groups; ++g, bit += 4 * bits) {
        const int32_t at = bit >> 3;
        const uint32_t xw = tc_read_s8x4(x + 4 * g);
        uint32_t v;
        if (at + 4 <= row_bytes) {
            v = tc_read_s8x4((const int8_t *)(const void *)(row + at));
        } else {
            for (v = 0, k = 0; at + k < row_bytes; ++k) v |= (uint32_t)row[at + k] << (8 * k);
        }
        v >>= bit & 7;
        acc = tc_smlad(tc_sxtab16(offset, xw),
                       tc_pack_s16x2(pal[v & mask], pal[(v >> bits) & mask]), acc);
        acc = tc_smlad(tc_sxtab16_ror8(offset, xw),
                       tc_pack_s16x2(pal[(v >> (2 * bits)) & mask], pal[(v >> (3 * bits)) & mask]),
                       acc);
    }
    return fc_cb_tail(x, row, pal, bits, n, in_zp, acc);
}

/* fc_cb_dotn with the width a constant (shifts and masks become bit-field extracts). */
static TC_DSP_NOINLINE int32_t fc_cb_dot3(const int8_t *x, const uint8_t *row, const int8_t *pal,
                                          int32_t n, int32_t row_bytes, int32_t in_zp) {
    return fc_cb_dotn(x, row, pal, 3, n, row_bytes, in_zp);
}
static TC_DSP_NOINLINE int32_t fc_cb_dot5(const int8_t *x, const uint8_t *row, const int8_t *pal,
                                          int32_t n, int32_t row_bytes, int32_t in_zp) {
    return fc_cb_dotn(x, row, pal, 5, n, row_bytes, in_zp);
}
static TC_DSP_NOINLINE int32_t fc_cb_dot6(const int8_t *x, const uint8_t *row, const int8_t *pal,
                                          int32_t n, int32_t row_bytes, int32_t in_zp) {
    return fc_cb_dotn(x, row, pal, 6, n, row_bytes, in_zp);
}

/* ---- tc_fc_cb_s8_table: one decode table per palette, four output rows per input word ---- */

/* 4-bit: t[b] = the packed int16 pair (pal[b & 15], pal[b >> 4]). */
static void fc_cb_table4(const int8_t *pal, uint32_t *t) {
    uint32_t lo[16];
    int32_t h, l;
    for (l = 0; l < 16; ++l) lo[l] = tc_pack_s16x2(pal[l], 0);
    for (h = 0; h < 16; ++h, t += 16) {
        const uint32_t hi = tc_pack_s16x2(0, pal[h]);
        for (l = 0; l < 16; l += 4) {
            t[l] = lo[l] | hi;
            t[l + 1] = lo[l + 1] | hi;
            t[l + 2] = lo[l + 2] | hi;
            t[l + 3] = lo[l + 3] | hi;
        }
    }
}

/* 2-bit: t[b] = the int8 weights (w0, w1, w2, w3) of index byte b as a little-endian word; the
 * byte's 2-bit fields from the lowest are the indices of w0, w2, w1, w3. */
static void fc_cb_table2(const int8_t *pal, uint32_t *t) {
    uint32_t byte0[4], byte1[4], byte2[4], byte3[4];
    int32_t k, i3, i1, i2;
    for (k = 0; k < 4; ++k) {
        const uint32_t v = (uint32_t)(uint8_t)pal[k];
        byte0[k] = v;
        byte1[k] = v << 8;
        byte2[k] = v << 16;
        byte3[k] = v << 24;
    }
    for (i3 = 0; i3 < 4; ++i3) {
        for (i1 = 0; i1 < 4; ++i1) {
            const uint32_t high = byte3[i3] | byte1[i1];
            for (i2 = 0; i2 < 4; ++i2, t += 4) {
                const uint32_t w = high | byte2[i2];
                t[0] = w | byte0[0];
                t[1] = w | byte0[1];
                t[2] = w | byte0[2];
                t[3] = w | byte0[3];
            }
        }
    }
}

/* The products of one index byte b (values 0..3 of a group against xe = (x0, x2), xo = (x1, x3)):
 * 4-bit, two bytes per group (b0: values 0, 2; b1: values 1, 3); 2-bit, one byte per group. */
#define FC_CB_T4(acc, b0, b1) acc = tc_smlad(xo, t[b1], tc_smlad(xe, t[b0], acc))
#define FC_CB_T2(acc, b)                                                                      \
    do {                                                                                      \
        const uint32_t w_ = t[b];                                                             \
        acc = tc_smlad(xo, tc_sxtb16_ror8(w_), tc_smlad(xe, tc_sxtb16(w_), acc));            \
    } while (0)

/* One group of 4 inputs (x advances by 4) against the next index bytes of rows r0..r3 (4-bit:
 * two bytes each, 2-bit: one), read with post-increment so that no pointer update is spent. */
#define FC_CB_X4_STEP(T)                                                                      \
    do {                                                                                      \
        const uint32_t xw = tc_read_s8x4(x);                                                  \
        const uint32_t xe = tc_sxtab16(offset, xw), xo = tc_sxtab16_ror8(offset, xw);        \
        x += 4;                                                                               \
        T(a0, r0);                                                                            \
        T(a1, r1);                                                                            \
        T(a2, r2);                                                                            \
        T(a3, r3);                                                                            \
    } while (0)
#define FC_CB_ROW4(acc, r)                                                                    \
    do {                                                                                      \
        const uint32_t b0_ = *r++;                                                            \
        const uint32_t b1_ = *r++;                                                            \
        FC_CB_T4(acc, b0_, b1_);                                                              \
    } while (0)
#define FC_CB_ROW2(acc, r) FC_CB_T2(acc, *r++)

/* The x4 loops by hand where gcc can give them 14 registers (when optimising; clang 14 cannot
 * allocate them, see tc_conv2d_cb_s8_dsp.c): each index byte read with a post-incremented load,
 * the loop's end compared from memory. gcc 12 addresses a row's bytes from one pointer and adds
 * to all four per step, and spills; by hand 16 inputs x 4 rows (64 MACs) are 111 instructions
 * at 4 bits and 115 at 2 bits (the input offset reloaded), against about 124 from the C. Same products in the same order as the C loops. */
#if TC_DSP_ASM && defined(__OPTIMIZE__) && !defined(__clang__)
#define FC_CB_LOOP_ASM 1
#else
#define FC_CB_LOOP_ASM 0
#endif

#if FC_CB_LOOP_ASM
/* 4 inputs widened: xe = (x0, x2), xo = (x1, x3) minus in_zp; `o` names the offset register. */
#define FC_CB_ASM_WIDEN(o)                                                                    \
    "ldr %[b], [%[x]], #4\n\t"                                                                \
    "sxtab16 %[xe], %[" o "], %[b]\n\t"                                                       \
    "sxtab16 %[xo], %[" o "], %[b], ror #8\n\t"
/* 4-bit: row p's next two index bytes, each one table load and one SMLAD. */
#define FC_CB_ASM_ROW4(a, p)                                                                  \
    "ldrb %[b], [%[" p "]], #1\n\t"                                                           \
    "ldr %[b], [%[t], %[b], lsl #2]\n\t"                                                      \
    "smlad %[" a "], %[xe], %[b], %[" a "]\n\t"                                               \
    "ldrb %[b], [%[" p "]], #1\n\t"                                                           \
    "ldr %[b], [%[t], %[b], lsl #2]\n\t"                                                      \
    "smlad %[" a "], %[xo], %[b], %[" a "]\n\t"
/* 2-bit: row p's next index byte: the group's 4 weights, split into lanes (0, 2) and (1, 3). */
#define FC_CB_ASM_ROW2(a, p)                                                                  \
    "ldrb %[b], [%[" p "]], #1\n\t"                                                           \
    "ldr %[b], [%[t], %[b], lsl #2]\n\t"                                                      \
    "sxtb16 %[e], %[b]\n\t"                                                                   \
    "sxtb16 %[b], %[b], ror #8\n\t"                                                           \
    "smlad %[" a "], %[xe], %[e], %[" a "]\n\t"                                               \
    "smlad %[" a "], %[xo], %[b], %[" a "]\n\t"
#define FC_CB_ASM_ROWS(ROW) ROW("a0", "p0") ROW("a1", "p1") ROW("a2", "p2") ROW("a3", "p3")
#define FC_CB_ASM_LOOP_END                                                                    \
    "ldr %[b], %[end]\n\t"                                                                    \
    "cmp %[x], %[b]\n\t"                                                                      \
    "bne 1b\n\t"
#endif

/* Whether every output of the layer may be requantized by tc_dsp_rq (shifts in [-23, -2], no
 * fused clamp): then 4 outputs cost about 60 instructions instead of about 120 through
 * tc_dsp_output's general arithmetic (left shifts, clamps), a tenth of a 4-row block of 128
 * inputs. */
static int fc_cb_rq_applies(const tc_fc_cb_params *p, const tc_dsp_requant *q) {
    return p->act_min == -128 && p->act_max == 127 &&
           tc_dsp_rq_applies_all(q->shift, p->per_channel ? p->out_features : 1);
}

/* The 4-row blocks of one palette's rows against one input row: blocks of rows o, o + 1, o + 2,
 * o + 3 (index rows from `row` on, outputs from y on), one call for all of them so that the
 * per-block work is the loop's and the requantization's only (a call per block cost about 50
 * instructions, a tenth of a block of 128 inputs). */
typedef struct {
    const int8_t *x;        /* the input row */
    const uint8_t *row;     /* row o's indices */
    const uint32_t *t;      /* the palette's decode table */
    const int8_t *pal;      /* the palette (the tail values) */
    const tc_dsp_requant *q;
    int8_t *y;              /* output o */
    int32_t row_bytes, n, in_zp, bits, o, blocks, rq;
} fc_cb_blocks;

/* acc[k] += the last n % 4 values of row k, then the block's 4 outputs: all four computed
 * before the first is stored, since an int8 store may alias the parameters (gcc would reload
 * them after each). */
static TC_DSP_NOINLINE void fc_cb_block_outputs(const fc_cb_blocks *b, const uint8_t *row,
                                                int32_t o, int8_t *y, int32_t acc[4]) {
    const tc_dsp_requant *q = b->q;
    int32_t k, v[4];
    if (b->n & 3) {
        for (k = 0; k < 4; ++k) {
            acc[k] = fc_cb_tail(b->x, row + k * b->row_bytes, b->pal, b->bits, b->n, b->in_zp, acc[k]);
        }
    }
    if (b->rq) {
        /* == tc_dsp_output(q, o + k, acc[k]) (fc_cb_rq_applies), written out: gcc keeps a
         * loop over k and its array in memory */
        const int32_t *bias = q->bias, *mult = q->mult, *shift = q->shift;
        const int32_t mask = q->channel_mask, out_zp = q->out_zp;
        const int32_t m0 = o & mask, m1 = (o + 1) & mask, m2 = (o + 2) & mask, m3 = (o + 3) & mask;
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        if (bias != NULL) {
            a0 = (int32_t)((uint32_t)a0 + (uint32_t)bias[o]);
            a1 = (int32_t)((uint32_t)a1 + (uint32_t)bias[o + 1]);
            a2 = (int32_t)((uint32_t)a2 + (uint32_t)bias[o + 2]);
            a3 = (int32_t)((uint32_t)a3 + (uint32_t)bias[o + 3]);
        }
        v[0] = tc_dsp_rq(a0, mult[m0], tc_dsp_rq_khi(shift[m0], out_zp), -shift[m0] - 1);
        v[1] = tc_dsp_rq(a1, mult[m1], tc_dsp_rq_khi(shift[m1], out_zp), -shift[m1] - 1);
        v[2] = tc_dsp_rq(a2, mult[m2], tc_dsp_rq_khi(shift[m2], out_zp), -shift[m2] - 1);
        v[3] = tc_dsp_rq(a3, mult[m3], tc_dsp_rq_khi(shift[m3], out_zp), -shift[m3] - 1);
    } else {
        for (k = 0; k < 4; ++k) v[k] = tc_dsp_output(q, o + k, acc[k]);
    }
    y[0] = (int8_t)v[0];
    y[1] = (int8_t)v[1];
    y[2] = (int8_t)v[2];
    y[3] = (int8_t)v[3];
}

/* Every block: acc[k] = x . row k over the whole groups of 4 (with the assembly 4 groups per
 * iteration, the loop's end test over 64 products, the rest group by group in C). The 2-bit loop
 * has no register left for the input offset: it reloads it for each input word. */
static TC_DSP_NOINLINE void fc_cb_table_blocks(const fc_cb_blocks *b) {
    const uint32_t offset = tc_dsp_input_offset(b->in_zp);
    const uint32_t *const t = b->t;
    const int32_t row_bytes = b->row_bytes, groups = b->n >> 2, four_bits = b->bits == 4;
    const uint8_t *row = b->row;
    int8_t *y = b->y;
    int32_t blk, o = b->o;
    for (blk = 0; blk < b->blocks; ++blk, row += 4 * row_bytes, o += 4, y += 4) {
        const uint8_t *r0 = row, *r1 = row + row_bytes, *r2 = r1 + row_bytes, *r3 = r2 + row_bytes;
        const int8_t *x = b->x;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, g = groups, acc[4];
#if FC_CB_LOOP_ASM
        if (g >= 4 && four_bits) {
            const int8_t *const end = x + 16 * (g >> 2);
            uint32_t w, xe, xo;
            __asm__ volatile("1:\n\t"
                             FC_CB_ASM_WIDEN("off") FC_CB_ASM_ROWS(FC_CB_ASM_ROW4)
                             FC_CB_ASM_WIDEN("off") FC_CB_ASM_ROWS(FC_CB_ASM_ROW4)
                             FC_CB_ASM_WIDEN("off") FC_CB_ASM_ROWS(FC_CB_ASM_ROW4)
                             FC_CB_ASM_WIDEN("off") FC_CB_ASM_ROWS(FC_CB_ASM_ROW4)
                             FC_CB_ASM_LOOP_END
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p0] "+r"(r0),
                               [p1] "+r"(r1), [p2] "+r"(r2), [p3] "+r"(r3), [x] "+r"(x), [b] "=&r"(w),
                               [xe] "=&r"(xe), [xo] "=&r"(xo)
                             : [t] "r"(t), [off] "r"(offset), [end] "m"(end)
                             : "cc", "memory");
            g &= 3;
        } else if (g >= 4) {
            const int8_t *const end = x + 16 * (g >> 2);
            uint32_t w, e, xe, xo;
            __asm__ volatile("1:\n\t"
                             "ldr %[e], %[off]\n\t" FC_CB_ASM_WIDEN("e") FC_CB_ASM_ROWS(FC_CB_ASM_ROW2)
                             "ldr %[e], %[off]\n\t" FC_CB_ASM_WIDEN("e") FC_CB_ASM_ROWS(FC_CB_ASM_ROW2)
                             "ldr %[e], %[off]\n\t" FC_CB_ASM_WIDEN("e") FC_CB_ASM_ROWS(FC_CB_ASM_ROW2)
                             "ldr %[e], %[off]\n\t" FC_CB_ASM_WIDEN("e") FC_CB_ASM_ROWS(FC_CB_ASM_ROW2)
                             FC_CB_ASM_LOOP_END
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p0] "+r"(r0),
                               [p1] "+r"(r1), [p2] "+r"(r2), [p3] "+r"(r3), [x] "+r"(x), [b] "=&r"(w),
                               [e] "=&r"(e), [xe] "=&r"(xe), [xo] "=&r"(xo)
                             : [t] "r"(t), [off] "m"(offset), [end] "m"(end)
                             : "cc", "memory");
            g &= 3;
        }
#endif
        for (; g > 0; --g) {
            if (four_bits) {
                FC_CB_X4_STEP(FC_CB_ROW4);
            } else {
                FC_CB_X4_STEP(FC_CB_ROW2);
            }
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
        fc_cb_block_outputs(b, row, o, y, acc);
    }
}

/* x . row over the whole groups of 4, one row. */
static TC_DSP_NOINLINE int32_t fc_cb_table_x1(const int8_t *x, const uint8_t *row, int32_t bits,
                                              const uint32_t *t, int32_t n, int32_t in_zp) {
    const uint32_t offset = tc_dsp_input_offset(in_zp);
    int32_t acc = 0, g;
    for (g = n >> 2; g > 0; --g) {
        const uint32_t xw = tc_read_s8x4(x);
        const uint32_t xe = tc_sxtab16(offset, xw), xo = tc_sxtab16_ror8(offset, xw);
        if (bits == 4) {
            FC_CB_T4(acc, row[0], row[1]);
            row += 2;
        } else {
            FC_CB_T2(acc, *row++);
        }
        x += 4;
    }
    return acc;
}

void tc_fc_cb_s8_table(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                       const int8_t *palette, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, uint32_t *table, int8_t *out) {
    /* the parameters in locals: the int8 stores through out may alias *p, which gcc would
     * otherwise reload after each output */
    const int32_t n = p->in_features, bits = p->bits, row_bytes = (n * bits + 7) >> 3;
    const int32_t rows = p->rows, out_f = p->out_features, in_zp = p->in_zp;
    const int32_t palette_oc = p->palette_oc;
    tc_dsp_requant q = tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    fc_cb_blocks b;
    int32_t g0, o, r;
    if (!p->per_channel) q.channel_mask = 0;
    b.t = table;
    b.q = &q;
    b.row_bytes = row_bytes;
    b.n = n;
    b.in_zp = in_zp;
    b.bits = bits;
    b.rq = fc_cb_rq_applies(p, &q);
    for (g0 = 0; g0 < out_f; g0 += palette_oc) { /* a palette: its table */
        const int8_t *pal = palette + ((g0 / palette_oc) << bits);
        const int32_t end = g0 + palette_oc;
        if (bits == 4) {
            fc_cb_table4(pal, table);
        } else {
            fc_cb_table2(pal, table);
        }
        b.pal = pal;
        b.row = idx + g0 * row_bytes;
        b.o = g0;
        b.blocks = palette_oc >> 2;
        for (r = 0; r < rows; ++r) {
            b.x = in + r * n;
            b.y = out + r * out_f + g0;
            fc_cb_table_blocks(&b);
        }
        o = g0 + 4 * b.blocks;
        for (; o < end; ++o) {
            const uint8_t *row = idx + o * row_bytes;
            for (r = 0; r < rows; ++r) {
                const int8_t *x = in + r * n;
                const int32_t acc = fc_cb_table_x1(x, row, bits, table, n, in_zp);
                out[r * out_f + o] = tc_dsp_output(&q, o, fc_cb_tail(x, row, pal, bits, n, in_zp, acc));
            }
        }
    }
}

void tc_fc_cb_s8_dsp(const tc_fc_cb_params *p, const int8_t *in, const uint8_t *idx,
                     const int8_t *palette, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int8_t *out) {
    const int32_t n = p->in_features, row_bytes = (n * p->bits + 7) >> 3;
    tc_dsp_requant q = tc_dsp_make_requant(bias, mult, shift, p->out_zp, p->act_min, p->act_max);
    uint32_t pairs[16];
    int32_t o, r, group = -1;
    if (!p->per_channel) q.channel_mask = 0;
    o = 0;
    if (p->bits == 4 && p->rows == 1) { /* output pairs: one input word widened for both rows */
        for (; o + 2 <= p->out_features; o += 2) {
            int32_t acc[2];
            fc_cb_dot4x2(in, idx + o * row_bytes, idx + (o + 1) * row_bytes,
                         palette + ((o / p->palette_oc) << 4),
                         palette + (((o + 1) / p->palette_oc) << 4), n, p->in_zp, acc);
            out[o] = tc_dsp_output(&q, o, acc[0]);
            out[o + 1] = tc_dsp_output(&q, o + 1, acc[1]);
        }
    }
    for (; o < p->out_features; ++o) {
        const uint8_t *row = idx + o * row_bytes;
        const int8_t *pal = palette + ((o / p->palette_oc) << p->bits);
        if (p->bits == 2 && o / p->palette_oc != group) { /* a new palette: its pair table */
            group = o / p->palette_oc;
            fc_cb_pair_table(pal, pairs);
        }
        for (r = 0; r < p->rows; ++r) {
            const int8_t *x = in + r * n;
            const int32_t acc =
                p->bits == 4   ? fc_cb_dot4(x, row, pal, n, p->in_zp)
                : p->bits == 2 ? fc_cb_dot2(x, row, pairs, pal, n, p->in_zp)
                : p->bits == 3 ? fc_cb_dot3(x, row, pal, n, row_bytes, p->in_zp)
                : p->bits == 5 ? fc_cb_dot5(x, row, pal, n, row_bytes, p->in_zp)
                               : fc_cb_dot6(x, row, pal, n, row_bytes, p->in_zp);
            out[r * p->out_features + o] = tc_dsp_output(&q, o, acc);
        }
    }
}

#endif /* TC_HAVE_DSP */
