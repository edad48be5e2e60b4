// hwcodesign: per-pixel stages (activation/rescale, residual add, product of two activations,
// global average pool, nearest upsampling). Each processes PE channels per cycle, one output stage per lane; streams carry
// words of PE channels in and out, so a stage holds no whole pixel.
#ifndef HWCODESIGN_ELEMENTWISE_H
#define HWCODESIGN_ELEMENTWISE_H

#include "hwc_common.h"
#include "hwc_window.h"

// A standalone output stage: rescale, clamp (fused ReLU/Clip), LeakyReLU.
template <class C>
void hwc_act(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
             hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    const int FOLDS = C::OUT_C / C::PE;
    int fold = 0;
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> x = in.read();
        hwc_vec<typename C::out_t, C::PE> y;
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const typename C::acc_t centred = x.data[lane] - C::IN_ZP;
            y.data[lane] = hwc_requantize<C>(centred, rq[fold * C::PE + lane]);
        }
        out.write(y);
        if (++fold == FOLDS) fold = 0;
    }
}

// Two inputs of the same shape, word by word: `F::of(a, b)` combines one lane's elements into
// the accumulator, then one output stage per lane.
template <class C, class F>
void hwc_pairwise(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in_a,
                  hls::stream<hwc_vec<typename C::in_b_t, C::PE> > &in_b,
                  hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    const int FOLDS = C::OUT_C / C::PE;
    int fold = 0;
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> a = in_a.read();
        const hwc_vec<typename C::in_b_t, C::PE> b = in_b.read();
        hwc_vec<typename C::out_t, C::PE> y;
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            y.data[lane] = hwc_requantize<C>(F::of(a.data[lane], b.data[lane]), rq[fold * C::PE + lane]);
        }
        out.write(y);
        if (++fold == FOLDS) fold = 0;
    }
}

// Residual add (`hwc_pairwise<C, hwc_scaled_sum<C> >`): both inputs are brought to a common grid by integer multipliers with one
// shared shift (the Add's requantization), so the sum is exact before the single rounding.
template <class C>
struct hwc_scaled_sum {
    static typename C::acc_t of(const typename C::in_t a, const typename C::in_b_t b) {
        typedef typename C::acc_t acc_t;
        return acc_t(a - C::IN_ZP) * C::MULT_A + acc_t(b - C::IN_B_ZP) * C::MULT_B;
    }
};

// Product of two activations of the same shape (`hwc_pairwise<C, hwc_product<C> >`): (a - a_zp) * (b - b_zp), exact, then one rounding.
template <class C>
struct hwc_product {
    static typename C::acc_t of(const typename C::in_t a, const typename C::in_b_t b) {
        typedef typename C::acc_t acc_t;
        return acc_t(a - C::IN_ZP) * acc_t(b - C::IN_B_ZP);
    }
};

// Product by a per-channel gate (squeeze-excitation): the gate's OUT_C values arrive once per
// frame and are held centred (`gate` loop), then the map streams through (`steps` loop). The gate
// is computed from this map, so the map's FIFO in front of this stage holds a whole frame.
template <class C>
void hwc_mul_gate(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in_a,
                  hls::stream<hwc_vec<typename C::in_b_t, C::PE> > &in_gate,
                  hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::acc_t acc_t;
    const int FOLDS = C::OUT_C / C::PE;
    typename C::gate_t gate[C::OUT_C];
#pragma HLS ARRAY_PARTITION variable=gate cyclic factor=C::PE
    int fold = 0;
    HWC_LOOPS_BEGIN(C);
gate:
    for (int f = 0; f < FOLDS; ++f) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_b_t, C::PE> g = in_gate.read();
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            gate[f * C::PE + lane] = g.data[lane] - C::IN_B_ZP;
        }
    }
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> a = in_a.read();
        hwc_vec<typename C::out_t, C::PE> y;
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const acc_t product = acc_t(a.data[lane] - C::IN_ZP) * acc_t(gate[fold * C::PE + lane]);
            y.data[lane] = hwc_requantize<C>(product, rq[fold * C::PE + lane]);
        }
        out.write(y);
        if (++fold == FOLDS) fold = 0;
    }
}

