// hwcodesign: types and the integer output stage shared by every streaming layer.
//
// Streams between layers carry one pixel (all channels) per word, as hls4ml's io_stream does;
// inside a stage, PE/SIMD lanes walk the channels and kernel taps with an II=1 loop. The
// output stage is the one numerics contract of the compiler (hwcodesign/ir/requant.py):
//
//   y = clamp(round_half_even((acc * M + offset) / 2**S) + zero_point, lo, hi)
//
// with a second multiplier/offset for negative products when a LeakyReLU is fused.
#ifndef HWCODESIGN_COMMON_H
#define HWCODESIGN_COMMON_H

#include <ap_int.h>
#include <hls_stream.h>

// The element type of a constant table (weights, biases): T itself in synthesis, where the ROM
// is exactly T's width; in a C++ build (g++ C simulation, or Vitis's own) the native integer that
// holds the same values. A compiler constructs every class-typed element of an initializer while
// it compiles: CNV's 1.5 M one-bit weights as ap_uint<1> take g++ 61 s and 11 GB, as unsigned char
// 1.6 s and 0.3 GB. Stages read an element back as T (`hwc_read<T>`).
template <bool C, typename A, typename B>
struct hwc_if {
    typedef A type;
};
template <typename A, typename B>
struct hwc_if<false, A, B> {
    typedef B type;
};
template <int W, bool S, bool NATIVE = (W <= 64)>
struct hwc_native {  // wider than any native integer: the class after all
    typedef typename hwc_if<S, ap_int<W>, ap_uint<W> >::type type;
};
template <int W>
struct hwc_native<W, true, true> {
    typedef typename hwc_if<(W <= 8), signed char, typename hwc_if<(W <= 16), short,
        typename hwc_if<(W <= 32), int, long long>::type>::type>::type type;
};
template <int W>
struct hwc_native<W, false, true> {
    typedef typename hwc_if<(W <= 8), unsigned char, typename hwc_if<(W <= 16), unsigned short,
        typename hwc_if<(W <= 32), unsigned, unsigned long long>::type>::type>::type type;
};
template <typename T>
struct hwc_table_element {
    typedef T type;
};
#ifndef __SYNTHESIS__
template <int W>
struct hwc_table_element<ap_int<W> > {
    typedef typename hwc_native<W, true>::type type;
};
template <int W>
struct hwc_table_element<ap_uint<W> > {
    typedef typename hwc_native<W, false>::type type;
};
#endif

// A table element as the type T the stage computes with.
template <typename T, typename E>
T hwc_read(const E &element) {
#pragma HLS INLINE
    return T(element);
}

// One pixel: N channels of T.
template <typename T, int N>
struct hwc_vec {
    T data[N];
};

// Per-channel requantization constants; widths are chosen per layer by the compiler.
template <int MULT_BITS, int OFFSET_BITS>
struct hwc_rq {
    ap_int<MULT_BITS> m;
    ap_uint<6> s;
    ap_int<OFFSET_BITS> off;
    ap_int<MULT_BITS> nm;
    ap_int<OFFSET_BITS> noff;
};

// A threshold output stage's constants per channel (QONNX/FINN MultiThreshold): the sorted
// integer thresholds on the accumulator and the direction (-1: the comparison is on -acc, for a
// negative gain). The output is OUT_LO + the number of thresholds met: comparators, no multiplier.
template <int STEPS, int BITS>
struct hwc_thresholds {
    ap_int<BITS> t[STEPS];
    ap_int<2> dir;
};

// C simulation only (-DHWC_COUNT_LOOPS, the library Project.csim loads): every stage counts the
// iterations of its pipelined loops in the current frame, so the tests can hold the cost model's
// loop trip counts (hwcodesign/mapper/cost.py) against the loops that really run, as the engine's
// HWC_ENGINE_COUNT_STEPS does. A stage's counter is keyed by its config type K (one per layer);
// the boundary adapters, which have none, by a tag of their template arguments (two adapters
// with the same arguments share a counter, and run the same constant trip count). A stage call
// is one frame: it zeroes its counter first. In synthesis both macros are empty.
#ifdef HWC_COUNT_LOOPS
struct hwc_loop_counter {
    const char *key;  // __PRETTY_FUNCTION__ of hwc_loops<K>, which names K
    long long iterations;
};

