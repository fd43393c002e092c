"""The built-in HOG people detector: its features by hand, on a picture."""

import numpy as np
import pytest

from hmr_tf import configs
from hmr_tf.inference import hog_detector as hog
from hmr_tf.inference import people


def _step(vertical: bool) -> np.ndarray:
  """A 16 x 24 image, 0 left of (above) column (row) 12, 100 beyond."""
  image = np.zeros((16, 24), np.float32)
  if vertical:
    image[:, 12:] = 100
  else:
    image = np.zeros((24, 16), np.float32)
    image[12:] = 100
  return image


def test_cell_histograms_by_hand():
  # A vertical edge: the centred difference is 100 at columns 11 and 12,
  # angle 0, half-way between the bins centred at 170 and 10 degrees: each
  # cell of columns 8..15 gets 8 rows x 2 columns x 100, half in bin 8,
  # half in bin 0.
  cells = hog.cell_histograms(_step(vertical=True))
  assert cells.shape == (2, 3, 9)
  expected = np.zeros((2, 3, 9))
  expected[:, 1, 0] = expected[:, 1, 8] = 800
  np.testing.assert_allclose(cells, expected, atol=1e-3)
  # A horizontal edge: 90 degrees, the centre of bin 4.
  cells = hog.cell_histograms(_step(vertical=False))
  expected = np.zeros((3, 2, 9))
  expected[1, :, 4] = 1600
  np.testing.assert_allclose(cells, expected, atol=1e-3)
  # Colour: the channel with the strongest gradient counts.
  rgb = np.stack([_step(True) * 0.5, _step(True), np.zeros((16, 24))], -1)
  np.testing.assert_allclose(hog.cell_histograms(rgb),
                             hog.cell_histograms(_step(True)), atol=1e-3)


def test_block_normalisation_is_l2_hys():
  cells = np.zeros((2, 2, 9))
  cells[0, 0, 3] = 5.0  # one component: 1 after L2, clipped to 0.2, 1 again
  cells[1, 1, :] = 1.0  # nine equal components: 1/sqrt(10) each before clip
  (block,) = hog.block_features(cells).reshape(1, 36)
  # L2: 5 -> 5/sqrt(34), 1 -> 1/sqrt(34); clip at 0.2; L2 again.
  first = np.minimum(np.r_[5.0, np.ones(9)] / np.sqrt(34), 0.2)
  first /= np.linalg.norm(first)
  np.testing.assert_allclose(block[3], first[0], rtol=1e-5)
  np.testing.assert_allclose(block[27:], first[1:], rtol=1e-5)
  assert np.linalg.norm(block) == pytest.approx(1.0, rel=1e-5)


def test_score_map_equals_each_windows_descriptor():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 255, (160, 96, 3)).astype(np.uint8)
  # The window alone sees no neighbour at its border (its outer pixels'
  # gradients differ): weigh only the blocks of its inner cells.
  weights = rng.normal(size=(15, 7, 36))
  weights[[0, -1]] = 0
  weights[:, [0, -1]] = 0
  weights, bias = weights.reshape(-1), 0.3
  scores = hog.score_map(hog.block_features(hog.cell_histograms(image)),
                         weights, bias)
  assert scores.shape == (160 // 8 - 15, 96 // 8 - 7)
  for r, c in ((0, 0), (2, 3), (4, 4)):
    window = image[8 * r:8 * r + 128, 8 * c:8 * c + 64]
    expected = hog.window_features(window) @ weights + bias
    assert scores[r, c] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # renders the picture (TensorFlow SMPL): ~20 s
def test_finds_both_people_of_the_readme_picture():
  from hmr_tf.smpl import body_models  # pylint: disable=g-import-not-at-top
  from src.tools import render_detector_picture  # pylint: disable=g-import-not-at-top
  body = body_models.resolve_body_model('', 'makehuman', 0)
  image, boxes = render_detector_picture.two_people_image(body, seed=1)
  config = configs.PeopleConfig(detector='hog')
  found = people.select_people(hog.HogDetector()(image), config.threshold,
                               config.nms_iou, config.max_people)
  # Its two best detections lie on the two people (it is weak: it also
  # fires on heads, and its boxes are shorter than the bodies).
  best = found[:2]
  for box in boxes:
    inside = [p for p in best
              if box[0] <= p.box[0] + p.box[2] / 2 <= box[0] + box[2] and
              box[1] <= p.box[1] + p.box[3] / 2 <= box[1] + box[3]]
    assert len(inside) == 1, (box, [p.box for p in found])
