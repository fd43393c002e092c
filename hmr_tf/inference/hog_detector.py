"""The built-in people detector (`--detector=hog`): HOG and a linear model.

A weak fallback that needs no download. OpenCV 5's wheel no longer ships
its HOG people detector (it moved to the contrib modules), so hmr_tf has
its own, after Dalal and Triggs (CVPR 2005): a 64 x 128 window of
histograms of oriented gradients (8 x 8-pixel cells, 9 unsigned
orientation bins, the strongest colour channel's gradient, 2 x 2-cell
blocks every cell, L2-Hys normalised: 7 x 15 blocks x 36 = 3780 numbers),
scored by logistic regression, slid every 8 pixels over an image pyramid
(factor 1.2, from twice the image's size down). Its weights
(`hmr_tf/assets/hog_people.npz`) were trained by
`python -m src.tools.train_hog_detector` on the people of the quickstart's
synthetic images (the embedded MakeHuman-derived body coloured by part,
upright, over random backgrounds): it finds upright, whole, unoccluded
bodies at least ~50 px tall in pictures like those, and misses or
misplaces many people in real photographs. Use a detector SavedModel for
those (README, "Finding people").

A window's box is its central 32 x 96 pixels, where the training people
stand (their height spans 96 of the window's 128 pixels), mapped back to
the image. A person fires many windows at neighbouring places and scales:
they are grouped as OpenCV's HOG detector groups them, in spirit. The best
window (by the model's logit) seeds a group that takes every window whose
box lies mostly (over half its area) inside the seed's or around it; the
group's box is the logit-weighted mean of its members', its score the
seed's probability; a group of fewer than MIN_GROUP windows is dropped.
"""

import os
from typing import List

import cv2
import numpy as np

from hmr_tf.inference import people as people_lib

WINDOW = (128, 64)  # (height, width) in pixels
CELL = 8
BINS = 9
BLOCK = 2  # cells a block side
# Where the person stands in a window: rows 16..112, columns 16..48.
PERSON_BOX = (16, 16, 32, 96)  # x, y, w, h in window pixels
PYRAMID_FACTOR = 1.2
MAX_UPSCALE = 2.0
_L2HYS_CLIP = 0.2
MIN_GROUP = 20  # windows a detection needs (a person fires many)
_MIN_LOGIT = 0.0  # windows below probability 0.5 never join a group
WEIGHTS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                            'assets', 'hog_people.npz')


def cell_histograms(image: np.ndarray) -> np.ndarray:
  """Orientation histograms of the image's 8 x 8 cells.

  Args:
    image: [H, W, 3] or [H, W], any numeric type.

  Returns:
    [H // 8, W // 8, 9] gradient magnitudes summed by unsigned orientation
    (0..180 degrees, 20 degrees a bin, each pixel split linearly between
    its two nearest bin centres); the gradient is the centred difference
    [-1, 0, 1] of the colour channel where it is strongest.
  """
  image = np.asarray(image, np.float32)
  if image.ndim == 2:
    image = image[..., None]
  kernel = np.array([[-1.0, 0.0, 1.0]], np.float32)
  gx = np.stack([cv2.filter2D(image[..., c], -1, kernel,
                              borderType=cv2.BORDER_REPLICATE)
                 for c in range(image.shape[-1])], -1)
  gy = np.stack([cv2.filter2D(image[..., c], -1, kernel.T,
                              borderType=cv2.BORDER_REPLICATE)
                 for c in range(image.shape[-1])], -1)
  magnitude = np.hypot(gx, gy)
  strongest = np.argmax(magnitude, axis=-1)[..., None]
  magnitude = np.take_along_axis(magnitude, strongest, -1)[..., 0]
  gx = np.take_along_axis(gx, strongest, -1)[..., 0]
  gy = np.take_along_axis(gy, strongest, -1)[..., 0]
  angle = np.degrees(np.arctan2(gy, gx)) % 180.0
  position = angle / (180.0 / BINS) - 0.5
  low = np.floor(position)
  upper_share = position - low
  low = low.astype(np.int64) % BINS
  rows, cols = image.shape[0] // CELL, image.shape[1] // CELL
  hist = np.zeros((rows * CELL, cols * CELL, BINS), np.float32)
  crop = (slice(0, rows * CELL), slice(0, cols * CELL))
  yy, xx = np.indices((rows * CELL, cols * CELL))
  hist[yy, xx, low[crop]] += magnitude[crop] * (1 - upper_share[crop])
  hist[yy, xx, (low[crop] + 1) % BINS] += magnitude[crop] * upper_share[crop]
  return hist.reshape(rows, CELL, cols, CELL, BINS).sum(axis=(1, 3))


