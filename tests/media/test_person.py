"""The person layer the renderer reads: frame planes plus a feathered alpha, at the person box's size."""

from __future__ import annotations

import io

import numpy as np

from shared.media.person import PersonLayerWriter
from shared.media.render import edge_feather, person_box


def test_person_box_is_bottom_centre_with_sides_in_multiples_of_4() -> None:
    box = person_box(1080, 1920, 0.88)
    assert (box.width % 4, box.height % 4) == (0, 0)
    assert box.y + box.height == 1920 and abs(box.x - (1080 - box.x - box.width)) <= 1
    assert person_box(360, 640, 1.0).size == (360, 640)


def test_feather_fades_the_sides_and_top_inside_the_frame_but_not_the_bottom() -> None:
    box = person_box(400, 800, 0.8)
    ramp = edge_feather(box, (400, 800), box.size)
    assert ramp is not None and ramp.shape == (box.height, box.width)
    assert ramp[0].max() < 40 and ramp[:, 0].max() < 40 and ramp[:, -1].max() < 40  # top, left, right: faded
    assert ramp[-1, box.width // 2] == 255 and ramp[box.height // 2, box.width // 2] == 255  # bottom, inside: kept
    half = edge_feather(box, (400, 800), (box.width // 2, box.height // 2))
    assert half is not None and half.shape == (box.height // 2, box.width // 2)
    assert edge_feather(person_box(400, 800, 1.0), (400, 800), (400, 800)) is None


def test_writer_sends_the_planes_then_the_enlarged_feathered_alpha() -> None:
    box = person_box(200, 400, 0.8)
    width, height = box.size
    y = np.full((height, width), 100, np.uint8)
    u = np.full((height // 2, width // 2), 110, np.uint8)
    v = np.full((height // 2, width // 2), 120, np.uint8)
    alpha = np.full((height // 2, width // 2), 255, np.uint8)  # a half-size matte: all person
    stream = io.BytesIO()
    writer = PersonLayerWriter(stream, box, (200, 400))
    writer.write(alpha, (y, u, v))
    writer.finish()
    data = np.frombuffer(stream.getvalue(), np.uint8)
    luma = width * height
    assert data.size == luma * 5 // 2 and writer.written == 1
    assert (data[:luma] == 100).all() and (data[luma : luma * 5 // 4] == 110).all()
    written_alpha = data[luma * 3 // 2 :].reshape(height, width)
    assert written_alpha[height // 2, width // 2] == 255 and written_alpha[-1, width // 2] == 255
    assert written_alpha[height // 2, 0] < 40 and written_alpha[0, width // 2] < 40
