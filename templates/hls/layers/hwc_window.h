// hwcodesign: the row ring buffer every sliding-window stage (conv, depthwise, pool) shares.
//
// A stage computing output row oy needs input rows [oy*S - pad, oy*S - pad + WINDOW). The ring
// holds WINDOW + STRIDE rows, so while output row oy is computed, the STRIDE rows that output row
// oy+1 adds can already stream in (they overwrite rows oy no longer reads). Reading and
// computing share one II=1 loop, so a stage's cycles per output row are
// max(compute steps, words read) rather than their sum: the cost model's assumption.
#ifndef HWCODESIGN_WINDOW_H
#define HWCODESIGN_WINDOW_H

#include "hwc_common.h"

// The config C gives WINDOW_ROWS = (KH-1)*DIL_H + 1 and RING_ROWS = WINDOW_ROWS + STRIDE_H.
// Input arrives in words of IN_LANES channels (the ring's channel partition, so a word's
// channels land in distinct banks); IN_WORDS is the frame's word count.

// Input rows that must be in the ring before output row `oy` starts (all rows after the last).
template <class C>
int hwc_rows_needed(int oy) {
#pragma HLS INLINE
    if (oy >= C::OUT_H) return C::IN_H;
    int rows = oy * C::STRIDE_H - C::PAD_T + C::WINDOW_ROWS;
    if (rows < 0) rows = 0;
    if (rows > C::IN_H) rows = C::IN_H;
    return rows;
}

// The ring holds centred values x - zero_point (one bit wider than the input): the subtraction
// happens once per pixel read instead of once per tap read, and a BRAM18K stores 9-bit words
// natively (its parity bits), so 8-bit activations cost no extra memory. Padding reads as 0.
// In a C++ build the ring holds the same values as the narrowest native integer (as tables do,
// `hwc_table_element`): copying a window out of it then moves 2 bytes a value, not the 8 of an
// ap_int, and a MAC lane's dot product (`hwc_lane_mac`) is a plain integer loop.
template <typename T>
struct hwc_centred {
#ifdef __SYNTHESIS__
    typedef ap_int<T::width + 1> type;
#else
    typedef typename hwc_native<T::width + 1, true>::type type;
#endif
};

// Raster-order position of the next stream word to read into a ring: row, column, and which
// IN_LANES-channel word of that pixel (a pixel arrives as IN_C / IN_LANES words).
struct hwc_read_cursor {
    int row;
    int col;
    int word;
};

// Stream words still to read before the ring holds `rows` whole rows.
template <class C>
int hwc_words_until(const hwc_read_cursor &cursor, int rows) {
#pragma HLS INLINE
    return ((rows - cursor.row) * C::IN_W - cursor.col) * (C::IN_C / C::IN_LANES) - cursor.word;
}

template <class C, typename T>
void hwc_ring_read(hls::stream<hwc_vec<T, C::IN_LANES> > &in,
                   typename hwc_centred<T>::type ring[C::RING_ROWS][C::IN_W][C::IN_C], hwc_read_cursor &cursor) {
#pragma HLS INLINE
    const hwc_vec<T, C::IN_LANES> word = in.read();
    const int slot = cursor.row % C::RING_ROWS;
    for (int i = 0; i < C::IN_LANES; ++i) {
#pragma HLS UNROLL
        ring[slot][cursor.col][cursor.word * C::IN_LANES + i] = typename hwc_centred<T>::type(word.data[i] - C::IN_ZP);
    }
    if (++cursor.word == C::IN_C / C::IN_LANES) {
        cursor.word = 0;
        if (++cursor.col == C::IN_W) {
            cursor.col = 0;
            ++cursor.row;
        }
    }
}

// Read whole rows until `rows` rows are in (the window fill before an output row can start).
template <class C, typename T>
void hwc_ring_fill(hls::stream<hwc_vec<T, C::IN_LANES> > &in,
                   typename hwc_centred<T>::type ring[C::RING_ROWS][C::IN_W][C::IN_C], hwc_read_cursor &cursor,
                   int rows) {
#pragma HLS INLINE
    const int words = hwc_words_until<C>(cursor, rows);
fill:
    for (int i = 0; i < words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=C::IN_WORDS
        HWC_LOOP_ITERATION(C);
        hwc_ring_read<C, T>(in, ring, cursor);
    }
}

// Whether a MAC stage's window registers must be loaded for `window` (a number naming the pixel,
// SIMD fold and group). Hardware loads them every step: the ring's banks are read in parallel, and
// a comparison would only add logic. A C++ build keeps them while the output folds of one pixel
// reuse the window, which would otherwise be copied once per fold.
inline bool hwc_window_changed(int &held, int window) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    (void)held;
    (void)window;
    return true;
#else
    const bool changed = held != window;
    held = window;
    return changed;
#endif
}

// Centred input value at (iy, ix, c), or 0 in the padding (a real zero is the zero point).
template <class C, typename T>
ap_int<T::width + 1> hwc_ring_at(const typename hwc_centred<T>::type ring[C::RING_ROWS][C::IN_W][C::IN_C], int iy,
                                 int ix, int c,
                                 bool &inside) {
#pragma HLS INLINE
    inside = iy >= 0 && iy < C::IN_H && ix >= 0 && ix < C::IN_W;
    if (!inside) return 0;
    return ring[iy % C::RING_ROWS][ix][c];
}

// Fold position of a MAC stage inside one output row: output column, PE fold, SIMD fold.
struct hwc_fold_cursor {
    int ox;
    int fold;
    int sf;
};

template <int FOLDS, int SF>
void hwc_fold_advance(hwc_fold_cursor &cursor) {
#pragma HLS INLINE
    if (++cursor.sf == SF) {
        cursor.sf = 0;
        if (++cursor.fold == FOLDS) {
            cursor.fold = 0;
            ++cursor.ox;
        }
    }
}

// The shared output stages of a MAC stage: each fold leaves PE finished accumulators in
// `pending`; RQ_UNITS output stages convert them during the next fold's cycles (so long
// im2col rows share one multiplier across lanes, as the cost model prices it), and the fold's
// PE outputs leave as one stream word once converted (FINN's MVAU output width). C::HAS_BIAS
// adds the per-channel bias first.
template <class C>
struct hwc_shared_output {
    static const int STEPS = (C::PE + C::RQ_UNITS - 1) / C::RQ_UNITS;
    typename C::acc_t pending[C::PE];
    hwc_vec<typename C::out_t, C::PE> word;
    int pending_fold;
    int step;

    void start() {
#pragma HLS INLINE
        step = STEPS;
    }

    void take(int fold, int lane, typename C::acc_t value) {
#pragma HLS INLINE
        pending[lane] = value;
        pending_fold = fold;
        step = 0;
    }

    void convert(const typename hwc_table_element<typename C::bias_t>::type bias[C::BIAS_LENGTH], const typename C::rq_t rq[C::OUT_C],
                 hls::stream<hwc_vec<typename C::out_t, C::PE> > &out) {
#pragma HLS INLINE
        if (step >= STEPS) return;
        for (int unit = 0; unit < C::RQ_UNITS; ++unit) {
#pragma HLS UNROLL
            const int lane = step * C::RQ_UNITS + unit;
            if (lane < C::PE) {
                const int o = pending_fold * C::PE + lane;
                const typename C::acc_t value = C::HAS_BIAS ? typename C::acc_t(pending[lane] + hwc_read<typename C::bias_t>(bias[o])) : pending[lane];
                word.data[lane] = hwc_requantize<C>(value, rq[o]);
            }
        }
        if (++step == STEPS) out.write(word);
    }
};

#endif