def block_features(cells: np.ndarray) -> np.ndarray:
  """[R - 1, C - 1, 36] L2-Hys normalised 2 x 2-cell blocks of [R, C, 9]."""
  blocks = np.concatenate([cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1],
                           cells[1:, 1:]], axis=-1)
  blocks = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + 1e-6)
  blocks = np.minimum(blocks, _L2HYS_CLIP)
  return blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + 1e-6)


def window_blocks() -> tuple:
  """(rows, columns) of blocks in a window: (15, 7)."""
  return WINDOW[0] // CELL - 1, WINDOW[1] // CELL - 1


def window_features(window: np.ndarray) -> np.ndarray:
  """[3780] the HOG descriptor of one 128 x 64 window."""
  return block_features(cell_histograms(window)).reshape(-1)


def score_map(blocks: np.ndarray, weights: np.ndarray,
              bias: float) -> np.ndarray:
  """The linear score of every window position of a block grid.

  Args:
    blocks: [R, C, 36] an image's block features.
    weights: [3780] the window's weights (rows, then columns, then the 36).
    bias: the model's bias.

  Returns:
    [R - 14, C - 6] w · features + b of the window whose top-left block is
    at each position (empty when the image is smaller than a window).
  """
  wr, wc = window_blocks()
  rows, cols = blocks.shape[0] - wr + 1, blocks.shape[1] - wc + 1
  if rows <= 0 or cols <= 0:
    return np.zeros((0, 0))
  w = weights.reshape(wr, wc, -1)
  scores = np.full((rows, cols), float(bias))
  for a in range(wr):
    for b in range(wc):
      scores += blocks[a:a + rows, b:b + cols] @ w[a, b]
  return scores


class HogDetector:
  """callable(uint8 RGB [H, W, 3]) -> every window scoring above 1%.

  Args:
    weights_file: the .npz with 'weights' [3780] and 'bias' [].
  """

  def __init__(self, weights_file: str = WEIGHTS_FILE):
    with np.load(weights_file) as data:
      self.weights = np.asarray(data['weights'], np.float64)
      self.bias = float(data['bias'])

  def __call__(self, image: np.ndarray) -> List[people_lib.Person]:
    boxes, logits = self.windows(image)
    return group_windows(boxes, logits)

  def windows(self, image: np.ndarray):
    """([N, 4] boxes (x, y, w, h), [N] logits) of the windows above 0.5."""
    height, width = image.shape[:2]
    boxes, logits_out = [], []
    scale = MAX_UPSCALE
    while height * scale >= WINDOW[0] and width * scale >= WINDOW[1]:
      size = (int(round(width * scale)), int(round(height * scale)))
      scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
      logits = score_map(block_features(cell_histograms(scaled)),
                         self.weights, self.bias)
      for r, c in zip(*np.nonzero(logits > _MIN_LOGIT)):
        x, y, w, h = PERSON_BOX
        boxes.append(((c * CELL + x) / size[0] * width,
                      (r * CELL + y) / size[1] * height,
                      w / size[0] * width, h / size[1] * height))
        logits_out.append(logits[r, c])
      scale /= PYRAMID_FACTOR
    return np.reshape(boxes, (-1, 4)), np.asarray(logits_out)


def group_windows(boxes: np.ndarray, logits: np.ndarray,
                  min_group: int = MIN_GROUP) -> List[people_lib.Person]:
  """One Person per group of overlapping windows (module docstring).

  Args:
    boxes: [N, 4] window boxes (x, y, w, h).
    logits: [N] their logits.
    min_group: the fewest windows a kept group has.

  Returns:
    The groups' people, best first.
  """
  order = np.argsort(-logits)
  boxes, logits = boxes[order], logits[order]
  free = np.ones(len(boxes), bool)
  area = boxes[:, 2] * boxes[:, 3]
  found = []
  for i in range(len(boxes)):
    if not free[i]:
      continue
    lo = np.maximum(boxes[i, :2], boxes[:, :2])
    hi = np.minimum(boxes[i, :2] + boxes[i, 2:], boxes[:, :2] + boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    members = free & (inter > 0.5 * np.minimum(area, area[i]))
    free &= ~members
    if members.sum() < min_group:
      continue
    weights = logits[members]
    box = (boxes[members] * weights[:, None]).sum(0) / weights.sum()
    found.append(people_lib.Person(
        box=tuple(float(v) for v in box),
        score=float(1 / (1 + np.exp(-logits[i])))))
  return found
