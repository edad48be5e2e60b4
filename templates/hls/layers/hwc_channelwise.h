// hwcodesign: stages where each output channel reads only its own input channel: depthwise
// convolution, max pooling and average pooling.
//
// Folding: PE channels in parallel, SIMD kernel taps per cycle (taps fold over SF cycles), as
// the cost model's depthwise entry; pools run SIMD = 1. Output stages are shared over the next
// fold's cycles (hwc_shared_output in hwc_window.h). MODE is HWC_DEPTHWISE, HWC_MAX_POOL or HWC_AVG_POOL;
// pools pass a one-entry placeholder weight/bias table that is never read.
#ifndef HWCODESIGN_CHANNELWISE_H
#define HWCODESIGN_CHANNELWISE_H

#include "hwc_common.h"
#include "hwc_window.h"

enum hwc_channelwise_mode { HWC_DEPTHWISE = 0, HWC_MAX_POOL = 1, HWC_AVG_POOL = 2 };

template <class C>
void hwc_channelwise(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
                     hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                     const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                     const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C]) {
    HWC_MAC_STAGE_MEMORIES
    typedef typename C::in_t in_t;
    typedef typename C::acc_t acc_t;
    const int FOLDS = C::OUT_C / C::PE;
    const int SF = C::KH * C::KW / C::SIMD;
    const int WORK = C::OUT_W * FOLDS * SF;

    static typename hwc_centred<in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C];
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=C::IN_LANES dim=3
#pragma HLS DEPENDENCE variable=ring inter false
    acc_t acc[C::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    hwc_shared_output<C> output;
#pragma HLS ARRAY_PARTITION variable=output.pending complete
#pragma HLS ARRAY_PARTITION variable=output.word.data complete

    hwc_read_cursor cursor = {0, 0, 0};
    HWC_LOOPS_BEGIN(C);
rows:
    for (int oy = 0; oy < C::OUT_H; ++oy) {
        const int top = oy * C::STRIDE_H - C::PAD_T;
        hwc_ring_fill<C, in_t>(in, ring, cursor, hwc_rows_needed<C>(oy));
        const int ahead = hwc_words_until<C>(cursor, hwc_rows_needed<C>(oy + 1));
        const int steps = WORK + output.STEPS > ahead ? WORK + output.STEPS : ahead;
        hwc_fold_cursor at = {0, 0, 0};
        output.start();
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=C::ROW_STEPS max=C::ROW_STEPS
            HWC_LOOP_ITERATION(C);
            if (step < ahead) hwc_ring_read<C, in_t>(in, ring, cursor);
            output.convert(bias, rq, out);
            if (step < WORK) {
                for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                    const int c = at.fold * C::PE + lane;
                    acc_t sum = at.sf == 0 ? acc_t(C::MODE == HWC_MAX_POOL ? C::ACC_LOWEST : 0) : acc[lane];
                    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                        const int tap = at.sf * C::SIMD + s;
                        const int iy = top + (tap / C::KW) * C::DIL_H;
                        const int ix = at.ox * C::STRIDE_W - C::PAD_L + (tap % C::KW) * C::DIL_W;
                        bool inside;
                        const ap_int<in_t::width + 1> x = hwc_ring_at<C, in_t>(ring, iy, ix, c, inside);
                        if (C::MODE == HWC_DEPTHWISE) {
                            sum += hwc_multiplier<(C::LUT_MACS != 0)>::mul(hwc_weight<C::WEIGHT_CODE_BITS>::value(hwc_read<typename C::weight_t>(weights[lane][at.fold * SF + at.sf][s])), x);
                        } else if (C::MODE == HWC_AVG_POOL) {
                            sum += x;
                        } else if (inside && x > sum) {
                            sum = x;
                        }
                    }
                    acc[lane] = sum;
                    if (at.sf == SF - 1) output.take(at.fold, lane, sum);
                }
                hwc_fold_advance<FOLDS, SF>(at);
            }
        }
    }
}

#endif
