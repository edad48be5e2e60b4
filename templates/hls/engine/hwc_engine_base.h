// hwcodesign layer-sequential engine: types and arithmetic shared by its units.
//
// The engine is one set of hardware units (a PE x SIMD MAC array with a line buffer, a pixel
// unit) that runs the network one layer at a time. Feature maps and weights live in DDR; each
// layer is an instruction (`hwc_layer`, a descriptor the compiler writes into the params buffer)
// and the engine's loops take their bounds from it. This is the architecture CoDeNet and other
// embedded detectors use when the network does not fit on chip as a layer pipeline.
//
// Numerics are the compiler's single contract (hwcodesign/ir/requant.py, sim/golden.py): every
// layer subtracts its input zero point, accumulates exactly, adds its bias and requantizes
//   y = clamp(round_half_even((acc * M + offset) / 2**S) + zero_point, lo, hi).
// Widths are the largest any layer of the model needs (the config C), so nothing wraps.
//
// Feature maps in DDR: NHWC, one byte per element (two's complement for signed types), each
// pixel padded to whole WORD_BYTES-byte words with zero bytes, however narrow (hwcodesign/ir/
// stream_layout.py with 8-bit storage and pack_pixels=False: no pixels sharing a word, so every
// pixel is at a word address). C gives WORD_BITS; words are little-endian, as the PS reads them.
#ifndef HWCODESIGN_ENGINE_BASE_H
#define HWCODESIGN_ENGINE_BASE_H

#include "layers/hwc_common.h"
#include "engine_layer.h"  // the descriptor struct, generated per project

// What a layer asks of the engine (hwc_layer::mode). Deformable sampling and max pooling are
// flags on the two MAC shapes; average pooling is a depthwise conv with weights of one.
enum hwc_engine_mode {
    HWC_MODE_CONV = 0,         // PE output channels x SIMD input channels of one kernel tap
    HWC_MODE_CHANNELWISE = 1,  // SIMD channels, each with its own filter (depthwise conv, pools)
    HWC_MODE_ADD = 2,          // residual add of two tensors
    HWC_MODE_REQUANT = 3,      // per-element output stage into a channel range (Act, a Concat part)
    HWC_MODE_RESIZE = 4,       // nearest-neighbour upsampling by integer factors
    HWC_MODE_GLOBAL_POOL = 5,  // sum over H x W per channel
    HWC_MODE_MUL = 7,          // product of two tensors, or of a map and a per-channel gate (6: lookup)
    HWC_MODE_GATHER = 8        // output channel c is input channel order[c] (a channel range, a shuffle)
};

typedef ap_uint<8> hwc_byte_t;

// C simulation only (-DHWC_ENGINE_COUNT_STEPS, the library Project.csim loads): counts the
// iterations of the engine's pipelined compute loops per layer, so the tests can hold the cost
// model's loop bounds (hwcodesign/mapper/engine_cost.py) against the loops that really run.
// In synthesis HWC_ENGINE_STEP() is empty.
#ifdef HWC_ENGINE_COUNT_STEPS
inline long long &hwc_engine_steps() {
    static long long steps = 0;
    return steps;
}
#define HWC_ENGINE_STEP() (++hwc_engine_steps())
#else
#define HWC_ENGINE_STEP()
#endif

// One output channel's constants as they sit in DDR (4 words): bias | shift << 48, the multiplier
// | the negative multiplier << 32, the offset, the negative offset.
static const int HWC_RECORD_WORDS = 4;

template <class C>
struct hwc_record {
    ap_int<C::BIAS_BITS> bias;
    ap_int<C::MULT_BITS> m;
    ap_int<C::MULT_BITS> nm;
    ap_uint<6> s;
    ap_int<C::OFF_BITS> off;
    ap_int<C::OFF_BITS> noff;
};

