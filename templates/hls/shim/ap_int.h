// ap_int.h -- hwcodesign's own g++-only C-simulation subset of Vitis HLS arbitrary-precision integers.
//
// Written for hwcodesign (not Xilinx code). It is used only when the generated HLS C++ is compiled with
// g++ for C simulation; under Vitis HLS the real <ap_int.h> is used and this file is never on the path.
// It needs C++14, no exceptions, no RTTI, no dynamic allocation and no iostream.
//
// Subset provided (semantics follow Vitis HLS for these uses):
//   ap_int<W> (signed, two's complement) and ap_uint<W>, 1 <= W <= 1024, stored as W-bit words that are
//   always normalised (wrapped to W bits; ap_int sign-extended).
//   - constexpr default (0) and converting constructors from every built-in integer type and bool, and
//     from any ap_int/ap_uint width (all wrap modulo 2^W); constructors from float/double (truncate toward
//     zero; the value must fit in long long), from x[i] and from x.range(hi, lo).
//   - W <= 64: implicit conversion to long long (ap_int<W>, ap_uint<W <= 63>) or unsigned long long
//     (ap_uint<64>), so arithmetic, comparisons and shifts are ordinary C++ on those types; the result
//     wraps when it is stored back into an ap type. Compound assignment (+= -= *= /= %= &= |= ^= <<= >>=)
//     and ++/-- wrap to W bits.
//   - every W: &=, |=, ^= with an ap operand of any width or a built-in integer (sign-extended).
//   - every W: copy/assignment, == and != (W > 64 compares values, also against built-in integers),
//     x[i] (read; write through a proxy: x[i] = 1), get_bit/set_bit, x.range(hi, lo) and x(hi, lo)
//     (read as unsigned long long -- the low 64 bits of the field --, write x.range(hi, lo) = v storing the
//     low hi-lo+1 bits of v, fields may straddle 64-bit words), x.range() (all W bits),
//     to_bool/to_int/to_uint/to_long/to_ulong/to_int64/to_uint64 (the low bits), length(), ::width.
// Not provided: W > 64 arithmetic or ordering, concatenation, reductions, strings, iostream output,
// reversed ranges (hi < lo), ap_fixed. Unlike Vitis, a << or >> on a W <= 64 value is a long long shift
// (it does not keep the left operand's width) and ~x is ~ of the long long value.

#ifndef HWCODESIGN_SHIM_AP_INT_H
#define HWCODESIGN_SHIM_AP_INT_H

#include <cassert>
#include <type_traits>

template <int W> class ap_int;
template <int W> class ap_uint;

