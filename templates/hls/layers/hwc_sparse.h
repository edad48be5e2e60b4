// hwcodesign: submanifold sparse stages (event-camera networks, ESDA-style token dataflow).
//
// A sparse tensor streams as tokens, one per active site in raster order: (y, x, all channels),
// then one token with `last` set that ends the frame. Work and data therefore scale with the
// number of active sites. The sparse conv keeps a line buffer of its window's rows as dense
// rows of centred values plus one bitmap per row (which sites hold a value); inactive
// neighbours read as 0 by the bitmap, so the rows are never cleared, only their bitmaps (one
// register each, cleared in a cycle). Per output row it reads the tokens of the rows its window
// needs, finds the row's active outputs (stride 1: the input row's bitmap; strided: any active
// site under its downsampling rule's window, a bitwise OR), and runs PE x SIMD MACs only at those, stepping from one
// to the next with a priority encoder. Numerics are the dense conv's (hwc_common.h).
#ifndef HWCODESIGN_SPARSE_H
#define HWCODESIGN_SPARSE_H

#include <ap_axi_sdata.h>
#include "hwc_common.h"

// One active site (or, with `last`, the end of the frame).
template <typename T, int N>
struct hwc_token {
    T data[N];
    ap_uint<16> y;
    ap_uint<16> x;
    bool last;
};

// Position of the lowest set bit of `bits` (W if none): the next active site of a row.
template <int W>
int hwc_first_set(const ap_uint<W> &bits) {
#pragma HLS INLINE
    int position = W;
    for (int i = 0; i < W; ++i) {  // from the top bit down: the last hit is the lowest
#pragma HLS UNROLL
        const int bit = W - 1 - i;
        if (bits[bit]) position = bit;
    }
    return position;
}

template <int W>
int hwc_count_set(const ap_uint<W> &bits) {
#pragma HLS INLINE
    int count = 0;
    for (int i = 0; i < W; ++i) {
#pragma HLS UNROLL
        count += bits[i] ? 1 : 0;
    }
    return count;
}

// AXI4-Stream -> tokens. Per active site a header word (bits 15..0 x, 30..16 y, the top bit
// clear) and the site's channels as a word-aligned pixel (hwc_axis.h with PIXELS_PER_WORD 1: a
// token carries one site, however narrow); a header word with the top bit set ends the frame
// (and carries TLAST). Frames differ in length: the loop runs until that word, bounded by a full
// frame.
template <int WORD_BITS, typename T, int CHANNELS, int MAX_SITES>
void hwc_axis_to_tokens(hls::stream<ap_axiu<WORD_BITS, 0, 0, 0> > &in, hls::stream<hwc_token<T, CHANNELS> > &out) {
    const int BITS = T::width;
    const int PER_WORD = WORD_BITS / BITS;
    const int WORDS_PER_SITE = (CHANNELS + PER_WORD - 1) / PER_WORD;
    hwc_token<T, CHANNELS> token;
    int word_index = -1;  // -1: the next word is a header
    HWC_LOOPS_BEGIN(hwc_axis_tokens_loops<WORD_BITS, T, CHANNELS, MAX_SITES>);
words:
    for (int step = 0; step < MAX_SITES * (WORDS_PER_SITE + 1) + 1; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_axis_tokens_loops<WORD_BITS, T, CHANNELS, MAX_SITES>);
        const ap_axiu<WORD_BITS, 0, 0, 0> word = in.read();
        if (word_index < 0) {
            token.last = word.data[WORD_BITS - 1] == 1;
            token.x = word.data.range(15, 0);
            token.y = word.data.range(30, 16);
            if (token.last) {
                out.write(token);
                break;
            }
            word_index = 0;
            continue;
        }
        for (int e = 0; e < PER_WORD; ++e) {
#pragma HLS UNROLL
            const int c = word_index * PER_WORD + e;
            if (c < CHANNELS) token.data[c] = T(word.data.range(e * BITS + BITS - 1, e * BITS));
        }
        if (++word_index == WORDS_PER_SITE) {
            word_index = -1;
            out.write(token);
        }
    }
}

