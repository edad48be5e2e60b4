"""The layer-sequential engine's mapper side: its program and plans (`program`), its cycles and
resources (`cost`), its datapath widths (`widths`). Sizing it for a board is `mapper.engine_map`."""