static const int HWC_LOOP_COUNTERS = 1024;

struct hwc_loop_table {
    hwc_loop_counter counters[HWC_LOOP_COUNTERS];
    int used;
    int dropped;  // stages beyond HWC_LOOP_COUNTERS (counted in a scratch slot, not reported)
};

inline hwc_loop_table &hwc_loop_registry() {
    static hwc_loop_table table;
    return table;
}

inline long long &hwc_loop_register(const char *key) {
    static long long scratch = 0;
    hwc_loop_table &table = hwc_loop_registry();
    if (table.used == HWC_LOOP_COUNTERS) {
        ++table.dropped;
        return scratch;
    }
    hwc_loop_counter &counter = table.counters[table.used++];
    counter.key = key;
    counter.iterations = 0;
    return counter.iterations;
}

template <class K>
long long &hwc_loops() {
    static long long &iterations = hwc_loop_register(__PRETTY_FUNCTION__);
    return iterations;
}

template <int WORD_BITS, typename T, int CHANNELS, int WORDS>
struct hwc_axis_in_loops {};
template <int WORD_BITS, typename T, int CHANNELS, int WORDS>
struct hwc_axis_out_loops {};
template <typename T, int LANES, int WORDS>
struct hwc_fanout_loops {};
template <typename T, int L_IN, int L_OUT, int STEPS>
struct hwc_refold_loops {};
template <int WORD_BITS, typename T, int CHANNELS, int MAX_SITES>
struct hwc_axis_tokens_loops {};
template <typename T, int N, int MAX_SITES>
struct hwc_token_fanout_loops {};

#define HWC_LOOPS_BEGIN(...) (hwc_loops<__VA_ARGS__>() = 0)
#define HWC_LOOP_ITERATION(...) (++hwc_loops<__VA_ARGS__>())
#else
#define HWC_LOOPS_BEGIN(...) ((void)0)
#define HWC_LOOP_ITERATION(...) ((void)0)
#endif

// Bits of an unsigned counter holding 0..N.
template <int N>
struct hwc_bits_for {
    static const int value = 1 + hwc_bits_for<N / 2>::value;
};
template <>
struct hwc_bits_for<0> {
    static const int value = 1;
};

template <int A, int B>
struct hwc_max {
    static const int value = A > B ? A : B;
};

// Integer division rounding up, usable in constant expressions.
template <int A, int B>
struct hwc_ceil_div {
    static const int value = (A + B - 1) / B;
};

// Where a MAC stage's weight ROMs are built, as the mapper chose and priced them (the config's
// WEIGHT_MEMORY: Folding.weights, hwcodesign/hardware/memory.py; why not URAM is said there).
// BIND_STORAGE takes its impl as a word, not a template argument, so each memory has its own
// overload, chosen by the config and inlined into the stage, binding the stage's `weights`
// argument. Each PE lane's ROM is read at one address a cycle: single port (rom_1p).
enum hwc_weight_memory { HWC_WEIGHTS_BRAM = 0, HWC_WEIGHTS_LUTRAM = 1 };
template <int MEMORY>
struct hwc_weight_memory_tag {};

template <class C>
void hwc_bind_weights(const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                      hwc_weight_memory_tag<HWC_WEIGHTS_BRAM>) {
#pragma HLS INLINE
#pragma HLS BIND_STORAGE variable=weights type=rom_1p impl=bram
}

template <class C>
void hwc_bind_weights(const typename hwc_table_element<typename C::weight_t>::type weights[C::PE][C::WEIGHT_DEPTH][C::SIMD],
                      hwc_weight_memory_tag<HWC_WEIGHTS_LUTRAM>) {
#pragma HLS INLINE
#pragma HLS BIND_STORAGE variable=weights type=rom_1p impl=lutram
}

