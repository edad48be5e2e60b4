// hwcodesign: per-pixel stages (activation/rescale, residual add, global average pool, nearest
// upsampling). Each processes PE channels per cycle, one output stage per lane.
#ifndef HWCODESIGN_ELEMENTWISE_H
#define HWCODESIGN_ELEMENTWISE_H

#include "hwc_common.h"
#include "hwc_window.h"

// A standalone output stage: rescale, clamp (fused ReLU/Clip), LeakyReLU.
template <class C>
void hwc_act(hls::stream<hwc_vec<typename C::in_t, C::IN_C> > &in,
             hls::stream<hwc_vec<typename C::out_t, C::OUT_C> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    const int FOLDS = C::OUT_C / C::PE;
    hwc_vec<typename C::in_t, C::IN_C> x;
    hwc_vec<typename C::out_t, C::OUT_C> y;
    int fold = 0;
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        if (fold == 0) x = in.read();
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = fold * C::PE + lane;
            const typename C::acc_t centred = x.data[c] - C::IN_ZP;
            y.data[c] = hwc_requantize<C>(centred, rq[c]);
        }
        if (++fold == FOLDS) {
            fold = 0;
            out.write(y);
        }
    }
}

// Residual add: both inputs are brought to a common grid by integer multipliers with one
// shared shift (the Add's requantization), so the sum is exact before the single rounding.
template <class C>
void hwc_add(hls::stream<hwc_vec<typename C::in_t, C::IN_C> > &in_a,
             hls::stream<hwc_vec<typename C::in_b_t, C::IN_C> > &in_b,
             hls::stream<hwc_vec<typename C::out_t, C::OUT_C> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::acc_t acc_t;
    const int FOLDS = C::OUT_C / C::PE;
    hwc_vec<typename C::in_t, C::IN_C> a;
    hwc_vec<typename C::in_b_t, C::IN_C> b;
    hwc_vec<typename C::out_t, C::OUT_C> y;
    int fold = 0;
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        if (fold == 0) {
            a = in_a.read();
            b = in_b.read();
        }
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = fold * C::PE + lane;
            const acc_t sum = acc_t(a.data[c] - C::IN_ZP) * C::MULT_A + acc_t(b.data[c] - C::IN_B_ZP) * C::MULT_B;
            y.data[c] = hwc_requantize<C>(sum, rq[c]);
        }
        if (++fold == FOLDS) {
            fold = 0;
            out.write(y);
        }
    }
}

// Global average pool: per-channel sums over the frame, then one output stage per channel
// (the 1/(H*W) is part of the requantization ratio).
template <class C>
void hwc_global_avg_pool(hls::stream<hwc_vec<typename C::in_t, C::IN_C> > &in,
                         hls::stream<hwc_vec<typename C::out_t, C::OUT_C> > &out,
                         const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::acc_t acc_t;
    const int FOLDS = C::OUT_C / C::PE;
    static acc_t sums[C::OUT_C];
#pragma HLS ARRAY_PARTITION variable=sums cyclic factor=C::PE
    hwc_vec<typename C::in_t, C::IN_C> x;
    int fold = 0, pixel = 0;
accumulate:
    for (int step = 0; step < C::IN_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        if (fold == 0) x = in.read();
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = fold * C::PE + lane;
            sums[c] = (pixel == 0 ? acc_t(0) : sums[c]) + acc_t(x.data[c] - C::IN_ZP);
        }
        if (++fold == FOLDS) {
            fold = 0;
            ++pixel;
        }
    }
    hwc_vec<typename C::out_t, C::OUT_C> y;
emit:
    for (int f = 0; f < FOLDS; ++f) {
#pragma HLS PIPELINE II=1
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int c = f * C::PE + lane;
            y.data[c] = hwc_requantize<C>(sums[c], rq[c]);
        }
    }
    out.write(y);
}

// Nearest-neighbour upsampling by integer factors: each input row is emitted SCALE_H times,
// each pixel SCALE_W times, while the next input row streams into the second ring row.
template <class C>
void hwc_resize(hls::stream<hwc_vec<typename C::in_t, C::IN_C> > &in,
                hls::stream<hwc_vec<typename C::out_t, C::OUT_C> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    typedef typename C::in_t in_t;
    const int FOLDS = C::OUT_C / C::PE;
    const int WORK = C::SCALE_H * C::OUT_W * FOLDS;
    static typename hwc_centred<in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C];
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=C::CHANNEL_PARTITION dim=3
#pragma HLS DEPENDENCE variable=ring inter false
    hwc_vec<typename C::out_t, C::OUT_C> y;
    hwc_read_cursor cursor = {0, 0};
rows:
    for (int iy = 0; iy < C::IN_H; ++iy) {
        hwc_ring_fill<C, in_t>(in, ring, cursor, iy + 1);
        const int ahead = iy + 1 < C::IN_H ? C::IN_W : 0;
        const int steps = WORK > ahead ? WORK : ahead;
        int ox = 0, fold = 0;
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=C::ROW_STEPS max=C::ROW_STEPS
            if (step < ahead) hwc_ring_read<C, in_t>(in, ring, cursor);
            if (step < WORK) {
                const int ix = ox / C::SCALE_W;
                for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                    const int c = fold * C::PE + lane;
                    const typename C::acc_t centred = ring[iy % C::RING_ROWS][ix][c];
                    y.data[c] = hwc_requantize<C>(centred, rq[c]);
                }
                if (++fold == FOLDS) {
                    fold = 0;
                    out.write(y);
                    if (++ox == C::OUT_W) ox = 0;
                }
            }
        }
    }
}

#endif
