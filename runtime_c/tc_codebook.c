/*
 * tinycc runtime: decoding codebook rows (format: tc_codebook.h). Mirrored by
 * tinycc/quant/codebook.py (pack_indices / CodebookWeights.decode).
 */
#include "tc_arm_dsp.h" /* TC_HAVE_DSP: little-endian words */
#include "tc_codebook.h"

#include <string.h>

/* Rows decoded a word at a time (little-endian words: the DSP targets and their emulation);
 * size builds keep the smaller byte loops. */
#if TC_HAVE_DSP && !defined(TC_OPTIMIZE_SIZE)
#define CB_WORD_DECODE 1
#else
#define CB_WORD_DECODE 0
#endif

/* The value of a row held in stream slot `slot`: 0, 2, 1, 3 within whole groups of 4. */
static int32_t cb_value_of_slot(int32_t slot, int32_t depth) {
    if ((slot | 3) < depth) return (slot & ~3) | ((slot & 1) << 1) | ((slot >> 1) & 1);
    return slot;
}

/* One row, any width, slot by slot (the reference; also the tails of the fast paths). */
static void cb_decode_slots(const uint8_t *row, const int8_t *pal, int32_t bits, int32_t depth,
                            int32_t from, int8_t *dst) {
    int32_t j;
    for (j = from; j < depth; ++j) dst[cb_value_of_slot(j, depth)] = pal[tc_cb_index(row, j, bits)];
}

#if CB_WORD_DECODE
/* Groups 2k and 2k + 1 of a 4-bit row from one word of indices (little-endian: byte i of the
 * word is row[i]), each group's four values written as one word: 3.5 instructions per value on
 * Cortex-M4 against 4.75 byte by byte, for the tiles decoded once per output row or two. */
static void cb_decode_row4_words(const uint8_t *row, const int8_t *pal, int32_t pairs,
                                 int8_t *dst) {
    const uint8_t *u = (const uint8_t *)pal; /* the palette's bytes, placed with shifts */
    int32_t k;
    for (k = 0; k < pairs; ++k) {
        uint32_t v, w0, w1;
        memcpy(&v, row + 4 * k, 4);
        w0 = (uint32_t)u[v & 15u] | (uint32_t)u[(v >> 8) & 15u] << 8 |
             (uint32_t)u[(v >> 4) & 15u] << 16 | (uint32_t)u[(v >> 12) & 15u] << 24;
        w1 = (uint32_t)u[(v >> 16) & 15u] | (uint32_t)u[(v >> 24) & 15u] << 8 |
             (uint32_t)u[(v >> 20) & 15u] << 16 | (uint32_t)u[v >> 28] << 24;
        memcpy(dst + 8 * k, &w0, 4);
        memcpy(dst + 8 * k + 4, &w1, 4);
    }
}
#endif

/* 4-bit rows: a whole group of 4 values is two bytes, (v0, v2) and (v1, v3), low nibble first. */
static void cb_decode_row4(const uint8_t *row, const int8_t *pal, int32_t depth, int8_t *dst) {
    const int32_t groups = depth >> 2;
    int32_t g = 0;
#if CB_WORD_DECODE
    cb_decode_row4_words(row, pal, groups >> 1, dst);
    g = groups & ~1;
#endif
    for (; g < groups; ++g) {
        const uint32_t b0 = row[2 * g], b1 = row[2 * g + 1];
        dst[4 * g] = pal[b0 & 15u];
        dst[4 * g + 2] = pal[b0 >> 4];
        dst[4 * g + 1] = pal[b1 & 15u];
        dst[4 * g + 3] = pal[b1 >> 4];
    }
    cb_decode_slots(row, pal, 4, depth, 4 * groups, dst);
}

