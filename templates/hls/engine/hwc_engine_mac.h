// hwcodesign layer-sequential engine: the MAC unit (conv, depthwise conv, pools, deformable conv).
//
// One layer (or one block of its output channels) is a DATAFLOW of four processes:
//   read (DDR, burst) -> pack into SIMD-channel words -> compute (line buffer + MACs) -> unpack
//   into DDR words -> write (DDR, burst), and for a deformable conv a second reader for the
//   offsets (and mask) on the aux port.
// Compute keeps a line buffer (ring) of `ring_rows` input rows: the window
// (kh-1)*dil + 1 rows, for a deformable conv 2R more (offsets bounded by R: what lets it stream),
// plus stride rows read ahead while a row computes. The ring is split into banks by the column
// modulo COL_BANKS and, with deformable layers, the row's parity, so a bilinear sample reads its
// four neighbours in one cycle, and the `pixels` output pixels of a group (PP, `stride` columns
// apart) read theirs from different banks; each bank holds SIMD channels per word. Two loop shapes share the multipliers:
//   conv:        per group of output pixels, per fold of PE output channels, per (tap,
//                SIMD-channel chunk): PP x PE x SIMD MACs per cycle (weights[pe][fold*SF + step][s],
//                each weight used by every pixel of the group);
//   channelwise: per group of output pixels, per SIMD-channel chunk, per tap: PP x SIMD
//                independent MACs (depthwise weights in PE row 0), max for max pooling.
// A direct read is a bilinear sample at a whole position (fraction 0), so both shapes also run
// deformable layers (one pixel at a time): the position is the tap's plus this pixel's
// converted offset.
// Output: the group's `pixels` x `lanes_out` accumulators finish together every `sf` cycles;
// RQ_UNITS shared output stages convert them, pixel by pixel, during the next `sfx` >=
// pixels x ceil(lanes_out / RQ_UNITS) cycles. The unpacker puts each pixel's words together.
#ifndef HWCODESIGN_ENGINE_MAC_H
#define HWCODESIGN_ENGINE_MAC_H

#include "hwc_engine_base.h"
#include "hwc_engine_io.h"

// Where the next input word goes: absolute row, its ring slot, column, SIMD chunk.
struct hwc_ring_cursor {
    int row;
    int slot;
    int col;
    int chunk;
};

// Input rows that must be in the ring before output row `oy` starts (all of them after the last).
inline int hwc_engine_rows_needed(const hwc_layer &d, int oy) {
#pragma HLS INLINE
    if (oy >= d.out_h) return d.in_h;
    int rows = oy * d.stride_h - d.pad_t - d.reach + d.window_rows;
    if (rows < 0) rows = 0;
    if (rows > d.in_h) rows = d.in_h;
    return rows;
}

inline int hwc_engine_words_until(const hwc_layer &d, const hwc_ring_cursor &cursor, int rows) {
#pragma HLS INLINE
    return ((rows - cursor.row) * d.in_w - cursor.col) * d.chunks - cursor.chunk;
}

template <class C>
struct hwc_ring {
    typedef ap_int<C::X_BITS> value_t;
    value_t bank[C::ROW_BANKS * C::COL_BANKS][C::BANK_DEPTH][C::SIMD];

    // The bank of ring slot `slot`, column `col`: the column modulo COL_BANKS and, in an engine
    // with deformable layers (ROW_BANKS 2), the row's parity (the ring has an even number of
    // rows, so a slot's parity is its row's).
    static int which(int slot, int col) {
#pragma HLS INLINE
        return (slot % C::ROW_BANKS) * C::COL_BANKS + col % C::COL_BANKS;
    }

    static int address(const hwc_layer &d, int slot, int col, int chunk) {
#pragma HLS INLINE
        return (slot / C::ROW_BANKS) * d.bank_row_words + (col / C::COL_BANKS) * d.chunks + chunk;
    }

    // One SIMD-channel word into the ring, centred (x - zero point; channels beyond C are 0).
    void write(const hwc_layer &d, const hwc_vec<hwc_byte_t, C::SIMD> &word, hwc_ring_cursor &cursor) {
#pragma HLS INLINE
        const int to = which(cursor.slot, cursor.col);
        const int at = address(d, cursor.slot, cursor.col, cursor.chunk);
        const bool is_signed = (d.flags & HWC_FLAG_IN_SIGNED) != 0;
        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
            const int channel = cursor.chunk * C::SIMD + s;
            bank[to][at][s] = channel < d.in_c ? value_t(hwc_byte_value(word.data[s], is_signed) - d.in_zp)
                                               : value_t(0);
        }
        if (++cursor.chunk == d.chunks) {
            cursor.chunk = 0;
            if (++cursor.col == d.in_w) {
                cursor.col = 0;
                ++cursor.row;
                if (++cursor.slot == d.ring_rows) cursor.slot = 0;
            }
        }
    }
};

// Per output row of a deformable conv: every pixel's offsets converted to 1/2^F pixels (and the
// centred mask), one value per cycle, before the row's MAC loop.
template <class C>
struct hwc_row_offsets {
    ap_int<C::OFFSET_FP_BITS> offset[C::MAX_DEFORM_W][C::OFFSET_C_MAX];
    ap_int<C::MASK_BITS> mask[C::MAX_DEFORM_W][C::MASK_C_MAX];

