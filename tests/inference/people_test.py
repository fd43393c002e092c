"""Finding people: the two SavedModel signatures, selection, crops, tracking.

The detectors are tiny SavedModels built here with exactly the public
signatures (tests/support/detector_models.py); the crops they lead to are
compared with crops computed by hand from the picture's bright rectangle.
"""

import math
import os

import numpy as np
import pytest

import detector_models  # tests/support/
from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.inference import detectors
from hmr_tf.inference import people
from hmr_tf.inference import sources
from hmr_tf.inference import tracking

# A 128 x 72 picture whose bright rectangle (the tiny detectors' person 0)
# covers columns 32..63 and rows 16..47: the box (x, y, w, h) = (32, 16,
# 32, 32) in edge coordinates.
HEIGHT, WIDTH = 72, 128
BOX = (32.0, 16.0, 32.0, 32.0)
# The box rule: centre (x + w / 2 - 0.5, y + h / 2 - 0.5), scale 150 / 32.
BOX_CENTER = (47.5, 31.5)
# The keypoint rule: keypoints at the rectangle's corners, as pixel centres
# (31.5, 15.5) and (63.5, 47.5): the same centre, scale 150 / the diagonal.
KEYPOINT_SCALE = 150 / math.hypot(32, 32)
# The object-detection model's constant rows (normalised ymin, xmin, ymax,
# xmax): a second person (x 96..112, y 18..72: centre (103.5, 44.5), scale
# 150 / 54), a car, person 0 found again a little to the right (IoU 30/34),
# and a person below the threshold.
EXTRA_BOXES = [(0.25, 0.75, 1.0, 0.875), (0.0, 0.0, 1.0, 1.0),
               (16 / 72, 34 / 128, 48 / 72, 66 / 128), (0.5, 0.0, 1.0, 0.2)]
EXTRA_CLASSES = [1, 3, 1, 1]
EXTRA_SCORES = [0.9, 0.99, 0.6, 0.1]


def _picture():
  image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
  image[16:48, 32:64] = 230
  return image


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('detectors')
  return {
      'od': detector_models.save_object_detection(
          str(tmp / 'od'), EXTRA_BOXES, EXTRA_CLASSES, EXTRA_SCORES),
      'od_keypoints': detector_models.save_object_detection(
          str(tmp / 'od_kp'), EXTRA_BOXES, EXTRA_CLASSES, EXTRA_SCORES,
          keypoints=True),
      'movenet': detector_models.save_movenet(str(tmp / 'movenet')),
      'other': detector_models.save_other(str(tmp / 'other')),
      'float_input': detector_models.save_object_detection(
          str(tmp / 'float'), input_dtype='float32'),
  }


def _find(path, **overrides):
  config = configs.PeopleConfig(detector=path, **overrides)
  return people.people_finder(detectors.load_detector(path, config),
                              config)(_picture())


def test_object_detection_signature_box_crops(models):
  crops = _find(models['od'])
  # The car, the duplicate, the weak person and the padding rows are gone.
  assert [c.source for c in crops] == ['detector box'] * 2
  assert crops[0].box == pytest.approx(BOX)
  assert crops[0].center == pytest.approx(BOX_CENTER)
  assert crops[0].scale == pytest.approx(150 / 32)
  assert crops[0].score == pytest.approx(0.95)
  assert crops[1].box == pytest.approx((96, 18, 16, 54))
  assert crops[1].center == pytest.approx((103.5, 44.5))
  assert crops[1].scale == pytest.approx(150 / 54)
  # At most one person: the best.
  (best,) = _find(models['od'], max_people=1)
  assert best.box == pytest.approx(BOX)
  # A lower threshold keeps the weak person; a looser NMS the duplicate.
  assert len(_find(models['od'], threshold=0.05)) == 3
  assert len(_find(models['od'], nms_iou=0.95)) == 3


def test_object_detection_keypoints_set_the_crop(models):
  crops = _find(models['od_keypoints'])
  assert crops[0].source == 'detector keypoints'
  assert crops[0].center == pytest.approx(BOX_CENTER)
  assert crops[0].scale == pytest.approx(KEYPOINT_SCALE)
  assert crops[0].box == pytest.approx(BOX)
  # The second person's keypoints all score 0: the box rule.
  assert crops[1].source == 'detector box'
  assert crops[1].scale == pytest.approx(150 / 54)


