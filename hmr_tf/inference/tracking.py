"""Following people through a video: stable track ids from box overlap.

The demo's tracks stage (source -> people -> crops -> model -> tracks ->
writers). Each frame, the people found are matched to the live tracks by
their boxes: the cost of a (track, person) pair is 1 - IoU between the
person's box and the track's predicted box, and the assignment of least
total cost (`scipy.optimize.linear_sum_assignment`, the Hungarian method)
decides, a pair counting only when its IoU reaches `min_iou`. A track's
predicted box is its last box moved by its last velocity (box change per
frame between its last two sightings) times the frames since: two people
crossing keep their ids while their boxes overlap. A person left unmatched
starts a new track (ids count up from 0, never reused); a track left
unmatched survives `max_missed` frames, then ends.
"""

import dataclasses
from typing import List, Sequence

import numpy as np
from scipy import optimize

from hmr_tf import configs
from hmr_tf.inference import people as people_lib


@dataclasses.dataclass
class _Track:
  track_id: int
  box: np.ndarray  # [4] x, y, w, h at last_frame
  last_frame: int
  velocity: np.ndarray  # [4] box change per frame

  def predicted(self, frame: int) -> np.ndarray:
    return self.box + self.velocity * (frame - self.last_frame)


class BoxTracker:
  """Assigns a track id to each person box of consecutive frames.

  Args:
    config: min_iou and max_missed (configs.TrackingConfig).
  """

  def __init__(self, config: configs.TrackingConfig = configs.TrackingConfig()):
    self.config = config
    self._live: List[_Track] = []
    self._next_id = 0

  def update(self, frame: int, boxes: Sequence[Sequence[float]]) -> List[int]:
    """The track ids of one frame's boxes.

    Args:
      frame: the frame's index; increasing from call to call (frames
        without people may be skipped: they count as missed).
      boxes: [N, 4] the people's boxes (x, y, w, h) in this frame.

    Returns:
      [N] track ids, in the order of `boxes`, all different.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    self._live = [t for t in self._live
                  if frame - t.last_frame - 1 <= self.config.max_missed]
    ids = [-1] * len(boxes)
    if self._live and len(boxes):
      predicted = np.stack([t.predicted(frame) for t in self._live])
      iou = people_lib.box_iou(predicted, boxes)
      rows, cols = optimize.linear_sum_assignment(1.0 - iou)
      for r, c in zip(rows, cols):
        if iou[r, c] >= self.config.min_iou and iou[r, c] > 0:
          track = self._live[r]
          track.velocity = (boxes[c] - track.box) / (frame - track.last_frame)
          track.box, track.last_frame = boxes[c], frame
          ids[c] = track.track_id
    for c, box in enumerate(boxes):
      if ids[c] < 0:
        self._live.append(_Track(self._next_id, box, frame, np.zeros(4)))
        ids[c] = self._next_id
        self._next_id += 1
    return ids