    // The aux stream carries a row's offsets (out_w pixels of aux_cw words), then its mask (out_w
    // pixels of mask_cw words, DCN v2 only): one loop over both, a byte per cycle.
    void convert(const hwc_layer &d, hls::stream<typename C::word_t> &aux, const hwc_record<C> table[C::OFFSET_C_MAX][1]) {
#pragma HLS INLINE
        const bool offsets_signed = (d.flags & HWC_FLAG_AUX_SIGNED) != 0;
        const bool mask_signed = (d.flags & HWC_FLAG_MASK_SIGNED) != 0;
        const int offset_bytes = d.out_w * d.aux_cw * C::WORD_BYTES;
        const int mask_bytes = (d.flags & HWC_FLAG_MASK) != 0 ? d.out_w * d.mask_cw * C::WORD_BYTES : 0;
        typename C::word_t word = 0;
        int ox = 0, byte = 0;
    bytes:
        for (int i = 0; i < offset_bytes + mask_bytes; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_DEFORM_W * (C::OFFSET_C_MAX + C::MASK_C_MAX + 2 * C::WORD_BYTES)
            HWC_ENGINE_STEP();
            const bool masks = i >= offset_bytes;
            if (i == offset_bytes) ox = 0;
            if (byte % C::WORD_BYTES == 0) word = aux.read();
            const hwc_byte_t value = hwc_word_byte<C>(word, byte % C::WORD_BYTES);
            if (!masks && byte < d.aux_c) {
                const ap_int<C::EW_ACC_BITS> centred = hwc_byte_value(value, offsets_signed) - d.aux_zp;
                offset[ox][byte] = hwc_engine_requantize<C, C::EW_ACC_BITS>(centred, table[byte][0], false, d.stage2_zp,
                                                                            d.stage2_lo, d.stage2_hi);
            }
            if (masks && byte < d.mask_c) mask[ox][byte] = hwc_byte_value(value, mask_signed) - d.mask_zp;
            if (++byte == (masks ? d.mask_cw : d.aux_cw) * C::WORD_BYTES) {
                byte = 0;
                ++ox;
            }
        }
    }
};

// The SIMD values one cycle feeds one pixel's MACs: channels chunk*SIMD + s at fixed-point
// position (pos_y, pos_x) in 1/2^F pixels, blended from the four neighbours and rounded by `shift`
// bits (F = 0, shift = 0: a plain read of one bank). `inside` tells max pooling whether the
// position is padding.
template <class C>
void hwc_engine_sample(const hwc_layer &d, const hwc_ring<C> &ring, int base_slot, int top, int pos_y, int pos_x,
                       int chunk, ap_int<C::SAMPLE_BITS> x[C::SIMD], bool &inside) {
#pragma HLS INLINE
    const int frac = d.frac_bits;
    const int one = 1 << frac;
    const int y0 = pos_y >> frac, x0 = pos_x >> frac;
    const int fy = pos_y & (one - 1), fx = pos_x & (one - 1);
    inside = y0 >= 0 && y0 < d.in_h && x0 >= 0 && x0 < d.in_w;
    ap_int<C::BLEND_BITS> blend[C::SIMD];
#pragma HLS ARRAY_PARTITION variable=blend complete
    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
        blend[s] = 0;
    }
    for (int n = 0; n < 4; ++n) {
#pragma HLS UNROLL
        if (!C::HAS_DEFORM && n != 0) continue;
        // neighbour (y0 + dy, x0 + dx), weighted by its share of the fractions
        const int dy = n >> 1, dx = n & 1;
        const int ny = y0 + dy, nx = x0 + dx;
        const int wy = dy ? fy : one - fy;
        const int wx = dx ? fx : one - fx;
        const bool read = wy != 0 && wx != 0 && ny >= 0 && ny < d.in_h && nx >= 0 && nx < d.in_w;
        int slot = base_slot + (ny - top);
        if (slot >= d.ring_rows) slot -= d.ring_rows;
        const int bank = read ? hwc_ring<C>::which(slot, nx) : 0;
        const int address = read ? hwc_ring<C>::address(d, slot, nx, chunk) : 0;
        const int weight = wy * wx;
        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
            const ap_int<C::X_BITS> value = ring.bank[bank][address][s];
            if (read) {
                if (C::HAS_DEFORM) {
                    ap_int<C::BLEND_BITS> term = value * ap_int<C::WEIGHT_FP_BITS>(weight);
#pragma HLS BIND_OP variable=term op=mul impl=fabric
                    blend[s] += term;
                } else {
                    blend[s] = value;
                }
            }
        }
    }
    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
        x[s] = C::HAS_DEFORM ? ap_int<C::SAMPLE_BITS>(hwc_round_shift<C::BLEND_BITS>(blend[s], d.sample_shift))
                             : ap_int<C::SAMPLE_BITS>(blend[s]);
    }
}

