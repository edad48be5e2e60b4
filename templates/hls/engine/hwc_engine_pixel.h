// hwcodesign layer-sequential engine: the pixel unit (residual add, product of two activations,
// per-element output stage, nearest-neighbour resize, global average pool, channel gather).
//
// These layers touch every element once, so they are bound by DDR: the unit takes one DDR word
// (WORD_BYTES elements) per WORD_BYTES / EW_LANES cycles, EW_LANES output stages in parallel, in
// a dataflow of reader(s) -> compute -> writer. Per-channel constants are records (bias 0) in a
// table loaded before the layer; element e of pixel word j is channel j * WORD_BYTES + e.
// A Concat is one REQUANT layer per part, each writing its part's channel range of every output
// pixel (parts start on whole words; the compiler checks that).
#ifndef HWCODESIGN_ENGINE_PIXEL_H
#define HWCODESIGN_ENGINE_PIXEL_H

#include "hwc_engine_base.h"
#include "hwc_engine_io.h"

// The output stage of EW_LANES elements of a word, lane group `sub`; channels >= C give 0.
template <class C>
void hwc_pixel_lanes(const hwc_layer &d, const ap_int<C::EW_ACC_BITS> acc[C::EW_LANES], int word_in_pixel, int sub,
                     const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES], typename C::word_t &out) {
#pragma HLS INLINE
    const bool negative = (d.flags & HWC_FLAG_NEGATIVE) != 0;
    for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
        const int element = sub * C::EW_LANES + e;
        const int channel = word_in_pixel * C::WORD_BYTES + element;
        const hwc_record<C> r = table[word_in_pixel * (C::WORD_BYTES / C::EW_LANES) + sub][e];
        const int value = hwc_engine_requantize<C, C::EW_ACC_BITS>(acc[e], r, negative, d.out_zp, d.out_lo, d.out_hi);
        out.range(8 * element + 7, 8 * element) = channel < d.out_c ? hwc_byte_t(value) : hwc_byte_t(0);
    }
}

// ADD and MUL (two inputs) and REQUANT (one): element by element, EW_LANES per cycle. A MUL by a
// gate (a squeeze-excitation's per-channel scale) first reads the gate's one pixel into a word
// buffer; every pixel of the map then reads its channels' gate bytes from there.
template <class C>
void hwc_pixel_compute(const hwc_layer d, hls::stream<typename C::word_t> &in_a, hls::stream<typename C::word_t> &in_b,
                       hls::stream<typename C::word_t> &out, const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES]) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    const bool add = d.mode == HWC_MODE_ADD;
    const bool mul = d.mode == HWC_MODE_MUL;
    const bool gate = mul && (d.flags & HWC_FLAG_GATE) != 0;
    const bool streamed_b = add || (mul && !gate);
    const bool a_signed = (d.flags & HWC_FLAG_IN_SIGNED) != 0;
    const bool b_signed = (d.flags & HWC_FLAG_AUX_SIGNED) != 0;
    static typename C::word_t gate_words[C::EW_TABLE_ROWS];
    typename C::word_t a = 0, b = 0, y = 0;
    int sub = 0, word_in_pixel = 0;
    if (C::HAS_MUL && gate) {
    gate_pixel:
        for (int i = 0; i < d.aux_cw; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::EW_TABLE_ROWS
            HWC_ENGINE_STEP();
            gate_words[i] = in_b.read();
        }
    }
elements:
    for (int i = 0; i < d.in_h * d.in_w * d.in_cw * SUBS; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS * SUBS
        HWC_ENGINE_STEP();
        if (sub == 0) {
            a = in_a.read();
            if (streamed_b) b = in_b.read();
            if (C::HAS_MUL && gate) b = gate_words[word_in_pixel];
        }
        ap_int<C::EW_ACC_BITS> acc[C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=acc complete
        for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
            const int element = sub * C::EW_LANES + e;
            const int xa = hwc_byte_value(hwc_word_byte<C>(a, element), a_signed) - d.in_zp;
            if (C::HAS_ADD && add) {
                const int xb = hwc_byte_value(hwc_word_byte<C>(b, element), b_signed) - d.aux_zp;
                acc[e] = ap_int<C::EW_ACC_BITS>(xa) * d.mult_a + ap_int<C::EW_ACC_BITS>(xb) * d.mult_b;
            } else if (C::HAS_MUL && mul) {
                const int xb = hwc_byte_value(hwc_word_byte<C>(b, element), b_signed) - d.aux_zp;
                acc[e] = ap_int<C::EW_ACC_BITS>(xa) * xb;
            } else {
                acc[e] = xa;
            }
        }
        hwc_pixel_lanes<C>(d, acc, word_in_pixel, sub, table, y);
        if (++sub == SUBS) {
            sub = 0;
            out.write(y);
            if (++word_in_pixel == d.in_cw) word_in_pixel = 0;
        }
    }
}

