// hwcodesign: a per-element lookup table (hwcodesign/ops/table): y = table[x - IN_MIN], any
// function of one quantized tensor (Sigmoid, HardSwish, x * sigmoid(x), GELU, ...) as the
// onnxruntime outputs of its 2**b input levels. PE channels per cycle, each lane reading its own
// copy of the table, a LUT ROM (the cost model's `table_rom`), so the loop runs at II=1. A
// lookup mean (LookupMean) sums each channel's table values over the frame, as the global average
// pool sums its inputs, and requantizes once.
#ifndef HWCODESIGN_TABLE_H
#define HWCODESIGN_TABLE_H

#include "hwc_common.h"
#include "hwc_elementwise.h"

template <class C>
void hwc_lookup(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                const typename C::out_t table[C::PE][C::ENTRIES]) {
#pragma HLS ARRAY_PARTITION variable=table complete dim=1
#pragma HLS BIND_STORAGE variable=table type=rom_1p impl=lutram
    HWC_LOOPS_BEGIN(C);
steps:
    for (int step = 0; step < C::OUT_PIXELS * (C::OUT_C / C::PE); ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(C);
        const hwc_vec<typename C::in_t, C::PE> x = in.read();
        hwc_vec<typename C::out_t, C::PE> y;
        for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
            const int index = (int)x.data[lane] - C::IN_MIN;
            y.data[lane] = table[lane][index];
        }
        out.write(y);
    }
}

// The mean over H, W of a lookup table: the frame sums (hwc_elementwise.h) of each lane's ROM values.
template <class C>
void hwc_lookup_mean(hls::stream<hwc_vec<typename C::in_t, C::PE> > &in,
                     hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                     const typename C::value_t table[C::PE][C::ENTRIES], const typename C::rq_t rq[C::OUT_C]) {
#pragma HLS ARRAY_PARTITION variable=table complete dim=1
#pragma HLS BIND_STORAGE variable=table type=rom_1p impl=lutram
    hwc_frame_sums<C>(in, out, table, rq);
}

#endif