#if CB_WORD_DECODE
/* The four values of the 2-bit group in bits [s, s + 8) of v, as one word (bytes v0..v3). */
static inline uint32_t cb_group2_word(const uint8_t *u, uint32_t v, int s) {
    return (uint32_t)u[(v >> s) & 3u] | (uint32_t)u[(v >> (s + 4)) & 3u] << 8 |
           (uint32_t)u[(v >> (s + 2)) & 3u] << 16 | (uint32_t)u[(v >> (s + 6)) & 3u] << 24;
}

/* Groups 4k .. 4k + 3 of a 2-bit row from one word of indices, one word stored per group: 13
 * Cortex-M4 instructions per group against 15 byte by byte. */
static void cb_decode_row2_words(const uint8_t *row, const int8_t *pal, int32_t quads,
                                 int8_t *dst) {
    const uint8_t *u = (const uint8_t *)pal;
    int32_t k;
    for (k = 0; k < quads; ++k) {
        uint32_t v, w0, w1, w2, w3;
        memcpy(&v, row + 4 * k, 4);
        w0 = cb_group2_word(u, v, 0);
        w1 = cb_group2_word(u, v, 8);
        w2 = cb_group2_word(u, v, 16);
        w3 = cb_group2_word(u, v, 24);
        memcpy(dst + 16 * k, &w0, 4);
        memcpy(dst + 16 * k + 4, &w1, 4);
        memcpy(dst + 16 * k + 8, &w2, 4);
        memcpy(dst + 16 * k + 12, &w3, 4);
    }
}
#endif

/* 2-bit rows: a whole group of 4 values is one byte, v0 v2 v1 v3 from the low bits up. */
static void cb_decode_row2(const uint8_t *row, const int8_t *pal, int32_t depth, int8_t *dst) {
    const int32_t groups = depth >> 2;
    int32_t g = 0;
#if CB_WORD_DECODE
    cb_decode_row2_words(row, pal, groups >> 2, dst);
    g = groups & ~3;
#endif
    for (; g < groups; ++g) {
        const uint32_t b = row[g];
        dst[4 * g] = pal[b & 3u];
        dst[4 * g + 2] = pal[(b >> 2) & 3u];
        dst[4 * g + 1] = pal[(b >> 4) & 3u];
        dst[4 * g + 3] = pal[b >> 6];
    }
    cb_decode_slots(row, pal, 2, depth, 4 * groups, dst);
}

void tc_cb_decode_rows(const uint8_t *idx, const int8_t *palette, int32_t bits, int32_t depth,
                       int32_t palette_oc, int32_t first, int32_t count, int8_t *dst) {
    const int32_t row_bytes = (depth * bits + 7) >> 3;
    int32_t r = first;
#if CB_WORD_DECODE
    /* Rows of whole index words (4-bit depth a multiple of 8, 2-bit of 16) are back to back in
     * idx and in dst with no tail: the rows of one palette are decoded as one stream (the per-row
     * calls were 0.75 instructions per value on MLPerf KWS's 64-deep pointwise rows). */
    if ((bits == 4 && (depth & 7) == 0) || (bits == 2 && (depth & 15) == 0)) {
        while (r < first + count) {
            const int32_t end = TC_MIN(first + count, (r / palette_oc + 1) * palette_oc);
            const uint8_t *row = idx + r * row_bytes;
            const int8_t *pal = palette + ((r / palette_oc) << bits);
            int8_t *d = dst + (r - first) * depth;
            if (bits == 4) {
                cb_decode_row4_words(row, pal, (end - r) * (depth >> 3), d);
            } else {
                cb_decode_row2_words(row, pal, (end - r) * (depth >> 4), d);
            }
            r = end;
        }
        return;
    }
#endif
    for (; r < first + count; ++r) {
        const uint8_t *row = idx + r * row_bytes;
        const int8_t *pal = palette + ((r / palette_oc) << bits);
        int8_t *d = dst + (r - first) * depth;
        if (bits == 4) {
            cb_decode_row4(row, pal, depth, d);
        } else if (bits == 2) {
            cb_decode_row2(row, pal, depth, d);
        } else {
            cb_decode_slots(row, pal, bits, depth, 0, d);
        }
    }
}
