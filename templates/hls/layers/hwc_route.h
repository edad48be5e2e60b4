// hwcodesign: channel re-routing, no arithmetic: a channel slice (one output of a Split or a
// channel Slice) and a channel permutation (a channel shuffle). The output stage is the identity
// (RQ_IDENTITY) unless a quantizer moved the output to another grid. Streams carry words of PE
// channels in and out.
#ifndef HWCODESIGN_ROUTE_H
#define HWCODESIGN_ROUTE_H

#include "hwc_common.h"
#include "hwc_window.h"

// Channels [START, START + OUT_C) of every pixel: every input word is read, the words of the range
// written (PE divides START, IN_C and OUT_C, so a word is wholly inside or outside the range).
template <class C>
void hwc_channel_slice(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                       hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C]) {
    HWC_LANE_TABLE
    const int IN_FOLDS = C::IN_C / C::PE;
    const int FIRST = C::START / C::PE;
    const int LAST = FIRST + C::OUT_C / C::PE;
    int fold = 0;
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < C::IN_PIXELS * IN_FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> x = in.read();
        if (fold >= FIRST && fold < LAST) {
            hwc_vec<typename C::out_t, C::PE> y;
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                const typename C::acc_t centred = x.data[lane] - C::IN_ZP;
                y.data[lane] = hwc_requantize<C>(centred, rq[(fold - FIRST) * C::PE + lane]);
            }
            out.write(y);
        }
        if (++fold == IN_FOLDS) fold = 0;
    }
}

// Output channel c of a pixel is its input channel order[c]. A pixel's words fill one half of a
// two-pixel buffer while the previous pixel leaves the other half in the new order, so the loop
// runs C / PE iterations per pixel and as many more to drain the last. BANKS: 1 at PE=1 (a memory
// written and read once a cycle), else every entry (registers: PE lanes read any channels).
template <class C, class ORDER>
void hwc_channel_permute(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                         hls::stream<hwc_vec<typename C::out_t, C::PE> > &out, const typename C::rq_t rq[C::OUT_C],
                         const ORDER order[C::OUT_C]) {
    HWC_LANE_TABLE
#pragma HLS ARRAY_PARTITION variable=order cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=order type=rom_1p impl=lutram
    typedef typename C::in_t in_t;
    const int FOLDS = C::OUT_C / C::PE;
    typename hwc_centred<in_t>::type pixel[2 * C::IN_C];
#pragma HLS ARRAY_PARTITION variable=pixel cyclic factor=C::BANKS
#pragma HLS DEPENDENCE variable=pixel inter false
    int fold = 0, index = 0;
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < (C::IN_PIXELS + 1) * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const int half = index & 1;
        if (index < C::IN_PIXELS) {
            const hwc_vec<in_t, C::PE> x = in.read();
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                pixel[half * C::IN_C + fold * C::PE + lane] = x.data[lane] - C::IN_ZP;
            }
        }
        if (index > 0) {
            hwc_vec<typename C::out_t, C::PE> y;
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                const int c = fold * C::PE + lane;
                const typename C::acc_t centred = pixel[(half ^ 1) * C::IN_C + order[c]];
                y.data[lane] = hwc_requantize<C>(centred, rq[c]);
            }
            out.write(y);
        }
        if (++fold == FOLDS) {
            fold = 0;
            ++index;
        }
    }
}

#endif