// Which output channels block `block` of a layer computes, and where they go in DDR.
struct hwc_block_geometry {
    int first_outer;  // first fold (conv) or chunk (channelwise) of the block
    int outers;       // folds or chunks in the block
    int first_word;   // the block's first DDR word within a pixel
    int kept;         // DDR words per pixel the block stores (its padding beyond C is dropped)
    bool whole;       // the block covers whole pixels: one contiguous run
};

template <class C>
hwc_block_geometry hwc_block(const hwc_layer &d, int block) {
#pragma HLS INLINE
    hwc_block_geometry g;
    g.first_outer = block * d.outer_per_block;
    g.outers = d.outer_total - g.first_outer < d.outer_per_block ? d.outer_total - g.first_outer : d.outer_per_block;
    g.first_word = g.first_outer * d.lanes_out / C::WORD_BYTES;
    const int block_words = g.outers * d.lanes_out / C::WORD_BYTES;
    // the layer's own words per pixel; out_cw is the written tensor's (more when the layer writes
    // into part of another tensor, from out_word_offset on)
    const int own_words = (d.out_c + C::WORD_BYTES - 1) / C::WORD_BYTES;
    g.kept = own_words - g.first_word < block_words ? own_words - g.first_word : block_words;
    g.whole = g.kept == d.out_cw;
    return g;
}

// Counters of the MAC loop: first output column of the pixel group, outer index (fold or chunk)
// within the block, step within the outer (k < sf computes, the rest only drain output stages),
// and the step's tap (ky, kx) and inner chunk.
struct hwc_mac_cursor {
    int ox;
    int outer;
    int k;
    int ky;
    int kx;
    int inner;
};

// Params words into the PE memories, one a call: MW params words make a memory word of SIMD
// weights (W_BITS each, little-endian), and memory words go PE by PE (`load_pe` of them) at each
// address from `base` on, as DDR holds a block. The block loader and the prefetch under compute
// (HWC_FLAG_PREFETCH: `left` words of a stream, `take_next`) both write through it.
template <class C>
struct hwc_weight_writer {
    typename C::param_t parts[C::MW];
    int part, pe, address, load_pe, left;

    void start(int pes, int base, int words) {
#pragma HLS INLINE
        part = 0;
        pe = 0;
        address = base;
        load_pe = pes;
        left = words;
    }

    // The next of the `left` words from `next`, if any is left.
    void take_next(hls::stream<typename C::param_t> &next, ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD]) {
#pragma HLS INLINE
        if (left > 0) {
            take(next.read(), weights);
            --left;
        }
    }

    void take(const typename C::param_t &word, ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD]) {
#pragma HLS INLINE
        parts[part] = word;
        if (++part == C::MW) {
            part = 0;
            for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                const int bit = s * C::W_BITS;
                weights[pe][address][s] = ap_int<C::W_BITS>(parts[bit / C::PARAMS_WORD_BITS].range(
                    bit % C::PARAMS_WORD_BITS + C::W_BITS - 1, bit % C::PARAMS_WORD_BITS));
            }
            if (++pe == load_pe) {
                pe = 0;
                ++address;
            }
        }
    }
};

