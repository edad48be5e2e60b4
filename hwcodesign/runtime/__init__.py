"""Running compiled accelerators: the emulated PYNQ board (the real one is PYNQ itself)."""

from hwcodesign.runtime.emulated import EmulatedOverlay, allocate

__all__ = ["EmulatedOverlay", "allocate"]