namespace hwcodesign_shim {

typedef unsigned long long u64;
typedef long long s64;

template <int W, bool S> class ap_base;
template <int W, bool S> class bit_ref;
template <int W, bool S> class range_cref;
template <int W, bool S> class range_ref;

template <int W, bool S> struct select_type;
template <int W> struct select_type<W, true> { typedef ap_int<W> type; };
template <int W> struct select_type<W, false> { typedef ap_uint<W> type; };

template <class T> struct is_ap : std::false_type {};
template <int W> struct is_ap<ap_int<W> > : std::true_type {};
template <int W> struct is_ap<ap_uint<W> > : std::true_type {};
template <int W, bool S> struct is_ap<ap_base<W, S> > : std::true_type {};

// Mask of the low n bits, 0 <= n <= 64.
constexpr u64 low_mask(int n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }

// Word i of a number held in n words; words past the end are its sign fill (0 or ~0).
constexpr u64 word_at(const u64* w, int n, int i, u64 fill) { return i < n ? w[i] : fill; }

// The 64 bits starting at bit pos >= 0.
constexpr u64 bits_at(const u64* w, int n, int pos, u64 fill) {
  return (pos & 63) == 0 ? word_at(w, n, pos >> 6, fill)
                         : (word_at(w, n, pos >> 6, fill) >> (pos & 63)) |
                               (word_at(w, n, (pos >> 6) + 1, fill) << (64 - (pos & 63)));
}

// Store the low len bits of the number (src, sn words, sign fill sfill) at bits [lo, lo + len) of dst.
inline void put_bits(u64* dst, int lo, int len, const u64* src, int sn, u64 sfill) {
  for (int done = 0; done < len; done += 64) {
    const int chunk = len - done < 64 ? len - done : 64;
    const u64 m = low_mask(chunk);
    const u64 v = bits_at(src, sn, done, sfill) & m;
    const int pos = lo + done;
    const int wi = pos >> 6;
    const int sh = pos & 63;
    dst[wi] = (dst[wi] & ~(m << sh)) | (v << sh);
    if (sh != 0 && sh + chunk > 64) dst[wi + 1] = (dst[wi + 1] & ~(m >> (64 - sh))) | (v >> (64 - sh));
  }
}

// Value equality of two sign-filled word arrays.
inline bool equal_words(const u64* a, int na, u64 fa, const u64* b, int nb, u64 fb) {
  if (fa != fb) return false;
  const int n = na > nb ? na : nb;
  for (int i = 0; i < n; ++i)
    if (word_at(a, na, i, fa) != word_at(b, nb, i, fb)) return false;
  return true;
}

// A W-bit number's top word normalised: its low W % 64 bits kept, the rest 0 (unsigned) or the sign.
// Two shifts (sign-extending through the top bit for ap_int): the hot path of every operation.
template <int W, bool S> constexpr u64 normalise_top(u64 top) {
  return (W & 63) == 0 ? top
         : S           ? static_cast<u64>(static_cast<s64>(top << (64 - (W & 63))) >> (64 - (W & 63)))
                       : (top & low_mask(W & 63));
}

// Storage: N little-endian 64-bit words, always normalised (see normalise_top).
template <int W, bool S, bool Small = (W <= 64)> struct ap_storage {
  static const int N = (W + 63) / 64;
  u64 w_[N];
  constexpr ap_storage() : w_() {}
  // The number whose low word is lo and whose other words are fill, wrapped to W bits.
  constexpr ap_storage(u64 lo, u64 fill) : w_() {
    w_[0] = lo;
    for (int i = 1; i < N; ++i) w_[i] = fill;
    normalise();
  }
  constexpr u64 fill() const { return (S && (w_[N - 1] >> 63)) ? ~0ull : 0ull; }
  constexpr void normalise() { w_[N - 1] = normalise_top<W, S>(w_[N - 1]); }
};

// W <= 64: one word, and the implicit conversion to a built-in integer that ordinary arithmetic uses.
template <int W, bool S> struct ap_storage<W, S, true> {
  static const int N = 1;
  typedef typename std::conditional<(W == 64 && !S), u64, s64>::type value_type;
  u64 w_[1];
  ap_storage() = default;
  constexpr ap_storage(u64 lo, u64) : w_{normalise_top<W, S>(lo)} {}
  // An already normalised value (a lossless widening, an exact product): no re-normalisation.
  struct raw_tag {};
  constexpr ap_storage(u64 normalised, raw_tag) : w_{normalised} {}
  constexpr u64 fill() const { return (S && (w_[0] >> 63)) ? ~0ull : 0ull; }
  constexpr void normalise() { w_[0] = normalise_top<W, S>(w_[0]); }
  constexpr operator value_type() const { return static_cast<value_type>(w_[0]); }
};

// A built-in (or proxy) operand of a compound assignment, as 64 two's complement bits.
template <class T, typename std::enable_if<!is_ap<T>::value, int>::type = 0>
constexpr u64 as_u64(const T& v) { return static_cast<u64>(static_cast<s64>(v)); }
template <int W, bool S> constexpr u64 as_u64(const ap_base<W, S>& v) { return v.w_[0]; }

// What ap_int<W> (S) and ap_uint<W> (!S) share; they add only their constructors.
template <int W, bool S> class ap_base : public ap_storage<W, S> {
  static_assert(W >= 1 && W <= 1024, "hwcodesign shim: ap_int/ap_uint width must be in [1, 1024]");
  typedef ap_storage<W, S> base_type;

 public:
  typedef typename select_type<W, S>::type self_type;
  static const int width = W;

  ap_base() = default;

  template <class I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  constexpr ap_base(I v)
      : base_type(static_cast<u64>(v), (std::is_signed<I>::value && (static_cast<u64>(v) >> 63)) ? ~0ull : 0ull) {}

  template <class F, typename std::enable_if<std::is_floating_point<F>::value, long>::type = 0>
  constexpr ap_base(F v) : ap_base(static_cast<s64>(v)) {}

  // Widening that keeps every value (same signedness, or unsigned into a wider signed type): the
  // normalised 64-bit pattern is already right, so C simulation skips the re-normalisation.
  template <int W2, bool S2>
  struct lossless {
    static const bool value = W <= 64 && W2 <= 64 && ((S == S2 && W2 <= W) || (S && !S2 && W2 < W));
  };
  template <int W2, bool S2, typename std::enable_if<lossless<W2, S2>::value, int>::type = 0>
  constexpr ap_base(const ap_base<W2, S2>& o) : base_type(o.w_[0], typename base_type::raw_tag()) {}
  struct exact_tag {};
  constexpr ap_base(u64 normalised, exact_tag) : base_type(normalised, typename base_type::raw_tag()) {}

  template <int W2, bool S2, typename std::enable_if<!lossless<W2, S2>::value, int>::type = 0>
  constexpr ap_base(const ap_base<W2, S2>& o) : base_type(o.w_[0], o.fill()) {
    for (int i = 1; i < this->N && i < o.N; ++i) this->w_[i] = o.w_[i];
    this->normalise();
  }

  template <int W2, bool S2>
  ap_base(const bit_ref<W2, S2>& b) : ap_base(static_cast<bool>(b)) {}

  template <int W2, bool S2>
  ap_base(const range_cref<W2, S2>& r) : base_type() {
    r.copy_to(this->w_, this->N);
    this->normalise();
  }

  // ---- conversions (the low bits for W > 64) ----
  constexpr bool to_bool() const {
    for (int i = 0; i < this->N; ++i)
      if (this->w_[i] != 0) return true;
    return false;
  }
  constexpr int to_int() const { return static_cast<int>(this->w_[0]); }
  constexpr unsigned to_uint() const { return static_cast<unsigned>(this->w_[0]); }
  constexpr long to_long() const { return static_cast<long>(this->w_[0]); }
  constexpr unsigned long to_ulong() const { return static_cast<unsigned long>(this->w_[0]); }
  constexpr long long to_int64() const { return static_cast<long long>(this->w_[0]); }
  constexpr unsigned long long to_uint64() const { return this->w_[0]; }
  constexpr int length() const { return W; }

  // ---- bits ----
  bool get_bit(int i) const {
    assert(i >= 0 && i < W);
    return (this->w_[i >> 6] >> (i & 63)) & 1;
  }
  void set_bit(int i, bool b) {
    assert(i >= 0 && i < W);
    const u64 m = 1ull << (i & 63);
    this->w_[i >> 6] = b ? (this->w_[i >> 6] | m) : (this->w_[i >> 6] & ~m);
    this->normalise();
  }
  bool operator[](int i) const { return get_bit(i); }
  bit_ref<W, S> operator[](int i) {
    assert(i >= 0 && i < W);
    return bit_ref<W, S>(this, i);
  }

  // ---- ranges (hi >= lo) ----
  range_cref<W, S> range(int hi, int lo) const { return range_cref<W, S>(this, hi, lo); }
  range_ref<W, S> range(int hi, int lo) { return range_ref<W, S>(this, hi, lo); }
  range_cref<W, S> range() const { return range(W - 1, 0); }
  range_ref<W, S> range() { return range(W - 1, 0); }
  range_cref<W, S> operator()(int hi, int lo) const { return range(hi, lo); }
  range_ref<W, S> operator()(int hi, int lo) { return range(hi, lo); }

  // ---- compound assignment and increments, W <= 64 only; results wrap to W bits ----
  template <class T> self_type& operator+=(const T& v) { return assign_u64(this->w_[0] + as_u64(v)); }
  template <class T> self_type& operator-=(const T& v) { return assign_u64(this->w_[0] - as_u64(v)); }
  template <class T> self_type& operator*=(const T& v) { return assign_u64(this->w_[0] * as_u64(v)); }
  // &= |= ^= also for W > 64 (bitmaps: a row of active sites), word by word with the operand's sign fill.
  template <class T> self_type& operator&=(const T& v) { return bitwise(v, '&'); }
  template <class T> self_type& operator|=(const T& v) { return bitwise(v, '|'); }
  template <class T> self_type& operator^=(const T& v) { return bitwise(v, '^'); }
  template <class T> self_type& operator/=(const T& v) {
    static_assert(W <= 64, "hwcodesign shim: ap_int arithmetic needs W <= 64");
    return self() = self_type(static_cast<typename base_type::value_type>(*this) / v);
  }
  template <class T> self_type& operator%=(const T& v) {
    static_assert(W <= 64, "hwcodesign shim: ap_int arithmetic needs W <= 64");
    return self() = self_type(static_cast<typename base_type::value_type>(*this) % v);
  }
  template <class T> self_type& operator<<=(const T& v) { return shift(static_cast<s64>(v)); }
  template <class T> self_type& operator>>=(const T& v) {
    const s64 n = static_cast<s64>(v);
    return shift(n == (-0x7fffffffffffffffll - 1) ? 0x7fffffffffffffffll : -n);
  }
  self_type& operator++() { return *this += 1; }
  self_type& operator--() { return *this -= 1; }
  self_type operator++(int) {
    const self_type old = self();
    *this += 1;
    return old;
  }
  self_type operator--(int) {
    const self_type old = self();
    *this -= 1;
    return old;
  }

 private:
  self_type& self() { return static_cast<self_type&>(*this); }
  static u64 apply(char op, u64 a, u64 b) { return op == '&' ? (a & b) : op == '|' ? (a | b) : (a ^ b); }
  template <class T>
  self_type& bitwise(const T& v, char op) { return bitwise(v, op, std::integral_constant<bool, (W <= 64)>()); }
  template <class T>
  self_type& bitwise(const T& v, char op, std::true_type) { return assign_u64(apply(op, this->w_[0], as_u64(v))); }
  template <class T>
  self_type& bitwise(const T& v, char op, std::false_type) {
    u64 words[(W + 63) / 64];
    const int n = operand_words(v, words, (W + 63) / 64);
    const u64 fill = operand_fill(v);
    for (int i = 0; i < this->N; ++i) this->w_[i] = apply(op, this->w_[i], i < n ? words[i] : fill);
    this->normalise();
    return self();
  }
  template <int W2, bool S2>
  static int operand_words(const ap_base<W2, S2>& v, u64* out, int most) {
    const int n = v.N < most ? v.N : most;
    for (int i = 0; i < n; ++i) out[i] = v.w_[i];
    return n;
  }
  template <class T, typename std::enable_if<!is_ap<T>::value, int>::type = 0>
  static int operand_words(const T& v, u64* out, int) {
    out[0] = as_u64(v);
    return 1;
  }
  template <int W2, bool S2>
  static u64 operand_fill(const ap_base<W2, S2>& v) { return v.fill(); }
  template <class T, typename std::enable_if<!is_ap<T>::value, int>::type = 0>
  static u64 operand_fill(const T& v) { return (std::is_signed<T>::value && (as_u64(v) >> 63)) ? ~0ull : 0ull; }
  self_type& assign_u64(u64 v) {
    static_assert(W <= 64, "hwcodesign shim: ap_int arithmetic needs W <= 64");
    this->w_[0] = v;
    this->normalise();
    return self();
  }
  // Shift left by n (right by -n): arithmetic for ap_int, logical for ap_uint.
  self_type& shift(s64 n) {
    static_assert(W <= 64, "hwcodesign shim: ap_int arithmetic needs W <= 64");
    const u64 v = this->w_[0];
    if (n >= 0) return assign_u64(n >= 64 ? 0 : v << n);
    const s64 r = -n;
    if (S) {
      const s64 sv = static_cast<s64>(v);
      return assign_u64(static_cast<u64>(r >= 64 ? (sv < 0 ? -1 : 0) : sv >> r));
    }
    return assign_u64(r >= 64 ? 0 : v >> r);
  }
};

template <int W, bool S> const int ap_base<W, S>::width;

// ap * ap with W1 + W2 <= 63: the exact product in ap_(u)int<W1 + W2>, as in Vitis (the result
// type holds every product, so no wrap is needed; wider products fall back to long long).
template <int W1, bool S1, int W2, bool S2>
constexpr typename std::enable_if<(W1 + W2 <= 63), typename select_type<W1 + W2, S1 || S2>::type>::type operator*(
    const ap_base<W1, S1>& a, const ap_base<W2, S2>& b) {
  typedef typename select_type<W1 + W2, S1 || S2>::type result_type;
  typedef ap_base<W1 + W2, S1 || S2> result_base;
  return result_type(result_base(static_cast<u64>(static_cast<s64>(a.w_[0]) * static_cast<s64>(b.w_[0])),
                                 typename result_base::exact_tag()));
}

// ---- equality where a W > 64 value is involved (W <= 64 compares through the conversion) ----
template <int W1, bool S1, int W2, bool S2>
typename std::enable_if<(W1 > 64 || W2 > 64), bool>::type operator==(const ap_base<W1, S1>& a,
                                                                   const ap_base<W2, S2>& b) {
  return equal_words(a.w_, a.N, a.fill(), b.w_, b.N, b.fill());
}
template <int W1, bool S1, int W2, bool S2>
typename std::enable_if<(W1 > 64 || W2 > 64), bool>::type operator!=(const ap_base<W1, S1>& a,
                                                                   const ap_base<W2, S2>& b) {
  return !(a == b);
}
template <int W, bool S, class I>
typename std::enable_if<(W > 64 && std::is_integral<I>::value), bool>::type operator==(const ap_base<W, S>& a,
                                                                                      I v) {
  const u64 w = static_cast<u64>(v);
  const u64 fill = (std::is_signed<I>::value && (w >> 63)) ? ~0ull : 0ull;
  return equal_words(a.w_, a.N, a.fill(), &w, 1, fill);
}
template <int W, bool S, class I>
typename std::enable_if<(W > 64 && std::is_integral<I>::value), bool>::type operator==(I v,
                                                                                      const ap_base<W, S>& a) {
  return a == v;
}
template <int W, bool S, class I>
typename std::enable_if<(W > 64 && std::is_integral<I>::value), bool>::type operator!=(const ap_base<W, S>& a,
                                                                                      I v) {
  return !(a == v);
}
template <int W, bool S, class I>
typename std::enable_if<(W > 64 && std::is_integral<I>::value), bool>::type operator!=(I v,
                                                                                      const ap_base<W, S>& a) {
  return !(a == v);
}

// x[i] on a non-const value.
template <int W, bool S> class bit_ref {
 public:
  bit_ref(ap_base<W, S>* p, int i) : p_(p), i_(i) {}
  bit_ref(const bit_ref&) = default;
  operator bool() const { return p_->get_bit(i_); }
  bool operator~() const { return !p_->get_bit(i_); }
  bool to_bool() const { return p_->get_bit(i_); }
  bit_ref& operator=(bool b) {
    p_->set_bit(i_, b);
    return *this;
  }
  bit_ref& operator=(const bit_ref& o) { return *this = static_cast<bool>(o); }

 private:
  ap_base<W, S>* p_;
  int i_;
};

// x.range(hi, lo) read: the field as an unsigned number.
template <int W, bool S> class range_cref {
 public:
  range_cref(const ap_base<W, S>* p, int hi, int lo) : p_(p), hi_(hi), lo_(lo) {
    assert(lo >= 0 && lo <= hi && hi < W);
  }
  int length() const { return hi_ - lo_ + 1; }
  unsigned long long to_uint64() const {
    return bits_at(p_->w_, p_->N, lo_, p_->fill()) & low_mask(length() < 64 ? length() : 64);
  }
  operator unsigned long long() const { return to_uint64(); }
  long long to_int64() const { return static_cast<long long>(to_uint64()); }
  int to_int() const { return static_cast<int>(to_uint64()); }
  unsigned to_uint() const { return static_cast<unsigned>(to_uint64()); }
  long to_long() const { return static_cast<long>(to_uint64()); }
  unsigned long to_ulong() const { return static_cast<unsigned long>(to_uint64()); }
  bool to_bool() const {
    for (int done = 0; done < length(); done += 64)
      if (bits_at(p_->w_, p_->N, lo_ + done, p_->fill()) & low_mask(length() - done)) return true;
    return false;
  }
  // The field, zero-extended, into n words.
  void copy_to(u64* dst, int n) const {
    for (int i = 0; i < n; ++i) {
      const int done = 64 * i;
      dst[i] = done < length() ? bits_at(p_->w_, p_->N, lo_ + done, p_->fill()) & low_mask(length() - done) : 0;
    }
  }

 protected:
  const ap_base<W, S>* p_;
  int hi_;
  int lo_;
};

// x.range(hi, lo) on a non-const value: assignment stores the low hi-lo+1 bits of the right-hand side.
template <int W, bool S> class range_ref : public range_cref<W, S> {
 public:
  range_ref(ap_base<W, S>* p, int hi, int lo) : range_cref<W, S>(p, hi, lo), mp_(p) {}
  range_ref(const range_ref&) = default;

  template <class I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  range_ref& operator=(I v) {
    const u64 w = static_cast<u64>(v);
    return put(&w, 1, (std::is_signed<I>::value && (w >> 63)) ? ~0ull : 0ull);
  }
  template <int W2, bool S2> range_ref& operator=(ap_base<W2, S2> v) { return put(v.w_, v.N, v.fill()); }
  template <int W2, bool S2> range_ref& operator=(const range_cref<W2, S2>& o) {
    const ap_base<W2, false> v(o);  // a copy: the source may be this same value
    return put(v.w_, v.N, 0);
  }
  range_ref& operator=(const range_ref& o) {
    return *this = static_cast<const range_cref<W, S>&>(o);
  }
  template <int W2, bool S2> range_ref& operator=(const bit_ref<W2, S2>& b) {
    return *this = static_cast<bool>(b);
  }

 private:
  range_ref& put(const u64* src, int sn, u64 sfill) {
    put_bits(mp_->w_, this->lo_, this->length(), src, sn, sfill);
    mp_->normalise();
    return *this;
  }
  ap_base<W, S>* mp_;
};

}  // namespace hwcodesign_shim