// Two copies of a token stream (a sparse tensor read by two layers: a residual shortcut).
template <typename T, int N, int MAX_SITES>
void hwc_token_fanout2(hls::stream<hwc_token<T, N> > &in, hls::stream<hwc_token<T, N> > &a,
                       hls::stream<hwc_token<T, N> > &b) {
    HWC_LOOPS_BEGIN(hwc_token_fanout_loops<T, N, MAX_SITES>);
tokens:
    for (int i = 0; i < MAX_SITES + 1; ++i) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_token_fanout_loops<T, N, MAX_SITES>);
        const hwc_token<T, N> token = in.read();
        a.write(token);
        b.write(token);
        if (token.last) break;
    }
}

// The line buffer of a sparse conv: WINDOW_ROWS rows of centred values and their bitmaps.
template <class C>
struct hwc_sparse_ring {
    typedef typename hwc_centred<typename C::in_t>::type value_t;
    value_t rows[C::WINDOW_ROWS][C::IN_W][C::IN_C];
    ap_uint<C::IN_W> active[C::WINDOW_ROWS];
    int cleared;  // rows up to this one have their bitmap cleared (or filled) for this frame

    // Rows (cleared, row] begin: clear their bitmaps (every slot one of them will use).
    void advance(int row) {
#pragma HLS INLINE
        const int span = row - cleared;
        for (int s = 0; s < C::WINDOW_ROWS; ++s) {
#pragma HLS UNROLL
            const int first = cleared + 1;
            const int offset = ((s - first % C::WINDOW_ROWS) + C::WINDOW_ROWS) % C::WINDOW_ROWS;
            if (span >= C::WINDOW_ROWS || offset < span) active[s] = 0;
        }
        if (row > cleared) cleared = row;
    }

    void write(const hwc_token<typename C::in_t, C::IN_C> &token) {
#pragma HLS INLINE
        const int slot = token.y % C::WINDOW_ROWS;
        for (int c = 0; c < C::IN_C; ++c) {
#pragma HLS UNROLL
            rows[slot][token.x][c] = value_t(token.data[c] - C::IN_ZP);
        }
        active[slot][token.x] = 1;
    }

    // The centred value at (iy, ix, c): 0 outside the image and at inactive sites.
    value_t at(int iy, int ix, int c) const {
#pragma HLS INLINE
        if (iy < 0 || iy >= C::IN_H || ix < 0 || ix >= C::IN_W) return 0;
        const int slot = iy % C::WINDOW_ROWS;
        return active[slot][ix] ? rows[slot][ix][c] : value_t(0);
    }
};

// Output sites of row `oy` that are active: any active input site under the mask window
// (MASK_KH x MASK_KW from (oy * STRIDE_H - MASK_PAD_T, ox * STRIDE_W - MASK_PAD_L)): the site
// itself at stride 1 (a 1x1 window), the layer's downsampling rule when strided (ESDA's stride
// block or the conv's own window; hwcodesign/ops/sparse/ir.py DOWNSAMPLINGS). The ring holds
// the rows of both windows (RING_TOP rows above oy * STRIDE_H, WINDOW_ROWS in all).
template <class C>
ap_uint<C::OUT_W> hwc_sparse_outputs(const hwc_sparse_ring<C> &ring, int oy) {
#pragma HLS INLINE
    ap_uint<C::IN_W> any = 0;
    for (int my = 0; my < C::MASK_KH; ++my) {
#pragma HLS UNROLL
        const int iy = oy * C::STRIDE_H - C::MASK_PAD_T + my;
        if (iy >= 0 && iy < C::IN_H) any |= ring.active[iy % C::WINDOW_ROWS];
    }
    ap_uint<C::OUT_W> outputs = 0;
    for (int ox = 0; ox < C::OUT_W; ++ox) {
#pragma HLS UNROLL
        for (int mx = 0; mx < C::MASK_KW; ++mx) {
#pragma HLS UNROLL
            const int ix = ox * C::STRIDE_W - C::MASK_PAD_L + mx;
            if (ix >= 0 && ix < C::IN_W && any[ix]) outputs[ox] = 1;
        }
    }
    return outputs;
}

