// hls_stream.h -- hwcodesign's own g++-only C-simulation subset of the Vitis HLS hls::stream FIFO.
//
// Written for hwcodesign (not Xilinx code). It is used only when the generated HLS C++ is compiled with
// g++ for C simulation; under Vitis HLS the real <hls_stream.h> is used and this file is never on the path.
//
// Subset provided: namespace hls { template <typename T, int DEPTH = 0> class stream; } -- an unbounded
// FIFO backed by std::deque (as in Vitis C simulation; DEPTH is accepted and ignored) with
//   stream(), stream(const char* name), name(), read() -> T, read(T&), write(const T&), operator>>(T&),
//   operator<<(const T&), empty(), full() (always false), size(), read_nb(T&) and write_nb(const T&)
//   (both return bool; write_nb always succeeds).
// Not copyable. Reading an empty stream prints "hls::stream '<name>' read while empty" to stderr and calls
// abort(): in a dataflow C simulation that is always a bug (code is built with -fno-exceptions).
// Built with -DHWC_CSIM_SOFT_UNDERFLOW (the C-simulation library loaded into Python), it instead counts
// the event in hls::shim_underflows() and returns a default value, so the caller can report the error.

#ifndef HWCODESIGN_SHIM_HLS_STREAM_H
#define HWCODESIGN_SHIM_HLS_STREAM_H

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

// Reads of empty streams since the counter was last reset (HWC_CSIM_SOFT_UNDERFLOW builds only).
inline int& shim_underflows() {
  static int count = 0;
  return count;
}

template <typename T, int DEPTH = 0>
class stream {
 public:
  stream() : name_("hls::stream") {}
  stream(const char* name) : name_(name != nullptr ? name : "hls::stream") {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  const char* name() const { return name_.c_str(); }
  bool empty() const { return fifo_.empty(); }
  bool full() const { return false; }
  std::size_t size() const { return fifo_.size(); }

  T read() {
    if (fifo_.empty()) {
#ifdef HWC_CSIM_SOFT_UNDERFLOW
      ++shim_underflows();
      return T();
#else
      read_while_empty();
#endif
    }
    T value = fifo_.front();
    fifo_.pop_front();
    return value;
  }
  void read(T& value) { value = read(); }
  void operator>>(T& value) { value = read(); }
  bool read_nb(T& value) {
    if (fifo_.empty()) return false;
    value = read();
    return true;
  }

  void write(const T& value) { fifo_.push_back(value); }
  void operator<<(const T& value) { write(value); }
  bool write_nb(const T& value) {
    write(value);
    return true;
  }

 private:
  void read_while_empty() const {
    std::fprintf(stderr, "hls::stream '%s' read while empty\n", name_.c_str());
    std::fflush(stderr);
    std::abort();
  }

  std::string name_;
  std::deque<T> fifo_;
};

}  // namespace hls

#endif  // HWCODESIGN_SHIM_HLS_STREAM_H