// The weight ROMs of a MAC stage as the cost model counts them (hwcodesign/mapper/cost.py): one
// per PE lane holding SIMD-wide words (FINN's layout), in the memory the config names.
#define HWC_MAC_STAGE_WEIGHTS                                                   \
    _Pragma("HLS ARRAY_PARTITION variable=weights complete dim=1")              \
    _Pragma("HLS ARRAY_RESHAPE variable=weights complete dim=3")                \
    hwc_bind_weights<C>(weights, hwc_weight_memory_tag<C::WEIGHT_MEMORY>());

// The constant memories of a MAC stage (conv, depthwise, deformable conv): its weight ROMs
// (HWC_MAC_STAGE_WEIGHTS), and the per-channel bias and requantization tables as LUT ROMs, banked
// so the RQ_UNITS shared output stages each read their own entry per cycle. The config is always
// `C`, the arrays always `weights`, `bias` and `rq` (UG1399: _Pragma carries pragmas inside macros).
#define HWC_MAC_STAGE_MEMORIES                                                  \
    HWC_MAC_STAGE_WEIGHTS                                                       \
    _Pragma("HLS ARRAY_PARTITION variable=bias cyclic factor=C::BIAS_BANKS")    \
    _Pragma("HLS BIND_STORAGE variable=bias type=rom_1p impl=lutram")           \
    _Pragma("HLS ARRAY_PARTITION variable=rq cyclic factor=C::RQ_UNITS")        \
    _Pragma("HLS BIND_STORAGE variable=rq type=rom_1p impl=lutram")

// The requantization table of a per-pixel stage: PE lanes each read their channel's entry.
#define HWC_LANE_TABLE                                                          \
    _Pragma("HLS ARRAY_PARTITION variable=rq cyclic factor=C::PE")              \
    _Pragma("HLS BIND_STORAGE variable=rq type=rom_1p impl=lutram")

// A multiply on DSP48 slices or on fabric LUTs, as the mapper chose for the stage (Folding.mac:
// <= 4-bit operands are cheaper in LUTs, FINN-R Sec. 5).
template <bool FABRIC>
struct hwc_multiplier;

template <>
struct hwc_multiplier<true> {
    template <typename A, typename B>
    static ap_int<A::width + B::width + 1> mul(A a, B b) {
#pragma HLS INLINE
        ap_int<A::width + B::width + 1> product = a * b;
#pragma HLS BIND_OP variable=product op=mul impl=fabric
        return product;
    }
};

template <>
struct hwc_multiplier<false> {
    template <typename A, typename B>
    static ap_int<A::width + B::width + 1> mul(A a, B b) {
#pragma HLS INLINE
        ap_int<A::width + B::width + 1> product = a * b;
#pragma HLS BIND_OP variable=product op=mul impl=dsp
        return product;
    }
};

// DyBit weights (hwcodesign/quant/dybit.py): an N-bit sign-magnitude code whose B = N-1
// magnitude bits are e leading ones closed by a 0 (the range field) and k = B-1-e mantissa bits
// (no 0 and no mantissa when all B bits are ones, e = B). The decoder turns a code into its
// integer level, the value the MAC multiplies:
//   e = 0: m;   0 < e < B: 2^(e+B-2) + m * 2^(2e-1);   e = B: 2^(2B-2);   negated when s = 1.
// Every output bit is a function of the N code bits, so after unrolling this is N-input logic
// (one LUT6 per output bit up to six code bits); the loop over e is the priority encoder.
template <int N>
ap_int<2 * N - 2> hwc_dybit_decode(ap_uint<N> code) {
#pragma HLS INLINE
    const int B = N - 1;
    ap_uint<2 * N - 3> magnitude = 0;
    bool ones_so_far = true;  // the bits above position B-1-e are all ones
decode:
    for (int e = 0; e < B + 1; ++e) {
#pragma HLS UNROLL
        const bool closes = e == B || code[B - 1 - e] == 0;  // a 0 right after e ones, or all ones
        if (ones_so_far && closes) {
            const int k = e < B ? B - 1 - e : 0;
            const ap_uint<2 * N - 3> m = code & ((1 << k) - 1);
            if (e == 0)
                magnitude = m;
            else if (e < B)
                magnitude = (ap_uint<2 * N - 3>(1) << (e + B - 2)) + (m << (2 * e - 1));
            else
                magnitude = ap_uint<2 * N - 3>(1) << (2 * B - 2);
        }
        if (e < B) ones_so_far = ones_so_far && code[B - 1 - e] == 1;
    }
    const ap_int<2 * N - 2> level = magnitude;
    return code[B] ? ap_int<2 * N - 2>(-level) : level;
}