template <class C>
void hwc_mac_compute(const hwc_layer d, const int block, hls::stream<hwc_vec<hwc_byte_t, C::SIMD> > &in,
                     hls::stream<typename C::word_t> &aux, hls::stream<hwc_vec<hwc_byte_t, C::OUT_LANES> > &out,
                     ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD], const int bank,
                     hls::stream<typename C::param_t> &next, const int next_words, const int next_bank,
                     const hwc_record<C> table[C::TABLE_ROWS][C::RQ_UNITS],
                     const hwc_record<C> offset_table[C::OFFSET_C_MAX][1]) {
#pragma HLS DEPENDENCE variable=weights inter false
#pragma HLS DEPENDENCE variable=weights intra false
    typedef ap_int<C::ACC_BITS> acc_t;
    static hwc_ring<C> ring;
#pragma HLS ARRAY_PARTITION variable=ring.bank complete dim=1
#pragma HLS ARRAY_RESHAPE variable=ring.bank complete dim=3
#if HWC_URAM_RING
#pragma HLS BIND_STORAGE variable=ring.bank type=ram_2p impl=uram
#endif
#pragma HLS DEPENDENCE variable=ring.bank inter false
    static hwc_row_offsets<C> row;
#pragma HLS ARRAY_PARTITION variable=row.offset complete dim=2
#pragma HLS ARRAY_PARTITION variable=row.mask complete dim=2
    acc_t acc[C::PP][C::OUT_LANES];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=0
    acc_t pending[C::PP][C::OUT_LANES];
#pragma HLS ARRAY_PARTITION variable=pending complete dim=0
    hwc_vec<hwc_byte_t, C::OUT_LANES> word;
#pragma HLS ARRAY_PARTITION variable=word.data complete

    const bool conv = d.mode == HWC_MODE_CONV;
    const bool deform = (d.flags & HWC_FLAG_DEFORM) != 0;
    const bool max_pool = (d.flags & HWC_FLAG_MAX_POOL) != 0;
    const bool fixed_shape = (d.flags & HWC_FLAG_FIXED_SHAPE) != 0;
    const bool masked = (d.flags & HWC_FLAG_MASK) != 0;
    const bool negative = (d.flags & HWC_FLAG_NEGATIVE) != 0;
    const hwc_block_geometry g = hwc_block<C>(d, block);
    const int first_outer = g.first_outer, outers = g.outers;
    const int first_channel = first_outer * d.lanes_out;
    const int pixels = d.pixels;  // output pixels of a group (1 for a deformable layer)
    const int groups = (d.out_w + pixels - 1) / pixels;
    const int work = groups * outers * d.sfx;
    const int taps = d.kh * d.kw;
    // offset group of the first chunk a pixel visits (channelwise: the block's first chunk)
    const int group0 = conv ? 0 : first_outer / d.chunks_per_group;
    const int in_group0 = conv ? 0 : first_outer % d.chunks_per_group;
    const int pixel_drain = (d.lanes_out + C::RQ_UNITS - 1) / C::RQ_UNITS;  // table rows per outer too
    const int drain = pixels * pixel_drain;
    const acc_t lowest = acc_t(-(1 << (C::X_BITS - 1)));

    // the next block's weights (a prefetching layer's): one params word into the other half of the
    // memories every cycle of the fill and MAC loops until this frame's share is in, the rest after
    hwc_weight_writer<C> writer;
#pragma HLS ARRAY_PARTITION variable=writer.parts complete
    writer.start(d.load_pe, next_bank, next_words);

    hwc_ring_cursor cursor = {0, 0, 0, 0};
    int base_slot = d.slot0;
rows:
    for (int oy = 0; oy < d.out_h; ++oy) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_ROWS
        const int top = oy * d.stride_h - d.pad_t - d.reach;  // first row the window (with +-R) covers
        const int fill = hwc_engine_words_until(d, cursor, hwc_engine_rows_needed(d, oy));
    fill:
        for (int i = 0; i < fill; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=C::MAX_TENSOR_WORDS
            HWC_ENGINE_STEP();
            ring.write(d, in.read(), cursor);
            writer.take_next(next, weights);
        }
        if (C::HAS_DEFORM && deform) row.convert(d, aux, offset_table);
        const int ahead = hwc_engine_words_until(d, cursor, hwc_engine_rows_needed(d, oy + 1));
        const int steps = work + drain > ahead ? work + drain : ahead;
        hwc_mac_cursor at = {0, 0, 0, 0, 0, 0};
        int ix0 = -d.pad_l;
        int group = group0, in_group = in_group0;  // offset group of this step's chunk
        int weight_address = 0;
        // the output stages: which outer and group they convert, and where they are in it
        int pending_outer = 0, pending_ox = 0, convert_step = drain, convert_row = 0, convert_pixel = 0;
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_ROW_STEPS
            HWC_ENGINE_STEP();
            if (step < ahead) ring.write(d, in.read(), cursor);
            writer.take_next(next, weights);
            // shared output stages: the previous outer's accumulators, pixel by pixel, RQ_UNITS
            // lanes per cycle; a pixel beyond the row (the last group's) is converted, not sent
            if (convert_step < drain) {
                for (int unit = 0; unit < C::RQ_UNITS; ++unit) {
#pragma HLS UNROLL
                    const int lane = convert_row * C::RQ_UNITS + unit;
                    if (lane < d.lanes_out) {
                        const int entry = pending_outer * d.lanes_out + lane;
                        const hwc_record<C> r = table[pending_outer * pixel_drain + convert_row][unit];
                        const int value = hwc_engine_requantize<C, C::ACC_BITS>(
                            acc_t(pending[convert_pixel][lane] + r.bias), r, negative, d.out_zp, d.out_lo, d.out_hi);
                        word.data[lane] = first_channel + entry < d.out_c ? hwc_byte_t(value) : hwc_byte_t(0);
                    }
                }
                ++convert_step;
                if (++convert_row == pixel_drain) {
                    convert_row = 0;
                    if (pending_ox + convert_pixel < d.out_w) out.write(word);
                    ++convert_pixel;
                }
            }
            if (step < work && at.k < d.sf) {
                const int chunk = conv ? at.inner : first_outer + at.outer;
                const int dy_tap = at.ky * d.dil_h, dx_tap = at.kx * d.dil_w;
                int pos_y = (top + d.reach + dy_tap) << d.frac_bits;
                int pos_x = (ix0 + dx_tap) << d.frac_bits;
                int mask_value = 1;
                if (C::HAS_DEFORM && deform) {
                    const int tap = at.ky * d.kw + at.kx;
                    if (fixed_shape) {
                        const int scale = row.offset[at.ox][group];
                        pos_y += scale * (dy_tap - d.pattern_cy);
                        pos_x += scale * (dx_tap - d.pattern_cx);
                    } else {
                        pos_y += row.offset[at.ox][(group * taps + tap) * 2];
                        pos_x += row.offset[at.ox][(group * taps + tap) * 2 + 1];
                    }
                    if (masked) mask_value = row.mask[at.ox][group * taps + tap];
                }
                // the group's pixels read the same tap `stride_w` columns apart
                ap_int<C::SAMPLE_BITS> sample[C::PP][C::SIMD];
#pragma HLS ARRAY_PARTITION variable=sample complete dim=0
                bool inside[C::PP];
#pragma HLS ARRAY_PARTITION variable=inside complete
                ap_int<C::XM_BITS> x[C::PP][C::SIMD];
#pragma HLS ARRAY_PARTITION variable=x complete dim=0
                for (int p = 0; p < C::PP; ++p) {
#pragma HLS UNROLL
                    inside[p] = false;
                    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                        sample[p][s] = 0;
                    }
                    if (p < pixels) {
                        hwc_engine_sample<C>(d, ring, base_slot, top, pos_y, pos_x + ((p * d.stride_w) << d.frac_bits),
                                             chunk, sample[p], inside[p]);
                    }
                    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                        x[p][s] = C::HAS_MASK ? ap_int<C::XM_BITS>(sample[p][s] * ap_int<C::MASK_BITS>(mask_value))
                                              : ap_int<C::XM_BITS>(sample[p][s]);
                    }
                }
                // every multiplier of the array: each weight times every pixel's value, pairs of
                // PE rows packed into one DSP
                ap_int<C::W_BITS + C::XM_BITS> product[C::PP][C::PE][C::SIMD];
