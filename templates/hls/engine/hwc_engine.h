// hwcodesign layer-sequential engine: the layer loop.
//
// The params buffer starts with one descriptor per layer (HWC_LAYER_WORDS words each, see the
// generated engine_layer.h); the top function runs `layers` of them in order, each on the unit
// its mode names. All three feature-map ports point at the same DDR arena (the compiler placed
// every tensor in it); separate AXI masters let a layer read and write concurrently. A run holds
// `frames` frames, each in its own arena `frame_words` after the previous one: every instruction
// runs on all of them before the next, so its weights and records are loaded once per batch.
#ifndef HWCODESIGN_ENGINE_H
#define HWCODESIGN_ENGINE_H

#include "hwc_engine_base.h"
#include "hwc_engine_io.h"
#include "hwc_engine_mac.h"
#include "hwc_engine_pixel.h"

#ifdef HWC_ENGINE_COUNT_STEPS
// Compute-loop iterations of layer l in the last run (C simulation only, see hwc_engine_base.h).
inline long long &hwc_engine_layer_steps(int l) {
    static long long steps[1 << 16];
    return steps[l];
}
#endif

template <class C>
void hwc_engine_run(const typename C::word_t *fmap_in, const typename C::word_t *fmap_aux, typename C::word_t *fmap_out,
                    const typename C::param_t *params, int layers, int frames, int frame_words) {
layers:
    for (int l = 0; l < layers; ++l) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_LAYERS
        hwc_layer d;
        hwc_load_layer<C>(params, l, d);
        if (d.mode == HWC_MODE_CONV || d.mode == HWC_MODE_CHANNELWISE) {
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
