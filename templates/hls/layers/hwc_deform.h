// hwcodesign: deformable convolution (DCN v1, or v2 with a mask) with bounded offsets.
//
// Offsets are clamped to +-R pixels, so every sample of output row oy lies in input rows
// [oy*S - pad - R, oy*S - pad + (KH-1)*DIL + R]: a line buffer of WINDOW_ROWS = (KH-1)*DIL + 2R + 1
// rows (plus STRIDE rows read ahead) is all the stage needs, which is what lets it stream.
// The numerics are hwcodesign/ir/ops.py DeformConv (golden: sim/golden.py): offsets in fixed
// point with FRAC_BITS fractional bits (the offset output stage C::OFF), bilinear blend of the
// four centred neighbours with integer weights, rounded half to even by SAMPLE_SHIFT bits,
// times the centred mask, then the MACs and the output stage of a grouped conv.
//
// Folding: full conv: PE output channels x SIMD channels of one tap (each tap samples its own
// position); depthwise (C::DEPTHWISE): PE channels x SIMD taps. Output stages are shared
// (hwc_shared_output).
//
// Fixed shape (C::FIXED_SHAPE, CoDeNet): the offsets stream carries one value d per offset group
// (OFFSET_C = OFFSET_GROUPS); tap k moves by d_fp * p_k, p_k its compile-time position from the
// kernel centre, so each product is a few shifts and adds and one conversion serves all taps.
#ifndef HWCODESIGN_DEFORM_H
#define HWCODESIGN_DEFORM_H

#include "hwc_common.h"
#include "hwc_window.h"

// Stands in for the mask stream of a layer without one (DCN v1): every mask value is 1.
template <typename T, int N>
struct hwc_no_mask {
    hwc_vec<T, N> read() {
#pragma HLS INLINE
        hwc_vec<T, N> ones;
        for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
            ones.data[i] = 1;
        }
        return ones;
    }
};

// Input rows that must be in the ring before output row `oy` starts.
template <class C>
int hwc_deform_rows_needed(int oy) {
#pragma HLS INLINE
    if (oy >= C::OUT_H) return C::IN_H;
    int rows = oy * C::STRIDE_H - C::PAD_T - C::OFFSET_RANGE + C::WINDOW_ROWS;
    if (rows < 0) rows = 0;
    if (rows > C::IN_H) rows = C::IN_H;
    return rows;
}

// One bilinear sample of channel c at fixed-point position (y0 + fy/2^F, x0 + fx/2^F).
template <class C>
typename C::sample_t hwc_bilinear(const typename hwc_centred<typename C::in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C],
                                  int y0, int x0, int fy, int fx, int c) {
#pragma HLS INLINE
    if (C::FRAC_BITS == 0) {  // integer offsets (CoDeNet's): the sample is the input there, no blend
        const bool inside = y0 >= 0 && y0 < C::IN_H && x0 >= 0 && x0 < C::IN_W;
        return inside ? typename C::sample_t(ring[y0 % C::RING_ROWS][x0][c]) : typename C::sample_t(0);
    }
    const int ONE = 1 << C::FRAC_BITS;
    typename C::blend_t blend = 0;
    for (int dy = 0; dy < 2; ++dy) {
#pragma HLS UNROLL
        for (int dx = 0; dx < 2; ++dx) {
#pragma HLS UNROLL
            const int y = y0 + dy;
            const int x = x0 + dx;
            const int wy = dy == 0 ? ONE - fy : fy;
            const int wx = dx == 0 ? ONE - fx : fx;
            // a zero weight never reads: at +R the lower neighbour may lie outside the ring
            if (wy != 0 && wx != 0 && y >= 0 && y < C::IN_H && x >= 0 && x < C::IN_W) {
                blend += typename C::blend_t(ring[y % C::RING_ROWS][x][c]) * (wy * wx);
            }
        }
    }
    return typename C::sample_t(hwc_round_shift<C::BLEND_BITS>(blend, C::SAMPLE_SHIFT));
}

// This pixel's fixed-point offsets (dy, dx) per (offset group, tap), in 1/2^F pixels.
// Free offsets: channel (g*TAPS + k)*2 + (0: y, 1: x), each through its own output stage.
template <class C, bool FIXED_SHAPE = (C::FIXED_SHAPE != 0)>
struct hwc_deform_offsets {
    static void convert(const hwc_vec<typename C::offset_t, C::OFFSET_C> &off,
                        const typename C::OFF::rq_t offset_rq[C::OFFSET_C],
                        int dy[C::OFFSET_GROUPS][C::KH * C::KW], int dx[C::OFFSET_GROUPS][C::KH * C::KW]) {
#pragma HLS INLINE
        for (int g = 0; g < C::OFFSET_GROUPS; ++g) {
#pragma HLS UNROLL
            for (int k = 0; k < C::KH * C::KW; ++k) {
#pragma HLS UNROLL
                const int o = (g * C::KH * C::KW + k) * 2;
                dy[g][k] = hwc_requantize<typename C::OFF>(
                    typename C::OFF::acc_t(off.data[o] - C::OFF::IN_ZP), offset_rq[o]).to_int();
                dx[g][k] = hwc_requantize<typename C::OFF>(
                    typename C::OFF::acc_t(off.data[o + 1] - C::OFF::IN_ZP), offset_rq[o + 1]).to_int();
            }
        }
    }
};

