// hwcodesign: channel concatenation of two streams, each part brought to the output grid by its
// own output stage (inputs of a Concat may have different scales). Wider concatenations are
// chains of this stage; later links see parts already on the output grid (identity stages).
// Streams carry words of PE channels; PE divides both parts, so a word never straddles them.
#ifndef HWCODESIGN_CONCAT_H
#define HWCODESIGN_CONCAT_H

#include "hwc_common.h"

// C::A and C::B are the two parts' configs (input type, channels, zero point, output stage).
template <class C>
void hwc_concat2(hls::stream<hwc_vec<typename C::A::in_t, C::PE> > &in_a,
                 hls::stream<hwc_vec<typename C::B::in_t, C::PE> > &in_b,
                 hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                 const typename C::A::rq_t rq_a[C::A::IN_C], const typename C::B::rq_t rq_b[C::B::IN_C]) {
#pragma HLS ARRAY_PARTITION variable=rq_a cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=rq_a type=rom_1p impl=lutram
#pragma HLS ARRAY_PARTITION variable=rq_b cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=rq_b type=rom_1p impl=lutram
    const int FOLDS_A = C::A::IN_C / C::PE;
    const int FOLDS = C::OUT_C / C::PE;
    int fold = 0;
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < C::OUT_PIXELS * FOLDS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        hwc_vec<typename C::out_t, C::PE> y;
        if (fold < FOLDS_A) {
            const hwc_vec<typename C::A::in_t, C::PE> a = in_a.read();
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                const typename C::A::acc_t centred = a.data[lane] - C::A::IN_ZP;
                y.data[lane] = hwc_requantize<typename C::A>(centred, rq_a[fold * C::PE + lane]);
            }
        } else {
            const hwc_vec<typename C::B::in_t, C::PE> b = in_b.read();
            for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                const typename C::B::acc_t centred = b.data[lane] - C::B::IN_ZP;
                y.data[lane] = hwc_requantize<typename C::B>(centred, rq_b[(fold - FOLDS_A) * C::PE + lane]);
            }
        }
        out.write(y);
        if (++fold == FOLDS) fold = 0;
    }
}

#endif