// The weight a MAC stage multiplies: its memory word as it is (integer weights, CODE_BITS = 0)
// or decoded (DyBit codes of CODE_BITS bits). The config says which (C::WEIGHT_CODE_BITS).
template <int CODE_BITS>
struct hwc_weight {
    template <typename W>
    static ap_int<2 * CODE_BITS - 2> value(W code) {
#pragma HLS INLINE
        return hwc_dybit_decode<CODE_BITS>(code);
    }
};

// A bipolar weight (QONNX BipolarQuant): one stored bit, 1 for +1 and 0 for -1.
template <>
struct hwc_weight<1> {
    template <typename W>
    static ap_int<2> value(W code) {
#pragma HLS INLINE
        return code[0] ? ap_int<2>(1) : ap_int<2>(-1);
    }
};

// The dot product of SIMD bipolar weights (codes) and bipolar activations (-1/+1) the way FINN
// builds binarised layers: an XNOR per lane (the signs agree: the product is +1), then
// 2 * popcount - SIMD. One adder tree over single bits, no multiplier.
template <int SIMD, typename W, typename X>
int hwc_xnor_popcount(const W codes[SIMD], const X x[SIMD]) {
#pragma HLS INLINE
    ap_uint<hwc_bits_for<SIMD>::value> agree = 0;
    for (int s = 0; s < SIMD; ++s) {
#pragma HLS UNROLL
        agree += ((codes[s] & 1) != 0) == (x[s] > 0) ? 1 : 0;
    }
    return 2 * int(agree) - SIMD;
}

template <>
struct hwc_weight<0> {
    template <typename W>
    static W value(W w) {
#pragma HLS INLINE
        return w;
    }
};

// sum += every term. In synthesis an adder chain into the accumulator. A C++ build adds the terms
// as long long and adds the total once: ap_int addition wraps modulo 2^W, so that is the same
// value, without an ap_int normalisation per term (the terms' total must fit 64 bits: products
// of at most 32-bit operands, a few thousand of them).
template <int N, typename ACC, typename T>
void hwc_add_all(ACC &sum, const T terms[N]) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    for (int i = 0; i < N; ++i) {
#pragma HLS UNROLL
        sum += terms[i];
    }
#else
    long long total = 0;
    for (int i = 0; i < N; ++i) total += terms[i];
    sum += total;
#endif
}

// One PE lane's SIMD products added into its accumulator: in synthesis SIMD multipliers (LUT or
// DSP as the config binds them); in a C++ build a native dot product added once, as in
// hwc_add_all (every product is exact: it fits ap_int<Wa + Wb + 1>).
template <class C, typename X>
void hwc_lane_mac(typename C::acc_t &sum, const typename hwc_table_element<typename C::weight_t>::type weights[C::SIMD],
                  const X x[C::SIMD]) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    for (int s = 0; s < C::SIMD; ++s) {
#pragma HLS UNROLL
        sum += hwc_multiplier<(C::LUT_MACS != 0)>::mul(
            hwc_weight<C::WEIGHT_CODE_BITS>::value(hwc_read<typename C::weight_t>(weights[s])), x[s]);
    }