// Nearest-neighbour upsampling: each input row (kept in one of two row buffers while the next
// streams into the other) is emitted scale_h times, each pixel scale_w times.
template <class C>
void hwc_resize_compute(const hwc_layer d, hls::stream<typename C::word_t> &in, hls::stream<typename C::word_t> &out,
                        const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES]) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    static typename C::word_t rows[2][C::MAX_RESIZE_ROW_WORDS];
#pragma HLS DEPENDENCE variable=rows inter false
    const bool is_signed = (d.flags & HWC_FLAG_IN_SIGNED) != 0;
    const int row_words = d.in_w * d.in_cw;
first_row:
    for (int i = 0; i < row_words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_RESIZE_ROW_WORDS
        HWC_ENGINE_STEP();
        rows[0][i] = in.read();
    }
input_rows:
    for (int iy = 0; iy < d.in_h; ++iy) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_ROWS
        const int current = iy & 1;
        const int ahead = iy + 1 < d.in_h ? row_words : 0;
        const int emit = d.scale_h * d.out_w * d.out_cw * SUBS;
        const int steps = emit > ahead ? emit : ahead;
        int read = 0, sub = 0, word_in_pixel = 0, ix = 0, repeat = 0;
        typename C::word_t x = 0, y = 0;
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_RESIZE_ROW_WORDS * 16
            HWC_ENGINE_STEP();
            if (step < ahead) rows[1 - current][read++] = in.read();
            if (step < emit) {
                if (sub == 0) x = rows[current][ix * d.in_cw + word_in_pixel];
                ap_int<C::EW_ACC_BITS> acc[C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=acc complete
                for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
                    acc[e] = hwc_byte_value(hwc_word_byte<C>(x, sub * C::EW_LANES + e), is_signed) - d.in_zp;
                }
                hwc_pixel_lanes<C>(d, acc, word_in_pixel, sub, table, y);
                if (++sub == SUBS) {
                    sub = 0;
                    out.write(y);
                    if (++word_in_pixel == d.out_cw) {
                        word_in_pixel = 0;
                        if (++repeat == d.scale_w) {
                            repeat = 0;
                            if (++ix == d.in_w) ix = 0;
                        }
                    }
                }
            }
        }
    }
}

// A lookup mean's table: a 16-bit value per stored input byte, a copy per lane.
static const int HWC_MEAN_ENTRIES = 256;
static const int HWC_MEAN_BITS = 16;  // hwcodesign/ops/table/ir.py MEAN_TABLE_BITS
typedef ap_int<HWC_MEAN_BITS> hwc_mean_value_t;

// A gather's input channel index (hwcodesign/hardware/engine/tables.py GATHER_INDEX_BITS).
static const int HWC_GATHER_INDEX_BITS = 16;
typedef ap_uint<HWC_GATHER_INDEX_BITS> hwc_gather_index_t;

template <class C>
void hwc_load_mean_table(const typename C::param_t *params, int base, hwc_mean_value_t table[C::EW_LANES][HWC_MEAN_ENTRIES]) {
    const int PER_WORD = C::PARAMS_WORD_BITS / HWC_MEAN_BITS;
load:
    for (int i = 0; i < HWC_MEAN_ENTRIES / PER_WORD; ++i) {
#pragma HLS PIPELINE II=1
        const typename C::param_t word = params[base + i];
        for (int e = 0; e < PER_WORD; ++e) {
#pragma HLS UNROLL
            for (int lane = 0; lane < C::EW_LANES; ++lane) {
#pragma HLS UNROLL
                table[lane][i * PER_WORD + e] = hwc_mean_value_t(word.range(HWC_MEAN_BITS * e + HWC_MEAN_BITS - 1, HWC_MEAN_BITS * e));
            }
        }
    }
}

