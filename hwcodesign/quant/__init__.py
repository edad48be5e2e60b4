"""Weight formats beyond plain integers (`formats.WeightFormat`: int and DyBit widths, as the search
and `--formats` name them). The DyBit number format itself is in `hwcodesign.ir.dybit`, the search
in `hwcodesign.flows.search` and `hwcodesign.mapper.precision`."""