// The sparse conv: DEPTHWISE runs PE channels x one tap per cycle, otherwise PE outputs x SIMD
// channels of one tap (the dense conv's im2col order, weights[PE][fold * SF + step][SIMD]). Every
// fold's PE results are requantized as the fold ends; the token leaves after the last fold.
template <class C>
void hwc_subm_conv(hls::stream<hwc_token<typename C::in_t, C::IN_C> > &in,
                   hls::stream<hwc_token<typename C::out_t, C::OUT_C> > &out,
                   const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                   const typename hwc_table_element<typename C::bias_t>::type bias[C::OUT_C], const typename C::rq_t rq[C::OUT_C]) {
    HWC_MAC_STAGE_WEIGHTS
#pragma HLS ARRAY_PARTITION variable=bias cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=bias type=rom_1p impl=lutram
#pragma HLS ARRAY_PARTITION variable=rq cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=rq type=rom_1p impl=lutram
    typedef typename C::in_t in_t;
    typedef typename C::acc_t acc_t;
    static hwc_sparse_ring<C> ring;
#pragma HLS ARRAY_PARTITION variable=ring.rows cyclic factor=C::IN_LANES dim=3
#pragma HLS ARRAY_PARTITION variable=ring.active complete dim=1
#pragma HLS DEPENDENCE variable=ring.rows inter false
    const int FOLDS = C::OUT_C / C::PE;
    const int SF = C::DEPTHWISE ? C::KH * C::KW : C::KH * C::KW * (C::IN_C / C::SIMD);
    acc_t acc[C::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    hwc_token<typename C::out_t, C::OUT_C> result;
#pragma HLS ARRAY_PARTITION variable=result.data complete

    ring.cleared = -1;
    HWC_LOOPS_BEGIN(C);
    hwc_token<in_t, C::IN_C> pending;
    bool have_pending = false, ended = false;
rows:
    for (int oy = 0; oy < C::OUT_H; ++oy) {
        // the last input row of the conv's and the mask's windows; its tokens (and all before) must be in
        int last_row = oy * C::STRIDE_H - C::RING_TOP + C::WINDOW_ROWS - 1;
        if (last_row >= C::IN_H) last_row = C::IN_H - 1;
    read:  // at most the rows this output row adds: the window's first time, then STRIDE_H rows
        for (int i = 0; i < C::IN_W * hwc_max<C::WINDOW_ROWS, C::STRIDE_H>::value + 1; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::IN_W * C::STRIDE_H + 1
            HWC_LOOP_ITERATION(C);
            if (ended) break;
            if (!have_pending) {
                pending = in.read();
                have_pending = true;
            }
            if (pending.last) {
                ended = true;
                break;
            }
            if (pending.y > last_row) break;  // a later row: this window is complete
            ring.advance(pending.y);
            ring.write(pending);
            have_pending = false;
        }
        ring.advance(last_row);  // the window's rows that had no tokens are empty
        ap_uint<C::OUT_W> todo = hwc_sparse_outputs<C>(ring, oy);
        const int sites = hwc_count_set<C::OUT_W>(todo);
        if (sites == 0) continue;
        int ox = hwc_first_set<C::OUT_W>(todo);
        int fold = 0, step_in_fold = 0;
    steps:
        for (int step = 0; step < sites * FOLDS * SF; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::OUT_W * C::ROW_STEPS
            HWC_LOOP_ITERATION(C);
            const int tap = C::DEPTHWISE ? step_in_fold : step_in_fold / (C::IN_C / C::SIMD);
            const int chunk = C::DEPTHWISE ? 0 : step_in_fold % (C::IN_C / C::SIMD);
            const int iy = oy * C::STRIDE_H - C::PAD_T + (tap / C::KW) * C::DIL_H;
            const int ix = ox * C::STRIDE_W - C::PAD_L + (tap % C::KW) * C::DIL_W;
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                acc_t sum = step_in_fold == 0 ? acc_t(0) : acc[lane];
                for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                    const int c = C::DEPTHWISE ? fold * C::PE + lane : chunk * C::SIMD + s;
                    const ap_int<in_t::width + 1> x = ring.at(iy, ix, c);
                    sum += hwc_multiplier<(C::LUT_MACS != 0)>::mul(hwc_read<typename C::weight_t>(weights[lane][fold * SF + step_in_fold][s]), x);
                }
                acc[lane] = sum;
                if (step_in_fold == SF - 1) {
                    const int o = fold * C::PE + lane;
                    result.data[o] = hwc_requantize<C>(acc_t(sum + hwc_read<typename C::bias_t>(bias[o])), rq[o]);
                }
            }
            if (++step_in_fold == SF) {
                step_in_fold = 0;
                if (++fold == FOLDS) {
                    fold = 0;
                    result.y = oy;
                    result.x = ox;
                    result.last = false;
                    out.write(result);
                    todo[ox] = 0;
                    ox = hwc_first_set<C::OUT_W>(todo);
                }
            }
        }
    }
    // input rows no output reads (a stride leaving the bottom rows unused), then the frame's end