#pragma HLS ARRAY_PARTITION variable=product complete dim=0
                for (int p = 0; p < C::PP; ++p) {
#pragma HLS UNROLL
                    for (int e = 0; e < C::PE; e += 2) {
#pragma HLS UNROLL
                        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                            hwc_mul_pair<C>(weights[e + 1][bank + weight_address][s], weights[e][bank + weight_address][s],
                                            x[p][s], product[p][e + 1][s], product[p][e][s]);
                        }
                    }
                }
                const bool first = at.k == 0;
                const bool last = at.k == d.sf - 1;
                for (int p = 0; p < C::PP; ++p) {
#pragma HLS UNROLL
                    if (conv) {
                        for (int e = 0; e < C::PE; ++e) {
#pragma HLS UNROLL
                            acc_t sum = first ? acc_t(0) : acc[p][e];
                            hwc_add_all<C::SIMD>(sum, product[p][e]);
                            acc[p][e] = sum;
                            if (last) pending[p][e] = sum;
                        }
                    } else {
                        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                            acc_t value;
                            if (C::HAS_MAX_POOL && max_pool) {
                                const acc_t start = first ? lowest : acc[p][s];
                                value = inside[p] && acc_t(sample[p][s]) > start ? acc_t(sample[p][s]) : start;
                            } else {
                                value = (first ? acc_t(0) : acc[p][s]) + product[p][0][s];
                            }
                            acc[p][s] = value;
                            if (last) pending[p][s] = value;
                        }
                    }
                }
                if (last) {
                    pending_outer = at.outer;
                    pending_ox = at.ox;
                    convert_step = 0;
                    convert_row = 0;
                    convert_pixel = 0;
                }
                ++weight_address;
            }
            // advance: inner chunk fastest (conv), then kx, ky; after sfx steps the next outer,
            // after `outers` outers the next group of pixels. The offset group follows the chunk.
            if (step < work) {
                if (++at.k == d.sfx) {
                    at.k = 0;
                    at.ky = 0;
                    at.kx = 0;
                    at.inner = 0;
                    if (conv) {
                        group = 0;
                        in_group = 0;
                    } else if (++in_group == d.chunks_per_group) {
                        in_group = 0;
                        ++group;
                    }
                    if (++at.outer == outers) {
                        at.outer = 0;
                        at.ox += pixels;
                        ix0 += d.stride_w * pixels;
                        weight_address = 0;
                        group = group0;
                        in_group = in_group0;
                    }
                } else if (at.k < d.sf) {
                    if (++at.inner == d.inner) {
                        at.inner = 0;
                        if (conv) {
                            group = 0;
                            in_group = 0;
                        }
                        if (++at.kx == d.kw) {
                            at.kx = 0;
                            ++at.ky;
                        }
                    } else if (++in_group == d.chunks_per_group) {
                        in_group = 0;
                        ++group;
                    }
                }
            }
        }
        base_slot += d.stride_h;
        if (base_slot >= d.ring_rows) base_slot -= d.ring_rows;
    }
    // what of the share the loops left (a frame shorter than its share of the next block)
    const int rest = writer.left;
tail:
    for (int i = 0; i < rest; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=C::PE * C::WBUF_DEPTH * C::MW
        HWC_ENGINE_STEP();
        writer.take(next.read(), weights);
    }
}

// The weights of one block into the PE memories from address 0 (a prefetching layer's first
// block: its lower half).
template <class C>
void hwc_load_weights(const typename C::param_t *params, int base, int addresses, int load_pe,
                      ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD]) {
    hwc_weight_writer<C> writer;
#pragma HLS ARRAY_PARTITION variable=writer.parts complete
    writer.start(load_pe, 0, 0);
load:
    for (int i = 0; i < addresses * load_pe * C::MW; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::PE * C::WBUF_DEPTH * C::MW
        writer.take(params[base + i], weights);
    }
}

