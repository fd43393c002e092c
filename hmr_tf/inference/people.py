"""The demo's people: detections kept, and the crop each one gives.

The second stage of the demo's flow (source -> people -> crops -> model ->
tracks -> writers). A detector (hmr_tf.inference.detectors) returns every
`Person` it sees; `select_people` keeps those scoring at least the
threshold, drops a detection that overlaps a better-scoring one by more than
the NMS threshold (intersection over union; the same person found twice),
and keeps at most `max_people`, the best first. `person_crop` turns a person
into the network's crop: their confident keypoints by the OpenPose rule (the
original demo's: the box around them, scale = 150 / its diagonal) when
there are two or more, else their box by the box rule (scale = 150 / the
box's longer side).

Coordinates: boxes (x, y, w, h) are continuous edges in image pixels (the
image spans [0, W] x [0, H]); keypoints (x, y) are pixel-centre coordinates
(hmr_tf.geometry.crop's convention), as OpenPose's.
"""

import dataclasses
from typing import Callable, List, Optional, Sequence

from absl import logging
import numpy as np

from hmr_tf import configs
from hmr_tf.inference import crops as crops_lib


@dataclasses.dataclass(frozen=True)
class Person:
  """One detected person.

  Attributes:
    box: (x, y, w, h) in image pixels (left and top edges, width, height).
    score: the detector's confidence, higher is surer.
    keypoints: [17, 3] (x, y, score) in COCO's keypoint order and pixel-centre
      coordinates, or None when the detector gives none.
  """
  box: tuple
  score: float
  keypoints: Optional[np.ndarray] = None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Intersection over union of every pair of boxes.

  Args:
    a: [N, 4] boxes (x, y, w, h).
    b: [M, 4] boxes (x, y, w, h).

  Returns:
    [N, M] IoU in [0, 1] (0 where a box has no area).
  """
  a = np.asarray(a, np.float64).reshape(-1, 4)
  b = np.asarray(b, np.float64).reshape(-1, 4)
  lo = np.maximum(a[:, None, :2], b[None, :, :2])
  hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] +
                  b[None, :, 2:])
  inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
  area_a = np.prod(np.clip(a[:, 2:], 0, None), axis=-1)
  area_b = np.prod(np.clip(b[:, 2:], 0, None), axis=-1)
  union = area_a[:, None] + area_b[None, :] - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def select_people(people: Sequence[Person], threshold: float, nms_iou: float,
                  max_people: int) -> List[Person]:
  """Threshold, non-maximum suppression and the count limit, best first.

  Args:
    people: every detection of one image.
    threshold: the lowest score kept.
    nms_iou: a detection overlapping a kept, better-scoring one by more than
      this IoU is dropped.
    max_people: at most this many are returned.

  Returns:
    The kept people, by decreasing score.
  """
  candidates = sorted(
      (p for p in people if p.score >= threshold and p.box[2] > 0 and
       p.box[3] > 0), key=lambda p: -p.score)
  kept = []
  for person in candidates:
    if len(kept) == max_people:
      break
    if kept and box_iou([person.box], [k.box for k in kept]).max() > nms_iou:
      continue
    kept.append(person)
  return kept


def person_crop(person: Person, image_shape,
                keypoint_threshold: float) -> crops_lib.Crop:
  """The network's crop of one person (rule in the module docstring).

  Raises:
    DemoInputError: a box with no area or outside the image.
  """
  height, width = image_shape[:2]
  if person.keypoints is not None:
    kp = np.asarray(person.keypoints, np.float64)
    window = crops_lib.points_window(kp[kp[:, 2] > keypoint_threshold, :2])
    if window is not None:
      (cx, cy), scale = window
      # A centre outside the image means keypoints gone astray: the box.
      if 0 <= cx < width and 0 <= cy < height:
        return crops_lib.Crop(center=(cx, cy), scale=scale,
                              source='detector keypoints',
                              box=tuple(person.box), score=person.score)
  crop = crops_lib.crop_from_bbox(person.box, image_shape)
  return dataclasses.replace(crop, source='detector box',
                             score=person.score)


def people_finder(detector: Callable, config: configs.PeopleConfig
                  ) -> Callable:
  """image -> the crops of the people the detector finds in it.

  Args:
    detector: callable(uint8 RGB [H, W, 3]) -> list of Person
      (hmr_tf.inference.detectors.load_detector).
    config: the threshold, NMS and count limit, the keypoint threshold.

  Returns:
    callable(image) -> list of Crop, best score first; empty when nobody
    is found.
  """
  def find(image: np.ndarray) -> List[crops_lib.Crop]:
    kept = select_people(detector(image), config.threshold, config.nms_iou,
                         config.max_people)
    out = []
    for person in kept:
      try:
        out.append(person_crop(person, image.shape,
                               config.keypoint_threshold))
      except crops_lib.DemoInputError as e:
        logging.info('detection skipped: %s', e)
    return out
  return find