def test_movenet_signature(models):
  # 128 x 72 -> 256 x 144 (longer side 256), padded to 256 x 160: the
  # coordinates come back through the padding and the resize.
  crops = _find(models['movenet'])
  assert len(crops) == 1  # the five rows at 0.05 are below 0.3
  assert crops[0].source == 'detector keypoints'
  assert crops[0].center == pytest.approx(BOX_CENTER, abs=1e-4)
  assert crops[0].scale == pytest.approx(KEYPOINT_SCALE, rel=1e-5)
  assert crops[0].box == pytest.approx(BOX, abs=1e-4)
  assert crops[0].score == pytest.approx(0.8)
  batch, (h, w) = detectors.movenet_input(_picture(), 256)
  assert batch.shape == (1, 160, 256, 3) and batch.dtype == np.int32
  assert (h, w) == (144, 256)
  assert not batch[0, 144:].any()


def test_bad_detectors_are_one_line(models, tmp_path):
  with pytest.raises(sources.DemoInputError,
                     match='neither the TF2 Object Detection API.*logits'):
    _find(models['other'])
  with pytest.raises(sources.DemoInputError, match='expected uint8'):
    _find(models['float_input'])
  garbage = tmp_path / 'garbage'
  garbage.mkdir()
  (garbage / 'saved_model.pb').write_bytes(b'not a protocol buffer')
  with pytest.raises(sources.DemoInputError,
                     match=f'--detector {garbage}: TensorFlow cannot load'):
    _find(str(garbage))
  with pytest.raises(sources.DemoInputError, match='no saved_model.pb'):
    _find(str(tmp_path))
  with pytest.raises(errors.UsageError, match='no such folder'):
    _find(str(tmp_path / 'missing'))


# ---------------------------------------------------------------------------
# Selection and tracking (NumPy only).


def test_box_iou_and_selection():
  iou = people.box_iou([(0, 0, 10, 10)], [(5, 0, 10, 10), (20, 20, 5, 5),
                                          (0, 0, 10, 10)])
  np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])
  found = [people.Person((0, 0, 10, 10), 0.5),
           people.Person((5, 0, 10, 10), 0.9),  # IoU 1/3 with the first
           people.Person((1, 0, 10, 10), 0.7),  # IoU 0.82 with the first
           people.Person((50, 50, 10, 10), 0.2)]
  kept = people.select_people(found, threshold=0.3, nms_iou=0.5,
                              max_people=10)
  assert [p.score for p in kept] == [0.9, 0.7]  # 0.5 overlaps 0.7
  kept = people.select_people(found, threshold=0.3, nms_iou=0.3,
                              max_people=10)
  assert [p.score for p in kept] == [0.9]


def _walk(start_x, step, frame, y=0.0):
  return (start_x + step * frame, y, 40.0, 100.0)


def test_tracker_keeps_ids_of_crossing_people():
  tracker = tracking.BoxTracker(configs.TrackingConfig())
  rng = np.random.default_rng(0)
  for frame in range(21):
    # A walks right from x = 0, B left from x = 200, 10 px a frame: their
    # boxes overlap from frame 7 to 13 and meet at frame 10.
    boxes = {'A': _walk(0, 10, frame), 'B': _walk(200, -10, frame, y=8.0)}
    order = list(rng.permutation(['A', 'B']))
    ids = tracker.update(frame, [boxes[k] for k in order])
    assert dict(zip(order, ids)) == {'A': 0, 'B': 1}, frame


def test_tracker_survives_missed_frames_then_ends():
  config = configs.TrackingConfig(max_missed=3)
  tracker = tracking.BoxTracker(config)
  assert tracker.update(0, [(0, 0, 40, 100)]) == [0]
  assert tracker.update(1, [(2, 0, 40, 100)]) == [0]
  # Missed in frames 2..4 (three frames): the same person again.
  assert tracker.update(5, [(10, 0, 40, 100)]) == [0]
  # A second person appears: a new id, the first keeps theirs.
  assert tracker.update(6, [(300, 0, 40, 100), (12, 0, 40, 100)]) == [1, 0]
  # Both missed in frames 7..10 (four frames): both tracks end; ids are
  # never reused.
  assert tracker.update(11, [(14, 0, 40, 100), (300, 0, 40, 100)]) == [2, 3]
  # No people in a frame: nothing to assign.
  assert tracker.update(12, []) == []