#else
    // int where the accumulator is at most 32 bits wide: its a-priori bound holds every partial
    // sum, and g++ vectorises the loop (-fopenmp-simd: the reduction may be reordered)
    typedef typename hwc_if<(C::acc_t::width <= 32), int, long long>::type total_t;
    total_t total = 0;
    if (C::WEIGHT_CODE_BITS == 0) {  // the table holds the weights' values
#pragma omp simd reduction(+ : total)
        for (int s = 0; s < C::SIMD; ++s) total += static_cast<total_t>(weights[s]) * x[s];
    } else {
        for (int s = 0; s < C::SIMD; ++s) {
            total += static_cast<total_t>(hwc_weight<C::WEIGHT_CODE_BITS>::value(hwc_read<typename C::weight_t>(weights[s]))) * x[s];
        }
    }
    sum += total;
#endif
}

// Round half to even of product / 2**s, on the dropped bits only (one comparator in hardware).
template <int PROD_BITS>
ap_int<PROD_BITS> hwc_round_shift(ap_int<PROD_BITS> product, ap_uint<6> s) {
#pragma HLS INLINE
    const ap_int<PROD_BITS> floor_part = product >> s;
    const ap_uint<64> mask = (ap_uint<64>(1) << s) - 1;
    const ap_uint<64> dropped = ap_uint<64>(product) & mask;
    const ap_uint<64> half = s == 0 ? ap_uint<64>(0) : ap_uint<64>(ap_uint<64>(1) << (s - 1));
    const bool round_up = s != 0 && (dropped > half || (dropped == half && floor_part[0] == 1));
    return floor_part + (round_up ? 1 : 0);
}

// The output stage. C (the layer's config) gives the widths and the compile-time flags.
template <class C, typename ACC, typename RQ>
typename C::out_t hwc_requantize(ACC acc, const RQ &rq) {
#pragma HLS INLINE
    typedef ap_int<C::PROD_BITS> prod_t;
    long long value;
    if (C::RQ_IDENTITY) {
        value = (long long)acc;
    } else if (C::RQ_SIGN) {
        // a bipolar output (requant.sign_requant): m is -2, 0 or 2, the offset odd, the shift 0,
        // so 2*sign(m)*acc + off is odd and its sign is the output: a comparison, no multiplier
        const prod_t doubled = prod_t(acc) * 2;
        const prod_t product = (rq.m > 0 ? doubled : rq.m < 0 ? prod_t(-doubled) : prod_t(0)) + rq.off;
        value = product > 0 ? 1 : -1;
    } else {
        prod_t product = prod_t(acc) * rq.m;
        if (C::RQ_OFFSET) product += rq.off;
        if (C::RQ_NEGATIVE) {
            prod_t negative = prod_t(acc) * rq.nm;
            if (C::RQ_OFFSET) negative += rq.noff;
            if (product < 0) product = negative;
        }
        value = (long long)hwc_round_shift<C::PROD_BITS>(product, rq.s);
    }
    value += C::OUT_ZP;
    if (value < C::OUT_LO) value = C::OUT_LO;
    if (value > C::OUT_HI) value = C::OUT_HI;
    return typename C::out_t(value);
}

// The threshold output stage: the count of thresholds the (direction-signed) accumulator meets.
template <class C, typename ACC, int STEPS, int BITS>
typename C::out_t hwc_requantize(ACC acc, const hwc_thresholds<STEPS, BITS> &rq) {
#pragma HLS INLINE
    const ap_int<C::PROD_BITS> value = rq.dir < 0 ? ap_int<C::PROD_BITS>(-ap_int<C::PROD_BITS>(acc))
                                                  : ap_int<C::PROD_BITS>(acc);
    int count = 0;
    for (int i = 0; i < STEPS; ++i) {
#pragma HLS UNROLL
        count += value >= rq.t[i] ? 1 : 0;
    }
    long long y = C::OUT_LO + count;
    if (y < C::OUT_LO) y = C::OUT_LO;
    if (y > C::OUT_HI) y = C::OUT_HI;
    return typename C::out_t(y);
}

#endif