// Fixed shape: channel g holds d; one conversion per group, then d_fp * p_k per tap (p_k constant
// once the loops unroll; |d_fp * p_k| <= R * 2^F by the clamp of C::OFF).
template <class C>
struct hwc_deform_offsets<C, true> {
    static void convert(const hwc_vec<typename C::offset_t, C::OFFSET_C> &off,
                        const typename C::OFF::rq_t offset_rq[C::OFFSET_C],
                        int dy[C::OFFSET_GROUPS][C::KH * C::KW], int dx[C::OFFSET_GROUPS][C::KH * C::KW]) {
#pragma HLS INLINE
        for (int g = 0; g < C::OFFSET_GROUPS; ++g) {
#pragma HLS UNROLL
            const int d = hwc_requantize<typename C::OFF>(
                typename C::OFF::acc_t(off.data[g] - C::OFF::IN_ZP), offset_rq[g]).to_int();
            for (int k = 0; k < C::KH * C::KW; ++k) {
#pragma HLS UNROLL
                dy[g][k] = d * ((k / C::KW - (C::KH - 1) / 2) * C::DIL_H);
                dx[g][k] = d * ((k % C::KW - (C::KW - 1) / 2) * C::DIL_W);
            }
        }
    }
};

template <class C, class MASK_STREAM>
void hwc_deform_body(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
                     hls::stream<hwc_vec<typename C::offset_t, C::OFFSET_C> > &offsets, MASK_STREAM &masks,
                     hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                     const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                     const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C],
                     const typename C::OFF::rq_t offset_rq[C::OFFSET_C]) {
    HWC_MAC_STAGE_MEMORIES
#pragma HLS ARRAY_PARTITION variable=offset_rq complete
    typedef typename C::in_t in_t;
    typedef typename C::acc_t acc_t;
    const int TAPS = C::KH * C::KW;
    const int IN_PER_GROUP = C::IN_C / C::GROUPS;
    const int PER_OFFSET_GROUP = C::IN_C / C::OFFSET_GROUPS;
    const int FOLDS = C::OUT_C / C::PE;
    const int FOLDS_PER_GROUP = C::DEPTHWISE ? 1 : C::OUT_C / C::GROUPS / C::PE;
    const int SF = C::DEPTHWISE ? TAPS / C::SIMD : IN_PER_GROUP * TAPS / C::SIMD;
    const int WORK = C::OUT_W * FOLDS * SF;

    static typename hwc_centred<in_t>::type ring[C::RING_ROWS][C::IN_W][C::IN_C];
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=2 dim=1
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=2 dim=2
#pragma HLS ARRAY_PARTITION variable=ring cyclic factor=C::IN_LANES dim=3
#pragma HLS DEPENDENCE variable=ring inter false
    acc_t acc[C::PE];
#pragma HLS ARRAY_PARTITION variable=acc complete
    hwc_shared_output<C> output;
#pragma HLS ARRAY_PARTITION variable=output.pending complete
#pragma HLS ARRAY_PARTITION variable=output.word.data complete
    // this output pixel's sampling positions per (offset group, tap), and mask values
    int pos_y[C::OFFSET_GROUPS][TAPS], pos_x[C::OFFSET_GROUPS][TAPS];
#pragma HLS ARRAY_PARTITION variable=pos_y complete dim=0
#pragma HLS ARRAY_PARTITION variable=pos_x complete dim=0
    typename C::mask_c_t mask[C::OFFSET_GROUPS * TAPS];
#pragma HLS ARRAY_PARTITION variable=mask complete

    hwc_read_cursor cursor = {0, 0, 0};
    HWC_LOOPS_BEGIN(C);
rows:
    for (int oy = 0; oy < C::OUT_H; ++oy) {
        hwc_ring_fill<C, in_t>(in, ring, cursor, hwc_deform_rows_needed<C>(oy));
        const int ahead = hwc_words_until<C>(cursor, hwc_deform_rows_needed<C>(oy + 1));
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
                if (at.fold == 0 && at.sf == 0) {  // a new output pixel: its offsets and mask
                    const hwc_vec<typename C::offset_t, C::OFFSET_C> off = offsets.read();
                    const hwc_vec<typename C::mask_t, C::MASK_C> m = masks.read();
                    int dy[C::OFFSET_GROUPS][TAPS], dx[C::OFFSET_GROUPS][TAPS];
#pragma HLS ARRAY_PARTITION variable=dy complete dim=0
#pragma HLS ARRAY_PARTITION variable=dx complete dim=0
                    hwc_deform_offsets<C>::convert(off, offset_rq, dy, dx);
                    for (int g = 0; g < C::OFFSET_GROUPS; ++g) {
#pragma HLS UNROLL
                        for (int k = 0; k < TAPS; ++k) {
#pragma HLS UNROLL
                            pos_y[g][k] = ((oy * C::STRIDE_H - C::PAD_T + (k / C::KW) * C::DIL_H) << C::FRAC_BITS) + dy[g][k];
                            pos_x[g][k] = ((at.ox * C::STRIDE_W - C::PAD_L + (k % C::KW) * C::DIL_W) << C::FRAC_BITS) + dx[g][k];
                            mask[g * TAPS + k] = typename C::mask_c_t(m.data[g * TAPS + k] - C::MASK_ZP);
                        }
                    }
                }
                const int ONE_MASK = (1 << C::FRAC_BITS) - 1;
                if (C::DEPTHWISE) {
                    for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                        const int c = at.fold * C::PE + lane;
                        const int g = c / PER_OFFSET_GROUP;
                        acc_t sum = at.sf == 0 ? acc_t(0) : acc[lane];
                        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                            const int k = at.sf * C::SIMD + s;
                            const typename C::sample_t sample = hwc_bilinear<C>(
                                ring, pos_y[g][k] >> C::FRAC_BITS, pos_x[g][k] >> C::FRAC_BITS,
                                pos_y[g][k] & ONE_MASK, pos_x[g][k] & ONE_MASK, c);
                            const typename C::masked_t masked = typename C::masked_t(sample * mask[g * TAPS + k]);
                            sum += hwc_multiplier<(C::LUT_MACS != 0)>::mul(hwc_read<typename C::weight_t>(weights[lane][at.fold * SF + at.sf][s]), masked);
                        }
                        acc[lane] = sum;
                        if (at.sf == SF - 1) output.take(at.fold, lane, sum);
                    }
                } else {
                    const int group = at.fold / FOLDS_PER_GROUP;
                    const int first = at.sf * C::SIMD;
                    const int k = first / IN_PER_GROUP;
                    const int channel = group * IN_PER_GROUP + first % IN_PER_GROUP;
                    const int g = channel / PER_OFFSET_GROUP;
                    typename C::masked_t x[C::SIMD];
#pragma HLS ARRAY_PARTITION variable=x complete
                    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                        const typename C::sample_t sample = hwc_bilinear<C>(
                            ring, pos_y[g][k] >> C::FRAC_BITS, pos_x[g][k] >> C::FRAC_BITS,
                            pos_y[g][k] & ONE_MASK, pos_x[g][k] & ONE_MASK, channel + s);
                        x[s] = typename C::masked_t(sample * mask[g * TAPS + k]);
                    }
                    for (int lane = 0; lane < C::PE; ++lane) {
#pragma HLS UNROLL
                        acc_t sum = at.sf == 0 ? acc_t(0) : acc[lane];
                        for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
                            sum += hwc_multiplier<(C::LUT_MACS != 0)>::mul(hwc_read<typename C::weight_t>(weights[lane][at.fold * SF + at.sf][s]), x[s]);
                        }
                        acc[lane] = sum;
                        if (at.sf == SF - 1) output.take(at.fold, lane, sum);
                    }
                }
                hwc_fold_advance<FOLDS, SF>(at);
            }
        }
    }
}

// DCN v1: no mask stream.
template <class C>
void hwc_deform(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
                hls::stream<hwc_vec<typename C::offset_t, C::OFFSET_C> > &offsets,
                hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C],
                const typename C::OFF::rq_t offset_rq[C::OFFSET_C]) {
    hwc_no_mask<typename C::mask_t, C::MASK_C> ones;
    hwc_deform_body<C>(in, offsets, ones, out, weights, bias, rq, offset_rq);
}

// DCN v2: a modulation mask per (offset group, tap) and output pixel.
template <class C>
void hwc_deform_masked(hls::stream<hwc_vec<typename C::in_t, C::IN_LANES> > &in,
                       hls::stream<hwc_vec<typename C::offset_t, C::OFFSET_C> > &offsets,
                       hls::stream<hwc_vec<typename C::mask_t, C::MASK_C> > &masks,
                       hls::stream<hwc_vec<typename C::out_t, C::PE> > &out,
                       const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                       const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C],
                       const typename C::OFF::rq_t offset_rq[C::OFFSET_C]) {
    hwc_deform_body<C>(in, offsets, masks, out, weights, bias, rq, offset_rq);
}

#endif