// The processes of a block's dataflow region; each derives its bounds from the descriptor.
template <class C>
void hwc_mac_read(const hwc_layer d, const typename C::word_t *fmap_in, hls::stream<typename C::word_t> &words) {
    hwc_read_words<C>(fmap_in, d.in_addr, d.in_h * d.in_w * d.in_cw, words);
}

// The aux port: a deformable layer's offsets (and mask) row by row for compute, or a fused
// residual Add's skip words, the block's part of each pixel, for the residual stage.
template <class C>
void hwc_mac_read_aux(const hwc_layer d, const int block, const typename C::word_t *fmap_aux,
                      hls::stream<typename C::word_t> &words, hls::stream<typename C::word_t> &skip) {
    const bool deform = C::HAS_DEFORM && (d.flags & HWC_FLAG_DEFORM) != 0;
    if (C::HAS_RESIDUAL && (d.flags & HWC_FLAG_RESIDUAL) != 0) {
        const hwc_block_geometry g = hwc_block<C>(d, block);
        const int pixels = d.out_h * d.out_w;
        hwc_read_segments<C>(fmap_aux, d.aux_addr + g.first_word, g.whole ? 1 : pixels, g.whole ? pixels * g.kept : g.kept,
                             d.aux_cw, skip);
    } else {
        const int mask_words = (d.flags & HWC_FLAG_MASK) != 0 ? d.out_w * d.mask_cw : 0;
        hwc_read_row_pairs<C>(fmap_aux, d.aux_addr, d.out_w * d.aux_cw, d.mask_addr, mask_words, deform ? d.out_h : 0,
                              words);
    }
}

template <class C>
void hwc_mac_pack(const hwc_layer d, hls::stream<typename C::word_t> &words, hls::stream<hwc_vec<hwc_byte_t, C::SIMD> > &chunks) {
    hwc_pack_chunks<C>(words, chunks, d.in_h * d.in_w, d.in_cw, d.chunks);
}

// The lanes of a group's pixels into DDR words, pixel by pixel. Compute sends a group's lanes
// words outer by outer, each outer's pixels together; the writer wants each pixel's words
// together. So the lanes of group k go into one half of a double buffer while group k-1 leaves
// from the other: a lanes word in and a DDR word out per cycle. One pixel at a time needs no
// buffer (PP = 1, or a layer whose groups are single pixels).
template <class C>
void hwc_unpack_groups(const hwc_layer &d, const hwc_block_geometry &g,
                       hls::stream<hwc_vec<hwc_byte_t, C::OUT_LANES> > &lanes, hls::stream<typename C::word_t> &words) {
    static hwc_vec<hwc_byte_t, C::OUT_LANES> buffer[2][C::PP][C::MAX_OUTERS];
#pragma HLS ARRAY_PARTITION variable=buffer complete dim=1
#pragma HLS ARRAY_RESHAPE variable=buffer complete dim=3
#pragma HLS DEPENDENCE variable=buffer inter false
    const int per_word = d.lanes_out / C::WORD_BYTES;  // DDR words per lanes word
    const int groups = d.out_h * ((d.out_w + d.pixels - 1) / d.pixels);
    // the read side: group, outer, pixel, and the group's first column (its pixels: up to the row's end)
    int in_group = 0, in_outer = 0, in_pixel = 0, in_col = 0;
    // the write side: group, pixel, outer and DDR word within it, the pixel's word, the group's column
    int out_group = 0, out_pixel = 0, out_outer = 0, out_part = 0, out_word = 0, out_col = 0;
    // every cycle moves a word in, a word out or both: the reads and writes bound the cycles
    const int bound = d.out_h * d.out_w * (g.outers + g.kept);
unpack:
    for (int i = 0; i < bound; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS
        if (out_group == groups) break;
        if (in_group < groups && in_group - out_group < 2) {
            const int in_pixels = d.out_w - in_col < d.pixels ? d.out_w - in_col : d.pixels;
            buffer[in_group & 1][in_pixel][in_outer] = lanes.read();
            if (++in_pixel == in_pixels) {
                in_pixel = 0;
                if (++in_outer == g.outers) {
                    in_outer = 0;
                    ++in_group;
                    in_col += d.pixels;
                    if (in_col >= d.out_w) in_col = 0;
                }
            }
        }
        if (out_group < in_group) {
            const int out_pixels = d.out_w - out_col < d.pixels ? d.out_w - out_col : d.pixels;
            const hwc_vec<hwc_byte_t, C::OUT_LANES> &lane_word = buffer[out_group & 1][out_pixel][out_outer];
            typename C::word_t value = 0;
            for (int e = 0; e < C::WORD_BYTES; ++e) {
#pragma HLS UNROLL
                value.range(8 * e + 7, 8 * e) = lane_word.data[out_part * C::WORD_BYTES + e];
            }
            words.write(value);
            if (++out_part == per_word) {
                out_part = 0;
                ++out_outer;
            }
            if (++out_word == g.kept) {
                out_word = 0;
                out_outer = 0;
                out_part = 0;
                if (++out_pixel == out_pixels) {
                    out_pixel = 0;
                    ++out_group;
                    out_col += d.pixels;
                    if (out_col >= d.out_w) out_col = 0;
                }
            }
        }
    }
}