// The constructors are declared in ap_int/ap_uint themselves rather than inherited: g++ resolves
// `static const ap_int<4> w[N] = {1, -2, ...}` several times faster that way.
template <int W> class ap_int : public hwcodesign_shim::ap_base<W, true> {
  typedef hwcodesign_shim::ap_base<W, true> base_type;

 public:
  ap_int() = default;
  constexpr ap_int(const base_type& b) : base_type(b) {}
  template <class I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  constexpr ap_int(I v) : base_type(v) {}
  template <class F, typename std::enable_if<std::is_floating_point<F>::value, long>::type = 0>
  constexpr ap_int(F v) : base_type(v) {}
  template <int W2> constexpr ap_int(const ap_int<W2>& o) : base_type(o) {}
  template <int W2> constexpr ap_int(const ap_uint<W2>& o) : base_type(o) {}
  template <int W2, bool S2> ap_int(const hwcodesign_shim::bit_ref<W2, S2>& b) : base_type(b) {}
  template <int W2, bool S2> ap_int(const hwcodesign_shim::range_cref<W2, S2>& r) : base_type(r) {}
};

template <int W> class ap_uint : public hwcodesign_shim::ap_base<W, false> {
  typedef hwcodesign_shim::ap_base<W, false> base_type;

 public:
  ap_uint() = default;
  constexpr ap_uint(const base_type& b) : base_type(b) {}
  template <class I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  constexpr ap_uint(I v) : base_type(v) {}
  template <class F, typename std::enable_if<std::is_floating_point<F>::value, long>::type = 0>
  constexpr ap_uint(F v) : base_type(v) {}
  template <int W2> constexpr ap_uint(const ap_int<W2>& o) : base_type(o) {}
  template <int W2> constexpr ap_uint(const ap_uint<W2>& o) : base_type(o) {}
  template <int W2, bool S2> ap_uint(const hwcodesign_shim::bit_ref<W2, S2>& b) : base_type(b) {}
  template <int W2, bool S2> ap_uint(const hwcodesign_shim::range_cref<W2, S2>& r) : base_type(r) {}
};

#endif  // HWCODESIGN_SHIM_AP_INT_H
