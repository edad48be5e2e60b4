// hwcodesign layer-sequential engine: lookup tables on the pixel unit (y = table[x] per element:
// Sigmoid, HardSwish, SiLU, ... as the table of the input's levels, hwcodesign/ops/table/).
//
// Only engines whose program has a lookup layer include this header and run
// `hwc_engine_run_lookup`; every other engine is built without it. A lookup layer first loads its
// table from params (HWC_LOOKUP_ENTRIES bytes, one per stored input byte, WORD_BYTES a word, one
// word a cycle) into the table memory, a copy per pixel lane (each in WORD_BYTES banks, so a
// loaded word is written in one cycle); then its input streams through the tables between the
// pixel unit's reader and writer, EW_LANES elements per cycle (WORD_BYTES / EW_LANES cycles per
// word), as the pixel unit's other per-element layers. Channels >= C give 0.
#ifndef HWCODESIGN_ENGINE_LOOKUP_H
#define HWCODESIGN_ENGINE_LOOKUP_H

#include "hwc_engine.h"

static const int HWC_MODE_LOOKUP = 6;  // hwcodesign/hardware/engine/config.py MODES
static const int HWC_LOOKUP_ENTRIES = 256;

template <class C>
void hwc_load_lookup(const typename C::param_t *params, int base, hwc_byte_t table[C::EW_LANES][HWC_LOOKUP_ENTRIES]) {
load:
    for (int i = 0; i < HWC_LOOKUP_ENTRIES / C::PARAMS_WORD_BYTES; ++i) {
#pragma HLS PIPELINE II=1
        const typename C::param_t word = params[base + i];
        for (int e = 0; e < C::PARAMS_WORD_BYTES; ++e) {
#pragma HLS UNROLL
            for (int lane = 0; lane < C::EW_LANES; ++lane) {
#pragma HLS UNROLL
                table[lane][i * C::PARAMS_WORD_BYTES + e] = hwc_word_byte<C>(word, e);
            }
        }
    }
}

template <class C>
void hwc_lookup_compute(const hwc_layer d, hls::stream<typename C::word_t> &in, hls::stream<typename C::word_t> &out,
                        const hwc_byte_t table[C::EW_LANES][HWC_LOOKUP_ENTRIES]) {
    const int SUBS = C::WORD_BYTES / C::EW_LANES;
    typename C::word_t x = 0, y = 0;
    int sub = 0, word_in_pixel = 0;
elements:
    for (int i = 0; i < d.in_h * d.in_w * d.in_cw * SUBS; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS * SUBS
        HWC_ENGINE_STEP();
        if (sub == 0) x = in.read();
        for (int e = 0; e < C::EW_LANES; ++e) {
#pragma HLS UNROLL
            const int element = sub * C::EW_LANES + e;
            const int channel = word_in_pixel * C::WORD_BYTES + element;
            const hwc_byte_t value = table[e][hwc_word_byte<C>(x, element).to_int()];
            y.range(8 * element + 7, 8 * element) = channel < d.out_c ? value : hwc_byte_t(0);
        }
        if (++sub == SUBS) {
            sub = 0;
            out.write(y);
            if (++word_in_pixel == d.in_cw) word_in_pixel = 0;
        }
    }
}

template <class C>
void hwc_lookup_dataflow(const hwc_layer d, const typename C::word_t *fmap_in, typename C::word_t *fmap_out,
                         const hwc_byte_t table[C::EW_LANES][HWC_LOOKUP_ENTRIES]) {
#pragma HLS DATAFLOW
    hls::stream<typename C::word_t> words_in("lookup_in"), words_out("lookup_out");
#pragma HLS STREAM variable=words_in depth=C::BURST_WORDS
#pragma HLS STREAM variable=words_out depth=C::BURST_WORDS
#pragma HLS BIND_STORAGE variable=words_in type=fifo impl=lutram
#pragma HLS BIND_STORAGE variable=words_out type=fifo impl=lutram
    hwc_pixel_read_a<C>(d, fmap_in, words_in);
    hwc_lookup_compute<C>(d, words_in, words_out, table);
    hwc_pixel_write<C>(d, words_out, fmap_out);
}

template <class C>
void hwc_lookup_layer(const hwc_layer &d, const typename C::word_t *fmap_in, typename C::word_t *fmap_out,
                      const typename C::param_t *params, int frames, int frame_words) {
    static hwc_byte_t table[C::EW_LANES][HWC_LOOKUP_ENTRIES];
#pragma HLS ARRAY_PARTITION variable=table complete dim=1
#pragma HLS ARRAY_PARTITION variable=table cyclic factor=C::PARAMS_WORD_BYTES dim=2
#pragma HLS BIND_STORAGE variable=table type=ram_1p impl=lutram
    hwc_load_lookup<C>(params, d.tables_addr, table);
frames:
    for (int f = 0; f < frames; ++f) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_BATCH
        hwc_lookup_dataflow<C>(hwc_frame_layer(d, f * frame_words), fmap_in, fmap_out, table);
    }
}

// hwc_engine_run with the lookup mode beside the MAC and pixel units (its layer loop again, so
// that engines without a table keep hwc_engine.h's and build as before).
template <class C>
void hwc_engine_run_lookup(const typename C::word_t *fmap_in, const typename C::word_t *fmap_aux,
                           typename C::word_t *fmap_out, const typename C::param_t *params, int layers, int frames,
                           int frame_words) {
layers:
    for (int l = 0; l < layers; ++l) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_LAYERS
        hwc_layer d;
        hwc_load_layer<C>(params, l, d);
        if (d.mode == HWC_MODE_LOOKUP) {
            hwc_lookup_layer<C>(d, fmap_in, fmap_out, params, frames, frame_words);
        } else if (d.mode == HWC_MODE_CONV || d.mode == HWC_MODE_CHANNELWISE) {
            hwc_mac_layer<C>(d, fmap_in, fmap_aux, fmap_out, params, frames, frame_words);
        } else {
            hwc_pixel_layer<C>(d, fmap_in, fmap_aux, fmap_out, params, frames, frame_words);
        }
#ifdef HWC_ENGINE_COUNT_STEPS
        hwc_engine_layer_steps(l) = hwc_engine_steps();
        hwc_engine_steps() = 0;
#endif
    }
}

#endif