template <class C>
void hwc_mac_unpack(const hwc_layer d, const int block, hls::stream<hwc_vec<hwc_byte_t, C::OUT_LANES> > &lanes,
                    hls::stream<typename C::word_t> &words) {
    const hwc_block_geometry g = hwc_block<C>(d, block);
    if (C::PP == 1 || d.pixels == 1) {
        hwc_unpack_lanes<C>(lanes, words, d.out_h * d.out_w, g.outers, d.lanes_out, g.kept);
    } else {
        hwc_unpack_groups<C>(d, g, lanes, words);
    }
}

// A fused residual Add (HWC_FLAG_RESIDUAL) on the block's output words, EW_LANES channels a cycle
// (the pixel unit's lanes: WORD_BYTES / EW_LANES cycles a word): each MAC output and the skip's
// element, centred and scaled by their multipliers, through the Add's output stage (one record,
// `res_record`: the same for every channel), as the pixel unit's ADD computes them. The
// MAC outputs are the bytes of values in [out_lo, out_hi], so they are signed exactly when
// out_lo < 0. Without the flag the words pass through, one a cycle.
template <class C>
void hwc_mac_residual(const hwc_layer d, const int block, hls::stream<typename C::word_t> &in,
                      hls::stream<typename C::word_t> &skip, hls::stream<typename C::word_t> &out,
                      const hwc_record<C> &res_record) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    const hwc_block_geometry g = hwc_block<C>(d, block);
    const bool residual = C::HAS_RESIDUAL && (d.flags & HWC_FLAG_RESIDUAL) != 0;
    const bool mac_signed = d.out_lo < 0;
    const bool skip_signed = (d.flags & HWC_FLAG_AUX_SIGNED) != 0;
    const int subs = residual ? SUBS : 1;
    typename C::word_t a = 0, b = 0, sum = 0;
    int word = g.first_word, sub = 0;  // the word of the pixel, the lanes' part of it
words:
    for (int i = 0; i < d.out_h * d.out_w * g.kept * subs; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS * SUBS
        if (sub == 0) {
            a = in.read();
            if (C::HAS_RESIDUAL && residual) b = skip.read();
        }
        if (C::HAS_RESIDUAL && residual) {
            for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
                const int element = sub * C::EW_LANES + e;
                const int xa = hwc_byte_value(hwc_word_byte<C>(a, element), mac_signed) - d.out_zp;
                const int xb = hwc_byte_value(hwc_word_byte<C>(b, element), skip_signed) - d.aux_zp;
                const ap_int<C::EW_ACC_BITS> acc = ap_int<C::EW_ACC_BITS>(xa) * d.mult_a + ap_int<C::EW_ACC_BITS>(xb) * d.mult_b;
                const int y = hwc_engine_requantize<C, C::EW_ACC_BITS>(acc, res_record, false, d.stage2_zp, d.stage2_lo,
                                                                        d.stage2_hi);
                sum.range(8 * element + 7, 8 * element) = word * C::WORD_BYTES + element < d.out_c ? hwc_byte_t(y)
                                                                                                      : hwc_byte_t(0);
            }
        } else {
            sum = a;
        }
        if (++sub == subs) {
            sub = 0;
            out.write(sum);
            if (++word == g.first_word + g.kept) word = g.first_word;
        }
    }
}

template <class C>
void hwc_mac_write(const hwc_layer d, const int block, hls::stream<typename C::word_t> &words,
                   typename C::word_t *fmap_out) {
    const hwc_block_geometry g = hwc_block<C>(d, block);
    const int pixels = d.out_h * d.out_w;
    hwc_write_segments<C>(words, fmap_out, d.out_addr + d.out_word_offset + g.first_word, g.whole ? 1 : pixels,
                          g.whole ? pixels * g.kept : g.kept, d.out_cw);
}

