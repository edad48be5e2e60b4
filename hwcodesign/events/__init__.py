"""Event-camera input: recordings, their file formats, the frames a sparse CNN takes, synthetic streams.

`EventStream` holds a recording (`load_events`/`save_events` read and write it); `histogram`,
`time_surface` and `voxel_grid` turn a time window into the float32 input of an ESDA-style
submanifold sparse network, whose density `active_fraction` measures; `synthetic_eye` and `synthetic_blob`
generate streams with ground truth, at a chosen density with `events_for_density`, and
`frame_at_density` builds a frame with an exact number of active sites for hardware tests.
"""

from hwcodesign.events.frames import active_fraction, frame_size, histogram, time_surface, voxel_grid, windows
from hwcodesign.events.io import EventFileError, load_events, save_events
from hwcodesign.events.stream import EventDataError, EventStream
from hwcodesign.events.synthetic import (
    EyeModel,
    Trajectory,
    density_parameters,
    events_for_density,
    expected_density,
    frame_at_density,
    synthetic_blob,
    synthetic_eye,
)

__all__ = [
    "EventDataError", "EventFileError", "EventStream", "EyeModel", "Trajectory", "active_fraction",
    "density_parameters", "events_for_density", "expected_density", "frame_at_density", "frame_size",
    "histogram", "load_events", "save_events", "synthetic_blob", "synthetic_eye", "time_surface", "voxel_grid",
    "windows",
]
