// hwcodesign: channel concatenation of two streams, each part brought to the output grid by its
// own output stage (inputs of a Concat may have different scales). Wider concatenations are
// chains of this stage; later links see parts already on the output grid (identity stages).
#ifndef HWCODESIGN_CONCAT_H
#define HWCODESIGN_CONCAT_H

#include "hwc_common.h"

// C::A and C::B are the two parts' configs (input type, channels, zero point, output stage).
template <class C>
void hwc_concat2(hls::stream<hwc_vec<typename C::A::in_t, C::A::IN_C> > &in_a,
                 hls::stream<hwc_vec<typename C::B::in_t, C::B::IN_C> > &in_b,
                 hls::stream<hwc_vec<typename C::out_t, C::OUT_C> > &out,
                 const typename C::A::rq_t rq_a[C::A::IN_C], const typename C::B::rq_t rq_b[C::B::IN_C]) {
#pragma HLS ARRAY_PARTITION variable=rq_a cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=rq_a type=rom_1p impl=lutram
#pragma HLS ARRAY_PARTITION variable=rq_b cyclic factor=C::PE
#pragma HLS BIND_STORAGE variable=rq_b type=rom_1p impl=lutram
    const int FOLDS = C::OUT_C / C::PE;
    hwc_vec<typename C::A::in_t, C::A::IN_C> a;
    hwc_vec<typename C::B::in_t, C::B::IN_C> b;
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
            if (c < C::A::IN_C) {
                const typename C::A::acc_t centred = a.data[c] - C::A::IN_ZP;
                y.data[c] = hwc_requantize<typename C::A>(centred, rq_a[c]);
            } else {
                const int cb = c - C::A::IN_C;
                const typename C::B::acc_t centred = b.data[cb] - C::B::IN_ZP;
                y.data[c] = hwc_requantize<typename C::B>(centred, rq_b[cb]);
            }
        }
        if (++fold == FOLDS) {
            fold = 0;
            out.write(y);
        }
    }
}

#endif
