"""Every weight inside the TFLite flatbuffer.

AI Edge Quantizer writes large weight buffers after the flatbuffer, referenced by
offset. LiteRT's interpreter reads that, but MediaPipe Tasks' loader does not ("input
tensor ... to op EMBEDDING_LOOKUP is not produced"), and MediaPipe's metadata
populator, which re-packs the flatbuffer, silently drops such buffers (a 23.7 MB
file became 1.09 MB). Moving them inside first makes a file every runtime reads.
"""

from __future__ import annotations

import numpy as np


def appended_buffers(model: bytes) -> int:
    """How many buffers live outside the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(model, 0)
    return sum(1 for i in range(m.BuffersLength()) if m.Buffers(i).Offset() > 1)


def inline_buffers(model: bytes) -> bytes:
    """The same model with every appended buffer moved into the flatbuffer."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    if not appended_buffers(model):
        return model
    raw = np.frombuffer(model, dtype=np.uint8)
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for b in m.buffers:
        if b.offset and b.offset > 1:
            b.data = raw[b.offset:b.offset + b.size].copy()
            b.offset, b.size = 0, 0
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
