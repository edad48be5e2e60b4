// hwcodesign layer-sequential engine: moving data between DDR and the units.
//
// Every DDR access is a pipelined loop over consecutive addresses, so Vitis HLS infers AXI bursts:
// a reader fetches a contiguous range (a whole tensor, or a row's segments), a writer stores
// `segments` runs of `words` consecutive words `stride` words apart (one run per pixel when a
// layer writes only part of each pixel's channels: an output-channel block, a Concat part).
// Padding and re-packing happen in separate stream processes beside them (DATAFLOW), never in
// the loops that touch DDR.
#ifndef HWCODESIGN_ENGINE_IO_H
#define HWCODESIGN_ENGINE_IO_H

#include "hwc_engine_base.h"

// `words` consecutive words from `mem[base]` onto a stream (feature-map or params words).
template <class C, class Word>
void hwc_read_words(const Word *mem, int base, int words, hls::stream<Word> &out) {
read:
    for (int i = 0; i < words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS
        out.write(mem[base + i]);
    }
}

// Two ranges per row, one after the other: a deformable conv's offsets and mask, row by row.
template <class C>
void hwc_read_row_pairs(const typename C::word_t *mem, int first_base, int first_words, int second_base,
                        int second_words, int rows, hls::stream<typename C::word_t> &out) {
rows:
    for (int row = 0; row < rows; ++row) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_ROWS
    first:
        for (int i = 0; i < first_words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_ROW_WORDS
            out.write(mem[first_base + row * first_words + i]);
        }
    second:
        for (int i = 0; i < second_words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=0 max=C::MAX_ROW_WORDS
            out.write(mem[second_base + row * second_words + i]);
        }
    }
}

// `segments` runs of `words` words from DDR onto a stream, run k starting at mem[base + k * stride].
template <class C>
void hwc_read_segments(const typename C::word_t *mem, int base, int segments, int words, int stride,
                       hls::stream<typename C::word_t> &out) {
segments:
    for (int k = 0; k < segments; ++k) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_PIXELS
        hwc_read_words<C>(mem, base + k * stride, words, out);
    }
}

// `segments` runs of `words` words, run k starting at mem[base + k * stride].
template <class C>
void hwc_write_segments(hls::stream<typename C::word_t> &in, typename C::word_t *mem, int base, int segments,
                        int words, int stride) {
segments:
    for (int k = 0; k < segments; ++k) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_PIXELS
    words:
        for (int i = 0; i < words; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS
            mem[base + k * stride + i] = in.read();
        }
    }
}

// DDR words of a tensor (`words_per_pixel` per pixel) -> SIMD-byte words, `chunks` per pixel; the
// bytes past the pixel's last word (channels beyond C rounded up to SIMD) are zero.
template <class C>
void hwc_pack_chunks(hls::stream<typename C::word_t> &in, hls::stream<hwc_vec<hwc_byte_t, C::SIMD> > &out,
                     int pixels, int words_per_pixel, int chunks) {
    const int PER_CHUNK = C::SIMD / C::WORD_BYTES;
    hwc_vec<hwc_byte_t, C::SIMD> chunk;
#pragma HLS ARRAY_PARTITION variable=chunk.data complete
    int word = 0, part = 0, pixel_word = 0;
pack:
    for (int i = 0; i < pixels * chunks * PER_CHUNK; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS
        const typename C::word_t value = pixel_word < words_per_pixel ? in.read() : typename C::word_t(0);
        for (int e = 0; e < C::WORD_BYTES; ++e) {
#pragma HLS UNROLL
            chunk.data[part * C::WORD_BYTES + e] = hwc_word_byte<C>(value, e);
        }
        ++pixel_word;
        if (++part == PER_CHUNK) {
            part = 0;
            out.write(chunk);
            if (++word == chunks) {
                word = 0;
                pixel_word = 0;
            }
        }
    }
}

// Output words of `lanes` bytes (PE or SIMD channels) -> DDR words: per pixel `words_in` stream
// words of which the first `words_kept` DDR words are stored (the rest lie beyond the tensor's
// channels, which the compute pads to whole folds).
template <class C>
void hwc_unpack_lanes(hls::stream<hwc_vec<hwc_byte_t, C::OUT_LANES> > &in, hls::stream<typename C::word_t> &out,
                      int pixels, int words_in, int lanes, int words_kept) {
    const int per_word = lanes / C::WORD_BYTES;
    hwc_vec<hwc_byte_t, C::OUT_LANES> lane_word;
#pragma HLS ARRAY_PARTITION variable=lane_word.data complete
    int part = 0, pixel_word = 0;
unpack:
    for (int i = 0; i < pixels * words_in * per_word; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=C::MAX_TENSOR_WORDS
        if (part == 0) lane_word = in.read();
        typename C::word_t value = 0;
        for (int e = 0; e < C::WORD_BYTES; ++e) {
#pragma HLS UNROLL
            value.range(8 * e + 7, 8 * e) = lane_word.data[part * C::WORD_BYTES + e];
        }
        if (pixel_word < words_kept) out.write(value);
        if (++part == per_word) part = 0;
        if (++pixel_word == words_in * per_word) pixel_word = 0;
    }
}

// The records of `entries` output channels (bias and requantization) into an on-chip table of
// BANKS banks: entry e goes to table[e / BANKS][e % BANKS], so the BANKS output stages that
// convert consecutive channels each read their own bank with a constant bank index.
template <class C, int ROWS, int BANKS>
void hwc_load_records(const typename C::param_t *params, int base, int entries, hwc_record<C> table[ROWS][BANKS]) {
    typename C::param_t words[HWC_RECORD_WORDS];
#pragma HLS ARRAY_PARTITION variable=words complete
load:
    for (int i = 0; i < entries * HWC_RECORD_WORDS; ++i) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=ROWS * BANKS * HWC_RECORD_WORDS
        const int field = i % HWC_RECORD_WORDS;
        const int entry = i / HWC_RECORD_WORDS;
        words[field] = params[base + i];
        if (field == HWC_RECORD_WORDS - 1) table[entry / BANKS][entry % BANKS] = hwc_unpack_record<C>(words);
    }
}

#endif
