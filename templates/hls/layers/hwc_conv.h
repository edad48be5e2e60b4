// hwcodesign: a standard or grouped convolution (and a fully connected layer, which is a
// convolution whose kernel covers the whole input) as one streaming stage.
//
// Folding (FINN's MVAU layout): PE output channels in parallel, SIMD elements of the im2col row
// per cycle. The im2col row of an output pixel is (kernel tap, input channel of the group) with
// the channel fastest, so SIMD <= channels takes SIMD channels of one tap and SIMD = m*channels
// takes m whole taps (how a 3-channel RGB stem still unrolls). Weights are laid out
// weights[PE][fold * SF + sf][SIMD] so each lane reads one SIMD-wide word per cycle.
//
// Requantization: RQ_UNITS >= ceil(PE / SF) output stages shared across the lanes
// (hwc_shared_output in hwc_window.h). Streams are folded as in FINN: the input arrives in
// words of IN_LANES channels, each output fold leaves as one word of PE channels.
#ifndef HWCODESIGN_CONV_H
#define HWCODESIGN_CONV_H

#include "hwc_common.h"
#include "hwc_window.h"

template <class C>
void hwc_conv(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
              hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
              const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
              const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C]) {
    HWC_MAC_STAGE_MEMORIES
    typedef typename C::in_t in_t;
    typedef typename C::acc_t acc_t;
    const int IN_PER_GROUP = C::IN_C / C::GROUPS;
    const int FOLDS_PER_GROUP = C::OUT_C / C::GROUPS / C::PE;
    const int FOLDS = C::OUT_C / C::PE;
    const int SF = C::ROW_LENGTH / C::SIMD;
    const int WORK = C::OUT_W * FOLDS * SF;
    const int CHANNELS_PER_STEP = C::SIMD < IN_PER_GROUP ? C::SIMD : IN_PER_GROUP;
    const int TAPS_PER_STEP = C::SIMD / CHANNELS_PER_STEP;

    static typename hwc_centred<in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C];
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=C::IN_LANES dim=3
#pragma HLS DEPENDENCE variable=ring inter false
    acc_t acc[C::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    // this step's SIMD elements of the im2col row
    typename hwc_centred<in_t>::type x[C::SIMD];
#pragma HLS ARRAY_PARTITION variable=x complete
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
        int gathered = -1;  // which window x holds (C++ builds only: hwc_window_changed)
    steps:
        for (int step = 0; step < steps; ++step) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=C::ROW_STEPS max=C::ROW_STEPS
            HWC_LOOP_ITERATION(C);
            if (step < ahead) hwc_ring_read<C, in_t>(in, ring, cursor);
            output.convert(bias, rq, out);
            if (step < WORK) {
                const int group = at.fold / FOLDS_PER_GROUP;
                // the window of this pixel, SIMD fold and group: TAPS_PER_STEP whole taps, or part of one
                if (hwc_window_changed(gathered, (at.ox * SF + at.sf) * C::GROUPS + group)) {
                    for (int t = 0; t < TAPS_PER_STEP; ++t) {
#pragma HLS UNROLL
                        const int first = at.sf * C::SIMD + t * CHANNELS_PER_STEP;
                        const int tap = first / IN_PER_GROUP;
                        const int channel = group * IN_PER_GROUP + first % IN_PER_GROUP;
                        const int iy = top + (tap / C::KW) * C::DIL_H;
                        const int ix = at.ox * C::STRIDE_W - C::PAD_L + (tap % C::KW) * C::DIL_W;
                        const bool inside = iy >= 0 && iy < C::IN_H && ix >= 0 && ix < C::IN_W;
                        const int row = inside ? iy % C::RING_ROWS : 0;
                        const int col = inside ? ix : 0;
                        for (int c = 0; c < CHANNELS_PER_STEP; ++c) {
#pragma HLS UNROLL
                            x[t * CHANNELS_PER_STEP + c] = inside ? ring[row][col][channel + c] : typename hwc_centred<in_t>::type(0);
                        }
                    }
                }
                for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                    acc_t sum = at.sf == 0 ? acc_t(0) : acc[lane];
                    if (C::XNOR) {
                        sum += hwc_xnor_popcount<C::SIMD>(weights[lane][at.fold * SF + at.sf], x);
                    } else {
                        hwc_lane_mac<C>(sum, weights[lane][at.fold * SF + at.sf], x);
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