drain:
    for (int i = 0; i < C::IN_H * C::IN_W + 1; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=C::IN_W + 1
        HWC_LOOP_ITERATION(C);
        if (ended) break;
        if (!have_pending) pending = in.read();
        have_pending = false;
        if (pending.last) ended = true;
    }
    result.last = true;
    out.write(result);
}

// Elementwise on tokens: the output stage of each channel (Act), or of a residual sum of two
// token streams of one active set (Add: both carry the same sites in the same order).
template <class C>
void hwc_sparse_act(hls::stream<hwc_token<typename C::in_t, C::OUT_C> > &in,
                    hls::stream<hwc_token<typename C::out_t, C::OUT_C> > &out, const typename C::rq_t rq[C::OUT_C]) {
#pragma HLS ARRAY_PARTITION variable=rq complete
    HWC_LOOPS_BEGIN(C);
tokens:
    for (int i = 0; i < C::MAX_SITES + 1; ++i) {
#pragma HLS PIPELINE II=C::FOLDS
        HWC_LOOP_ITERATION(C);
        const hwc_token<typename C::in_t, C::OUT_C> token = in.read();
        hwc_token<typename C::out_t, C::OUT_C> y;
        y.y = token.y;
        y.x = token.x;
        y.last = token.last;
        for (int c = 0; c < C::OUT_C; ++c) {
#pragma HLS UNROLL
            y.data[c] = hwc_requantize<C>(typename C::acc_t(token.data[c] - C::IN_ZP), rq[c]);
        }
        out.write(y);
        if (token.last) break;
    }
}

template <class C>
void hwc_sparse_add(hls::stream<hwc_token<typename C::in_t, C::OUT_C> > &in_a,
                    hls::stream<hwc_token<typename C::in_b_t, C::OUT_C> > &in_b,
                    hls::stream<hwc_token<typename C::out_t, C::OUT_C> > &out, const typename C::rq_t rq[C::OUT_C]) {
#pragma HLS ARRAY_PARTITION variable=rq complete
    typedef typename C::acc_t acc_t;
    HWC_LOOPS_BEGIN(C);
tokens:
    for (int i = 0; i < C::MAX_SITES + 1; ++i) {
#pragma HLS PIPELINE II=C::FOLDS
        HWC_LOOP_ITERATION(C);
        const hwc_token<typename C::in_t, C::OUT_C> a = in_a.read();
        const hwc_token<typename C::in_b_t, C::OUT_C> b = in_b.read();
        hwc_token<typename C::out_t, C::OUT_C> y;
        y.y = a.y;
        y.x = a.x;
        y.last = a.last;
        for (int c = 0; c < C::OUT_C; ++c) {
#pragma HLS UNROLL
            const acc_t sum = acc_t(a.data[c] - C::IN_ZP) * C::MULT_A + acc_t(b.data[c] - C::IN_B_ZP) * C::MULT_B;
            y.data[c] = hwc_requantize<C>(sum, rq[c]);
        }
        out.write(y);
        if (a.last) break;
    }
}

// The end of the sparse part: per-channel sums over the active sites (inactive ones are zero),
// then one dense output pixel in words of PE channels (the 1/(H*W) is in the requantization).
template <class C>
void hwc_sparse_global_pool(hls::stream<hwc_token<typename C::in_t, C::IN_C> > &in,
                            hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::acc_t acc_t;
    acc_t sums[C::OUT_C];
#pragma HLS ARRAY_PARTITION variable=sums complete
    for (int c = 0; c < C::OUT_C; ++c) {
#pragma HLS UNROLL
        sums[c] = 0;
    }
    HWC_LOOPS_BEGIN(C);
tokens:
    for (int i = 0; i < C::MAX_SITES + 1; ++i) {
#pragma HLS PIPELINE II=C::FOLDS
        HWC_LOOP_ITERATION(C);
        const hwc_token<typename C::in_t, C::IN_C> token = in.read();
        if (token.last) break;
        for (int c = 0; c < C::OUT_C; ++c) {
#pragma HLS UNROLL
            sums[c] += acc_t(token.data[c] - C::IN_ZP);
        }
    }
emit:
    for (int f = 0; f < C::FOLDS; ++f) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        hwc_vec<typename C::out_t, C::PE> y;
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = f * C::PE + lane;
            y.data[lane] = hwc_requantize<C>(sums[c], rq[c]);
        }
        out.write(y);
    }
}

#endif
