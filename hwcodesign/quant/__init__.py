"""Number formats for weights beyond plain integers (DyBit) and the search that picks them."""
