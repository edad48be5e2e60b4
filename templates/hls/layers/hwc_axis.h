// hwcodesign: AXI4-Stream <-> pixel stream adapters at the accelerator's boundary.
//
// Word layout (hwcodesign/ir/stream_layout.py; the driver packs/unpacks the same way,
// hwcodesign/codegen/packing.py): pixels in raster order, each pixel's channels packed
// little-endian, ELEMENTS_PER_WORD = floor(WORD_BITS / BITS) per word. PIXELS_PER_WORD, which the
// generator computes from that one definition, says how pixels meet words:
//   > 1 (a pixel takes at most half a word): that many whole pixels share a word, pixel p of a
//       word at bit p * CHANNELS * BITS; the frame's last word holds the remaining pixels. The
//       adapters move a pixel per cycle and a word every PIXELS_PER_WORD cycles.
//   1: every pixel starts a new word and takes ceil(CHANNELS / ELEMENTS_PER_WORD) words; the
//       adapters move a word per cycle.
// Unused high bits are zero. TLAST marks the frame's last word.
#ifndef HWCODESIGN_AXIS_H
#define HWCODESIGN_AXIS_H

#include <ap_axi_sdata.h>
#include "hwc_common.h"

// Loop iterations of a frame: one per word, or where pixels share words one per pixel.
template <int WORD_BITS, int BITS, int CHANNELS, int PIXELS, int PIXELS_PER_WORD>
struct hwc_axis_frame {
    static const int PER_WORD = WORD_BITS / BITS;
    static const int WORDS_PER_PIXEL = (CHANNELS + PER_WORD - 1) / PER_WORD;
    static const int PIXEL_BITS = CHANNELS * BITS;
    static const int STEPS = PIXELS_PER_WORD > 1 ? PIXELS : PIXELS * WORDS_PER_PIXEL;
};

template <int WORD_BITS, typename T, int CHANNELS, int PIXELS, int PIXELS_PER_WORD>
void hwc_axis_to_pixels(hls::stream<ap_axiu<WORD_BITS, 0, 0, 0> > &in, hls::stream<hwc_vec<T, CHANNELS> > &out) {
    typedef hwc_axis_frame<WORD_BITS, T::width, CHANNELS, PIXELS, PIXELS_PER_WORD> F;
    const int BITS = T::width;
    hwc_vec<T, CHANNELS> pixel;
    ap_uint<WORD_BITS> word = 0;
    int word_index = 0;  // the pixel's word, or where pixels share words the word's pixel
    HWC_LOOPS_BEGIN(hwc_axis_in_loops<WORD_BITS, T, CHANNELS, F::STEPS>);
words:
    for (int step = 0; step < F::STEPS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_axis_in_loops<WORD_BITS, T, CHANNELS, F::STEPS>);
        if (PIXELS_PER_WORD > 1) {
            if (word_index == 0) word = in.read().data;
            for (int p = 0; p < PIXELS_PER_WORD; ++p) {
#pragma HLS UNROLL
                for (int c = 0; c < CHANNELS; ++c) {
#pragma HLS UNROLL
                    const int lo = p * F::PIXEL_BITS + c * BITS;
                    if (p == word_index) pixel.data[c] = T(word.range(lo + BITS - 1, lo));
                }
            }
            out.write(pixel);
            if (++word_index == PIXELS_PER_WORD) word_index = 0;
            continue;
        }
        word = in.read().data;
        for (int e = 0; e < F::PER_WORD; ++e) {
#pragma HLS UNROLL
            const int c = word_index * F::PER_WORD + e;
            if (c < CHANNELS) pixel.data[c] = T(word.range(e * BITS + BITS - 1, e * BITS));
        }
        if (++word_index == F::WORDS_PER_PIXEL) {
            word_index = 0;
            out.write(pixel);
        }
    }
}