// Global average pool: per-channel sums over the frame, then one output pixel. With
// HWC_FLAG_TABLE (a lookup mean) each element is its table's value instead of x - zero point.
template <class C>
void hwc_global_pool_compute(const hwc_layer d, hls::stream<typename C::word_t> &in, hls::stream<typename C::word_t> &out,
                             const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES],
                             const hwc_mean_value_t mean_table[C::EW_LANES][HWC_MEAN_ENTRIES]) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    static ap_int<C::EW_ACC_BITS> sums[C::EW_TABLE_ROWS][C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=sums complete dim=2
    const bool is_signed = (d.flags & HWC_FLAG_IN_SIGNED) != 0;
    const bool through_table = C::HAS_MEAN_TABLE && (d.flags & HWC_FLAG_TABLE) != 0;
    typename C::word_t x = 0;
    int sub = 0, word_in_pixel = 0, pixel = 0;
accumulate:
    for (int i = 0; i < d.in_h * d.in_w * d.in_cw * SUBS; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS * SUBS
        HWC_ENGINE_STEP();
        if (sub == 0) x = in.read();
        for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
            const int row = word_in_pixel * SUBS + sub;  // channel row * EW_LANES + e
            const hwc_byte_t byte = hwc_word_byte<C>(x, sub * C::EW_LANES + e);
            const ap_int<C::EW_ACC_BITS> value = through_table ? ap_int<C::EW_ACC_BITS>(mean_table[e][byte.to_int()])
                                                               : ap_int<C::EW_ACC_BITS>(hwc_byte_value(byte, is_signed) - d.in_zp);
            sums[row][e] = (pixel == 0 ? ap_int<C::EW_ACC_BITS>(0) : sums[row][e]) + value;
        }
        if (++sub == SUBS) {
            sub = 0;
            if (++word_in_pixel == d.in_cw) {
                word_in_pixel = 0;
                ++pixel;
            }
        }
    }
    typename C::word_t y = 0;
emit:
    for (int i = 0; i < d.out_cw * SUBS; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::EW_TABLE_DEPTH
        HWC_ENGINE_STEP();
        ap_int<C::EW_ACC_BITS> acc[C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=acc complete
        for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
            acc[e] = sums[i][e];
        }
        hwc_pixel_lanes<C>(d, acc, i / SUBS, i % SUBS, table, y);
        if (i % SUBS == SUBS - 1) out.write(y);
    }
}

// The words of its output a pixel layer writes per pixel: a Concat part's or a gather's own
// channels (either may write into part of a wider tensor), or the output's.
inline int hwc_pixel_own_words(const hwc_layer &d, int word_bytes) {
    if (d.mode == HWC_MODE_REQUANT) return d.in_cw;
    if (d.mode == HWC_MODE_GATHER) return (d.out_c + word_bytes - 1) / word_bytes;
    return d.out_cw;
}

// A channel gather (a Split's or Slice's channel range, a channel shuffle, a Concat of parts that do
// not fill whole words): output channel c of a pixel is the byte at position order[c] of the
// pixel's held words (the first input's in_cw words, then the aux input's aux_cw), through the
// output stage. The held words are kept in a copy per lane (so EW_LANES lanes read any bytes in
// one cycle); then the output's words leave EW_LANES channels a cycle: in_cw + aux_cw + own words
// x WORD_BYTES / EW_LANES cycles a pixel.
template <class C>
void hwc_gather_compute(const hwc_layer d, hls::stream<typename C::word_t> &in_a, hls::stream<typename C::word_t> &in_b,
                        hls::stream<typename C::word_t> &out, const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES],
                        const hwc_gather_index_t order[C::EW_TABLE_ROWS][C::EW_LANES]) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    static typename C::word_t held[C::EW_LANES][C::MAX_GATHER_WORDS];