// One block as a dataflow region: read -> pack -> compute -> unpack -> residual -> write (its
// input is re-read from DDR for every block; the aux port reads offsets or a skip tensor), and
// beside them `next_words` params words of the next block's weights for compute to store from
// `next_bank` on (none unless the layer prefetches).
template <class C>
void hwc_mac_block(const hwc_layer d, const int block, const typename C::word_t *fmap_in,
                   const typename C::word_t *fmap_aux, typename C::word_t *fmap_out, const typename C::param_t *params,
                   ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD], const int bank, const int next_base,
                   const int next_words, const int next_bank, const hwc_record<C> table[C::TABLE_ROWS][C::RQ_UNITS],
                   const hwc_record<C> offset_table[C::OFFSET_C_MAX][1],
                   const hwc_record<C> &res_record) {
#pragma HLS DATAFLOW
    hls::stream<typename C::word_t> words_in("words_in"), words_aux("words_aux"), words_skip("words_skip");
    hls::stream<typename C::word_t> words_mac("words_mac"), words_out("words_out");
    hls::stream<hwc_vec<hwc_byte_t, C::SIMD> > chunks("chunks");
    hls::stream<hwc_vec<hwc_byte_t, C::OUT_LANES> > lanes("lanes");
    hls::stream<typename C::param_t> next_weights("next_weights");
#pragma HLS STREAM variable=next_weights depth=C::BURST_WORDS
#pragma HLS BIND_STORAGE variable=next_weights type=fifo impl=lutram
#pragma HLS STREAM variable=words_in depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_aux depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_skip depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_mac depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_out depth=C::BURST_WORDS
#pragma HLS BIND_STORAGE variable=words_in type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_aux type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_skip type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_mac type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_out type=fifo impl=lutram
    hwc_mac_read<C>(d, fmap_in, words_in);
    hwc_mac_read_aux<C>(d, block, fmap_aux, words_aux, words_skip);
    hwc_read_words<C>(params, next_base, next_words, next_weights);
    hwc_mac_pack<C>(d, words_in, chunks);
    hwc_mac_compute<C>(d, block, chunks, words_aux, lanes, weights, bank, next_weights, next_words, next_bank, table,
                       offset_table);
    hwc_mac_unpack<C>(d, block, lanes, words_mac);
    hwc_mac_residual<C>(d, block, words_mac, words_skip, words_out, res_record);
    hwc_mac_write<C>(d, block, words_out, fmap_out);
}

// A MAC layer: per block of output channels, its weights and records, then the block's dataflow
// once per frame of the batch (`frames` arenas, `frame_words` apart), so a batch loads the
// layer's weights once. A prefetching layer (HWC_FLAG_PREFETCH) loads only its first block's
// weights here: its blocks alternate between the memories' two halves of `outer_per_block * sf`
// addresses, and each block's frames load the next block's into the other half as they compute,
// frame f the addresses from f * share on (whole addresses, so each frame starts at PE 0).
template <class C>
void hwc_mac_layer(const hwc_layer &d, const typename C::word_t *fmap_in, const typename C::word_t *fmap_aux,
                   typename C::word_t *fmap_out, const typename C::param_t *params, int frames, int frame_words) {
    static ap_int<C::W_BITS> weights[C::PE][C::WBUF_DEPTH][C::SIMD];
#pragma HLS ARRAY_PARTITION variable=weights complete dim=1
#pragma HLS ARRAY_RESHAPE variable=weights complete dim=3
#if HWC_URAM_WEIGHTS
#pragma HLS BIND_STORAGE variable=weights type=ram_2p impl=uram
#endif
    static hwc_record<C> table[C::TABLE_ROWS][C::RQ_UNITS];
#pragma HLS ARRAY_PARTITION variable=table complete dim=2
    static hwc_record<C> offset_table[C::OFFSET_C_MAX][1];
#pragma HLS ARRAY_PARTITION variable=offset_table complete dim=1
    static hwc_record<C> res_table[1][1];
    if (C::HAS_DEFORM && (d.flags & HWC_FLAG_DEFORM) != 0) {
        hwc_load_records<C, C::OFFSET_C_MAX, 1>(params, d.stage2_tables_addr, d.aux_c, offset_table);
    }
    if (C::HAS_RESIDUAL && (d.flags & HWC_FLAG_RESIDUAL) != 0) {
        hwc_load_records<C, 1, 1>(params, d.stage2_tables_addr, 1, res_table);
    }
    const bool prefetch = (d.flags & HWC_FLAG_PREFETCH) != 0;
    const int half = d.outer_per_block * d.sf;  // a prefetching layer's upper half starts here
    const int address_words = d.load_pe * C::MW;  // params words per weight address
blocks:
    for (int block = 0; block < d.blocks; ++block) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_BLOCKS
        const hwc_block_geometry g = hwc_block<C>(d, block);
        const int bank = prefetch && (block & 1) != 0 ? half : 0;
        const int next_bank = half - bank;
        if (!prefetch || block == 0) {
            hwc_load_weights<C>(params, d.weights_addr + block * d.block_weight_words, g.outers * d.sf, d.load_pe,
                                weights);
        }
        hwc_load_records<C, C::TABLE_ROWS, C::RQ_UNITS>(params, d.tables_addr + g.first_outer * d.lanes_out * HWC_RECORD_WORDS,
                                            g.outers * d.lanes_out, table);
        // the next block's weight addresses, and each frame's share of them
        const int next_addresses = prefetch && block + 1 < d.blocks ? hwc_block<C>(d, block + 1).outers * d.sf : 0;
        const int share = (next_addresses + frames - 1) / frames;
    frames:
        for (int f = 0; f < frames; ++f) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_BATCH
            const int first = f * share < next_addresses ? f * share : next_addresses;
            const int count = next_addresses - first < share ? next_addresses - first : share;
            hwc_mac_block<C>(hwc_frame_layer(d, f * frame_words), block, fmap_in, fmap_aux, fmap_out, params, weights,
                             bank, d.weights_addr + (block + 1) * d.block_weight_words + first * address_words,
                             count * address_words, next_bank + first, table, offset_table, res_table[0][0]);
        }
    }
}

#endif
