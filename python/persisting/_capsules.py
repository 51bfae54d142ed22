"""Arrow C Data through the public PyCapsule interface.

Batches go to Go as the capsules of ``RecordBatch.__arrow_c_array__()``: Go
imports (moves) the structs, and the capsules' own destructors then free the
emptied memory. Streams come back from Go into a struct this module allocates
and wraps in an ``arrow_array_stream`` capsule, which
``pyarrow.RecordBatchReader.from_stream`` takes; the capsule's destructor
releases the stream if nobody took it and frees the struct. No private pyarrow
call, no struct size written by hand: the struct is the C Data Interface's
``ArrowArrayStream``, declared once below.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pyarrow as pa

_pythonapi = ctypes.pythonapi
_pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pythonapi.PyCapsule_New.restype = ctypes.py_object
_pythonapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_pythonapi.PyMem_RawCalloc.restype = ctypes.c_void_p
_pythonapi.PyMem_RawCalloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_pythonapi.PyMem_RawFree.restype = None
_pythonapi.PyMem_RawFree.argtypes = [ctypes.c_void_p]

# The destructor gets the capsule while it is being deallocated: it must not
# become a Python object again (ctypes' py_object would take a reference and
# deallocate it a second time), so it is read through a raw pointer.
_pointer_of_raw = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _pythonapi)
)

_STREAM_NAME = b"arrow_array_stream"
_RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class ArrowArrayStream(ctypes.Structure):
    """``struct ArrowArrayStream`` of the Arrow C stream interface."""

    _fields_ = [
        ("get_schema", ctypes.c_void_p),
        ("get_next", ctypes.c_void_p),
        ("get_last_error", ctypes.c_void_p),
        ("release", _RELEASE),
        ("private_data", ctypes.c_void_p),
    ]


def array_pointers(batch: pa.RecordBatch) -> tuple[tuple[Any, Any], int, int]:
    """The capsules of ``batch`` and the addresses of its ArrowArray and
    ArrowSchema. Keep the capsules alive until the consumer has moved the structs."""
    schema_capsule, array_capsule = batch.__arrow_c_array__()
    array = _pythonapi.PyCapsule_GetPointer(array_capsule, b"arrow_array")
    schema = _pythonapi.PyCapsule_GetPointer(schema_capsule, b"arrow_schema")
    return (schema_capsule, array_capsule), array, schema


@ctypes.PYFUNCTYPE(None, ctypes.c_void_p)
def _destroy_stream(capsule: int) -> None:
    address = _pointer_of_raw(capsule, _STREAM_NAME)
    stream = ArrowArrayStream.from_address(address)
    if stream.release:
        stream.release(address)
    _pythonapi.PyMem_RawFree(address)


class StreamCapsule:
    """A zeroed ArrowArrayStream for a producer to fill (``address``), handed to
    pyarrow through ``__arrow_c_stream__``."""

    def __init__(self) -> None:
        self.address: int = _pythonapi.PyMem_RawCalloc(1, ctypes.sizeof(ArrowArrayStream))
        if not self.address:
            raise MemoryError("persisting: cannot allocate an ArrowArrayStream")
        destructor = ctypes.cast(_destroy_stream, ctypes.c_void_p).value
        self._capsule = _pythonapi.PyCapsule_New(self.address, _STREAM_NAME, destructor)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._capsule

    def read_all(self) -> pa.Table:
        """The stream's batches as one table (pyarrow moves the stream out)."""
        return pa.RecordBatchReader.from_stream(self).read_all()
