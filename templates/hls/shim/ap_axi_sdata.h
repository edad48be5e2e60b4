// ap_axi_sdata.h -- hwcodesign's own g++-only C-simulation subset of the Vitis HLS AXI4-Stream side-channel
// structs.
//
// Written for hwcodesign (not Xilinx code). It is used only when the generated HLS C++ is compiled with
// g++ for C simulation; under Vitis HLS the real <ap_axi_sdata.h> is used and this file is never on the path.
//
// Subset provided: template <int D, int U, int TI, int TD> struct ap_axiu (unsigned data) and ap_axis
// (signed data) with the members data (D bits), keep and strb ((D + 7) / 8 bits), user (U bits), last
// (1 bit), id (TI bits) and dest (TD bits). A zero width U, TI or TD (as in the usual ap_axiu<64, 0, 0, 0>)
// is held as a 1-bit field so the struct still compiles. Not provided: hls::axis, the side-channel
// enable flags, qdma_axis.

#ifndef HWCODESIGN_SHIM_AP_AXI_SDATA_H
#define HWCODESIGN_SHIM_AP_AXI_SDATA_H

#include <ap_int.h>  // the search path's: Xilinx's ap_int.h when it comes first

namespace hwcodesign_shim {
// The width used to hold an optional side channel: N bits, or 1 when the channel is absent (N == 0).
template <int N> struct side_width {
  static_assert(N >= 0, "hwcodesign shim: AXI side-channel widths must be >= 0");
  static const int value = N > 0 ? N : 1;
};
}  // namespace hwcodesign_shim

template <int D, int U, int TI, int TD>
struct ap_axiu {
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<hwcodesign_shim::side_width<U>::value> user;
  ap_uint<1> last;
  ap_uint<hwcodesign_shim::side_width<TI>::value> id;
  ap_uint<hwcodesign_shim::side_width<TD>::value> dest;
};

template <int D, int U, int TI, int TD>
struct ap_axis {
  ap_int<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<hwcodesign_shim::side_width<U>::value> user;
  ap_uint<1> last;
  ap_uint<hwcodesign_shim::side_width<TI>::value> id;
  ap_uint<hwcodesign_shim::side_width<TD>::value> dest;
};

#endif  // HWCODESIGN_SHIM_AP_AXI_SDATA_H