// What a frame-sum stage adds per element: x - IN_ZP (the global average pool), or the lane's
// table value of x (a lookup mean, hwc_table.h).
struct hwc_no_table {};

template <class C>
typename C::acc_t hwc_sum_term(typename C::in_t x, int lane, const hwc_no_table &) {
#pragma HLS INLINE
    (void)lane;
    return typename C::acc_t(x - C::IN_ZP);
}

template <class C, class V, int ENTRIES>
typename C::acc_t hwc_sum_term(typename C::in_t x, int lane, const V (*table)[ENTRIES]) {
#pragma HLS INLINE
    return typename C::acc_t(table[lane][(int)x - C::IN_MIN]);
}

// Per-channel sums over the frame, then one output stage per channel (the 1/(H*W) is part of the
// requantization ratio): the global average pool and the lookup mean.
template <class C, class Terms>
void hwc_frame_sums(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                    hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const Terms &terms,
                    const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::acc_t acc_t;
    const int FOLDS = C::OUT_C / C::PE;
    static acc_t sums[C::OUT_C];
#pragma HLS ARRAY_PARTITION variable=sums cyclic factor=C::PE
    int fold = 0, pixel = 0;
    HWC_LOOPS_BEGIN(C);
accumulate:
    for (int step = 0; step < C::IN_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> x = in.read();
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = fold * C::PE + lane;
            sums[c] = (pixel == 0 ? acc_t(0) : sums[c]) + hwc_sum_term<C>(x.data[lane], lane, terms);
        }
        if (++fold == FOLDS) {
            fold = 0;
            ++pixel;
        }
    }
emit:
    for (int f = 0; f < FOLDS; ++f) {
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

// Global average pool: per-channel sums over the frame, then one output stage per channel.
template <class C>
void hwc_global_avg_pool(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                         hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                         const typename C::rq_t rq[C::OUT_C]) {
    hwc_frame_sums<C>(in, out, hwc_no_table(), rq);
}

// Nearest-neighbour upsampling by integer factors: each input row is emitted SCALE_H times,
// each pixel SCALE_W times, while the next input row streams into the second ring row.
template <class C>
void hwc_resize(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
                hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::in_t in_t;
    const int FOLDS = C::OUT_C / C::PE;
    const int WORK = C::SCALE_H * C::OUT_W * FOLDS;
    static typename hwc_centred<in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C];
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=C::IN_LANES dim=3
#pragma HLS DEPENDENCE variable=ring inter false
    hwc_read_cursor cursor = {0, 0, 0};
    HWC_LOOPS_BEGIN(C);
rows:
    for (int iy = 0; iy < C::IN_H; ++iy) {
        hwc_ring_fill<C, in_t>(in, ring, cursor, iy + 1);
        const int ahead = iy + 1 < C::IN_H ? hwc_words_until<C>(cursor, iy + 2) : 0;
        const int steps = WORK > ahead ? WORK : ahead;
        int ox = 0, fold = 0;
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=C::ROW_STEPS max=C::ROW_STEPS
            HWC_LOOP_ITERATION(C);
            if (step < ahead) hwc_ring_read<C, in_t>(in, ring, cursor);
            if (step < WORK) {
                const int ix = ox / C::SCALE_W;
                hwc_vec<typename C::out_t, C::PE> y;
                for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                    const int c = fold * C::PE + lane;
                    const typename C::acc_t centred = ring[iy % C::RING_ROWS][ix][c];
                    y.data[lane] = hwc_requantize<C>(centred, rq[c]);
                }
                out.write(y);
                if (++fold == FOLDS) {
                    fold = 0;
                    if (++ox == C::OUT_W) ox = 0;
                }
            }
        }
    }
}

#endif