#pragma HLS ARRAY_PARTITION variable=held complete dim=1
    const bool a_signed = (d.flags & HWC_FLAG_IN_SIGNED) != 0;
    const bool b_signed = (d.flags & HWC_FLAG_AUX_SIGNED) != 0;
    const int own_cw = hwc_pixel_own_words(d, C::WORD_BYTES);
    const int held_cw = d.in_cw + d.aux_cw;
    const int per_pixel = held_cw + own_cw * SUBS;
    int step = 0, sub = 0, word_in_pixel = 0;
    typename C::word_t y = 0;
steps:
    for (int i = 0; i < d.out_h * d.out_w * per_pixel; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS * SUBS
        HWC_ENGINE_STEP();
        if (step < held_cw) {
            const typename C::word_t x = step < d.in_cw ? in_a.read() : in_b.read();
            for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
                held[e][step] = x;
            }
        } else {
            ap_int<C::EW_ACC_BITS> acc[C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=acc complete
            for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
                const int position = order[word_in_pixel * SUBS + sub][e].to_int();
                const int word = position / C::WORD_BYTES;
                const bool second = word >= d.in_cw;
                const hwc_byte_t byte = hwc_word_byte<C>(held[e][word], position % C::WORD_BYTES);
                acc[e] = second ? hwc_byte_value(byte, b_signed) - d.aux_zp : hwc_byte_value(byte, a_signed) - d.in_zp;
            }
            hwc_pixel_lanes<C>(d, acc, word_in_pixel, sub, table, y);
            if (++sub == SUBS) {
                sub = 0;
                out.write(y);
                if (++word_in_pixel == own_cw) word_in_pixel = 0;
            }
        }
        if (++step == per_pixel) step = 0;
    }
}

// A gather's order: one HWC_GATHER_INDEX_BITS-bit input channel per output channel, packed
// PARAMS_WORD_BITS / HWC_GATHER_INDEX_BITS to a params word, a word's entries stored in one cycle
// (into as many lanes' banks; with fewer lanes than entries a word, Vitis spreads the stores).
template <class C>
void hwc_load_gather_order(const typename C::param_t *params, int base, int channels,
                           hwc_gather_index_t order[C::EW_TABLE_ROWS][C::EW_LANES]) {
    const int PER_WORD = C::PARAMS_WORD_BITS / HWC_GATHER_INDEX_BITS;
load:
    for (int i = 0; i < (channels + PER_WORD - 1) / PER_WORD; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::EW_TABLE_ROWS * C::EW_LANES / PER_WORD
        const typename C::param_t word = params[base + i];
        for (int e = 0; e < PER_WORD; ++e) {
#pragma HLS UNROLL
            const int c = i * PER_WORD + e;
            if (c < channels) {
                order[c / C::EW_LANES][c % C::EW_LANES] = hwc_gather_index_t(
                    word.range(HWC_GATHER_INDEX_BITS * e + HWC_GATHER_INDEX_BITS - 1, HWC_GATHER_INDEX_BITS * e));
            }
        }
    }
}

// The processes of a pixel layer's dataflow region.
template <class C>
void hwc_pixel_read_a(const hwc_layer d, const typename C::word_t *fmap_in, hls::stream<typename C::word_t> &words) {
    hwc_read_words<C>(fmap_in, d.in_addr, d.in_h * d.in_w * d.in_cw, words);
}

template <class C>
void hwc_pixel_read_b(const hwc_layer d, const typename C::word_t *fmap_aux, hls::stream<typename C::word_t> &words) {
    // the second tensor: a map word for word (ADD, MUL, a gather of two), or a gate's one pixel (MUL by a gate)
    const bool two = d.mode == HWC_MODE_ADD || d.mode == HWC_MODE_MUL || (d.mode == HWC_MODE_GATHER && d.aux_cw > 0);
    const int pixels = (d.flags & HWC_FLAG_GATE) != 0 ? 1 : d.in_h * d.in_w;
    hwc_read_words<C>(fmap_aux, d.aux_addr, two ? pixels * d.aux_cw : 0, words);
}