template <int WORD_BITS, typename T, int CHANNELS, int PIXELS, int PIXELS_PER_WORD>
void hwc_pixels_to_axis(hls::stream<hwc_vec<T, CHANNELS> > &in, hls::stream<ap_axiu<WORD_BITS, 0, 0, 0> > &out) {
    typedef hwc_axis_frame<WORD_BITS, T::width, CHANNELS, PIXELS, PIXELS_PER_WORD> F;
    const int BITS = T::width;
    hwc_vec<T, CHANNELS> pixel;
    ap_axiu<WORD_BITS, 0, 0, 0> word;
    word.data = 0;
    int word_index = 0;  // the pixel's word, or where pixels share words the word's pixel
    HWC_LOOPS_BEGIN(hwc_axis_out_loops<WORD_BITS, T, CHANNELS, F::STEPS>);
words:
    for (int step = 0; step < F::STEPS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_axis_out_loops<WORD_BITS, T, CHANNELS, F::STEPS>);
        const bool last = step == F::STEPS - 1;
        word.keep = -1;
        word.strb = -1;
        word.last = last;
        if (PIXELS_PER_WORD > 1) {
            pixel = in.read();
            for (int p = 0; p < PIXELS_PER_WORD; ++p) {
#pragma HLS UNROLL
                for (int c = 0; c < CHANNELS; ++c) {
#pragma HLS UNROLL
                    const int lo = p * F::PIXEL_BITS + c * BITS;
                    if (p == word_index) word.data.range(lo + BITS - 1, lo) = pixel.data[c];
                }
            }
            if (++word_index == PIXELS_PER_WORD || last) {
                out.write(word);  // a full word, or the frame's last with zeros above its pixels
                word.data = 0;
                word_index = 0;
            }
            continue;
        }
        if (word_index == 0) pixel = in.read();
        word.data = 0;
        for (int e = 0; e < F::PER_WORD; ++e) {
#pragma HLS UNROLL
            const int c = word_index * F::PER_WORD + e;
            if (c < CHANNELS) word.data.range(e * BITS + BITS - 1, e * BITS) = pixel.data[c];
        }
        out.write(word);
        if (++word_index == F::WORDS_PER_PIXEL) word_index = 0;
    }
}

// One producer, several consumers: DATAFLOW wants exactly one reader per stream.
template <typename T, int LANES, int WORDS>
void hwc_fanout2(hls::stream<hwc_vec<T, LANES> > &in, hls::stream<hwc_vec<T, LANES> > &out0,
                 hls::stream<hwc_vec<T, LANES> > &out1) {
    HWC_LOOPS_BEGIN(hwc_fanout_loops<T, LANES, WORDS>);
words:
    for (int w = 0; w < WORDS; ++w) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_fanout_loops<T, LANES, WORDS>);
        const hwc_vec<T, LANES> x = in.read();
        out0.write(x);
        out1.write(x);
    }
}

// Re-folds a stream from words of L_IN channels to words of L_OUT channels (FINN's data width
// converter). Both divide the channel count, so words never straddle pixels and the channels
// simply flow through a buffer of L_IN + L_OUT entries: each cycle emits a word if one is
// complete, then takes a word if it fits. STEPS is that schedule's length for the frame's
// WORDS_IN input words (hwcodesign/codegen/hls_top.py runs the same schedule).
template <typename T, int L_IN, int L_OUT, int WORDS_IN, int STEPS>
void hwc_refold(hls::stream<hwc_vec<T, L_IN> > &in, hls::stream<hwc_vec<T, L_OUT> > &out) {
    T buffer[L_IN + L_OUT];
#pragma HLS ARRAY_PARTITION variable=buffer complete
    int held = 0, taken = 0;
    HWC_LOOPS_BEGIN(hwc_refold_loops<T, L_IN, L_OUT, STEPS>);
steps:
    for (int step = 0; step < STEPS; ++step) {
#pragma HLS PIPELINE II=1
        HWC_LOOP_ITERATION(hwc_refold_loops<T, L_IN, L_OUT, STEPS>);
        if (held >= L_OUT) {
            hwc_vec<T, L_OUT> word;
            for (int i = 0; i < L_OUT; ++i) {
#pragma HLS UNROLL
                word.data[i] = buffer[i];
            }
            for (int i = 0; i < L_IN; ++i) {
#pragma HLS UNROLL
                buffer[i] = buffer[i + L_OUT];
            }
            held -= L_OUT;
            out.write(word);
        }
        if (taken < WORDS_IN && held + L_IN <= L_IN + L_OUT) {
            const hwc_vec<T, L_IN> word = in.read();
            for (int i = 0; i < L_IN + L_OUT; ++i) {
#pragma HLS UNROLL
                if (i >= held && i < held + L_IN) buffer[i] = word.data[i - held];
            }
            held += L_IN;
            ++taken;
        }
    }
}

#endif