template <class C>
hwc_record<C> hwc_unpack_record(const typename C::param_t words[HWC_RECORD_WORDS]) {
#pragma HLS INLINE
    hwc_record<C> r;
    r.bias = ap_int<48>(words[0].range(47, 0));
    r.s = words[0].range(53, 48);
    r.m = ap_int<32>(words[1].range(31, 0));
    r.nm = ap_int<32>(words[1].range(63, 32));
    r.off = ap_int<64>(words[2]);
    r.noff = ap_int<64>(words[3]);
    return r;
}

// The output stage with the layer's runtime constants: zero point, range, LeakyReLU flag.
template <class C, int ACC_BITS>
int hwc_engine_requantize(ap_int<ACC_BITS> acc, const hwc_record<C> &r, bool negative, int zero_point, int lo,
                          int hi) {
#pragma HLS INLINE
    typedef ap_int<C::PROD_BITS> prod_t;
    prod_t product = prod_t(acc) * r.m + r.off;
    if (negative) {
        const prod_t below = prod_t(acc) * r.nm + r.noff;
        if (product < 0) product = below;
    }
    long long value = (long long)hwc_round_shift<C::PROD_BITS>(product, r.s) + zero_point;
    if (value < lo) value = lo;
    if (value > hi) value = hi;
    return (int)value;
}

// A stored byte as the integer it holds (8-bit storage of a <= 8-bit type).
inline int hwc_byte_value(hwc_byte_t byte, bool is_signed) {
#pragma HLS INLINE
    return is_signed ? (int)ap_int<8>(byte) : (int)byte;
}

// Byte e of a DDR word (a feature-map or a params word).
template <class C, class Word>
hwc_byte_t hwc_word_byte(const Word &word, int e) {
#pragma HLS INLINE
    return word.range(8 * e + 7, 8 * e);
}

// Two products that share the operand x in one DSP48E2 (27 x 18 multiplier; Xilinx WP486):
// (a * 2^K + b) * x with K = W_BITS + X_BITS, split exactly. |b * x| <= 2^(K-2), so the low K
// bits hold b * x as a signed field and the rest is a * x. The packed operand spans
// 2 * W_BITS + X_BITS + 1 bits (both weights negative), which must fit the 27-bit port, and x the
// 18-bit one (`packs_two_products` in mapper/engine/widths.py): 4-bit weights pack with 9-bit
// activations and with 17-bit deformable samples alike.
template <int W_BITS, int X_BITS>
void hwc_mul2(ap_int<W_BITS> a, ap_int<W_BITS> b, ap_int<X_BITS> x, ap_int<W_BITS + X_BITS> &ax,
              ap_int<W_BITS + X_BITS> &bx) {
#pragma HLS INLINE
    const int K = W_BITS + X_BITS;
    const ap_int<27> packed = (ap_int<27>(a) << K) + ap_int<27>(b);
    ap_int<45> product = packed * ap_int<18>(x);
#pragma HLS BIND_OP variable=product op=mul impl=dsp
    const ap_int<K> low = ap_int<K>(product.range(K - 1, 0));
    bx = low;
    ax = ap_int<W_BITS + X_BITS>((product - low) >> K);
}

// Two weights times one activation (or deformable sample), as the config builds it: one DSP48E2
// for both when it packs (hwc_mul2), else two multipliers. A C++ build multiplies natively:
// hwc_mul2 gives the plain products for every operand of every width pair the mapper packs
// (`packs_two_products`), which tests/codegen/test_engine_csim.py checks pair by pair, and C
// simulation runs this for every product of every frame.
template <class C>
void hwc_mul_pair(ap_int<C::W_BITS> a, ap_int<C::W_BITS> b, ap_int<C::XM_BITS> x, ap_int<C::W_BITS + C::XM_BITS> &ax,
                  ap_int<C::W_BITS + C::XM_BITS> &bx) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    if (C::MAC_PACK) {
        hwc_mul2<C::W_BITS, C::XM_BITS>(a, b, x, ax, bx);
        return;
    }
#endif
    ax = a * x;
    bx = b * x;
}

#endif