template <class C>
void hwc_pixel_work(const hwc_layer d, hls::stream<typename C::word_t> &in_a, hls::stream<typename C::word_t> &in_b,
                    hls::stream<typename C::word_t> &out, const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES],
                    const hwc_mean_value_t mean_table[C::EW_LANES][HWC_MEAN_ENTRIES],
                    const hwc_gather_index_t order[C::EW_TABLE_ROWS][C::EW_LANES]) {
    if (C::HAS_GATHER && d.mode == HWC_MODE_GATHER) {
        hwc_gather_compute<C>(d, in_a, in_b, out, table, order);
    } else if (C::HAS_RESIZE && d.mode == HWC_MODE_RESIZE) {
        hwc_resize_compute<C>(d, in_a, out, table);
    } else if (C::HAS_GLOBAL_POOL && d.mode == HWC_MODE_GLOBAL_POOL) {
        hwc_global_pool_compute<C>(d, in_a, out, table, mean_table);
    } else {
        hwc_pixel_compute<C>(d, in_a, in_b, out, table);
    }
}

template <class C>
void hwc_pixel_write(const hwc_layer d, hls::stream<typename C::word_t> &words, typename C::word_t *fmap_out) {
    const int pixels = d.out_h * d.out_w;
    // the layer's words of every pixel: all of them, or a Concat part's or a gather's range
    const int words_per_pixel = hwc_pixel_own_words(d, C::WORD_BYTES);
    const bool whole = words_per_pixel == d.out_cw;
    hwc_write_segments<C>(words, fmap_out, d.out_addr + d.out_word_offset, whole ? 1 : pixels,
                          whole ? pixels * words_per_pixel : words_per_pixel, d.out_cw);
}

template <class C>
void hwc_pixel_dataflow(const hwc_layer d, const typename C::word_t *fmap_in, const typename C::word_t *fmap_aux,
                        typename C::word_t *fmap_out, const hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES],
                        const hwc_mean_value_t mean_table[C::EW_LANES][HWC_MEAN_ENTRIES],
                        const hwc_gather_index_t order[C::EW_TABLE_ROWS][C::EW_LANES]) {
#pragma HLS DATAFLOW
    hls::stream<typename C::word_t> words_a("words_a"), words_b("words_b"), words_out("words_out");
#pragma HLS STREAM variable=words_a depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_b depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_out depth=C::BURST_WORDS
#pragma HLS BIND_STORAGE variable=words_a type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_b type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_out type=fifo impl=lutram
    hwc_pixel_read_a<C>(d, fmap_in, words_a);
    hwc_pixel_read_b<C>(d, fmap_aux, words_b);
    hwc_pixel_work<C>(d, words_a, words_b, words_out, table, mean_table, order);
    hwc_pixel_write<C>(d, words_out, fmap_out);
}

// A pixel layer: its records (and a mean table) once, then its dataflow once per frame of the batch.
template <class C>
void hwc_pixel_layer(const hwc_layer &d, const typename C::word_t *fmap_in, const typename C::word_t *fmap_aux,
                     typename C::word_t *fmap_out, const typename C::param_t *params, int frames, int frame_words) {
    static hwc_record<C> table[C::EW_TABLE_ROWS][C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=table complete dim=2
    // one record per channel of the words this layer writes (a Concat part, a gather: its own channels)
    const int words = hwc_pixel_own_words(d, C::WORD_BYTES);
    hwc_load_records<C, C::EW_TABLE_ROWS, C::EW_LANES>(params, d.tables_addr, words * C::WORD_BYTES, table);
    static hwc_mean_value_t mean_table[C::EW_LANES][HWC_MEAN_ENTRIES];
#pragma HLS ARRAY_PARTITION variable=mean_table complete dim=1
#pragma HLS ARRAY_PARTITION variable=mean_table cyclic factor=C::PARAMS_WORD_BITS/HWC_MEAN_BITS dim=2
    if (C::HAS_MEAN_TABLE && (d.flags & HWC_FLAG_TABLE) != 0) hwc_load_mean_table<C>(params, d.weights_addr, mean_table);
    static hwc_gather_index_t order[C::EW_TABLE_ROWS][C::EW_LANES];
#pragma HLS ARRAY_PARTITION variable=order complete dim=2
    if (C::HAS_GATHER && d.mode == HWC_MODE_GATHER) hwc_load_gather_order<C>(params, d.weights_addr, d.out_c, order);
frames:
    for (int f = 0; f < frames; ++f) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_BATCH
        hwc_pixel_dataflow<C>(hwc_frame_layer(d, f * frame_words), fmap_in, fmap_aux, fmap_out, table, mean_table,
                              order);
    }
}

#endif
