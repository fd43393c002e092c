r"""Trains the built-in HOG people detector's weights (`--detector=hog`).

  python -m src.tools.train_hog_detector --data_dir=runs/quickstart/data \
      --output=hmr_tf/assets/hog_people.npz

Positives: the people of the synthetic 3D training images (the quickstart's
dataset: the embedded MakeHuman-derived body coloured by part, upright,
over random backgrounds; `python -m hmr_tf.main
--flagfile=src/flags/quickstart.flags --mode=data` writes it), each cut so
that the box of its visible keypoints stands in the central 96 of a
64 x 128 window (jittered by a few pixels and a few percent), and their
mirror images. Negatives: windows of the synthetic data's random
backgrounds at random scales, windows of the same images with the person
too far off centre or at the wrong size (so that the detector localises),
then the false detections the first model makes on backgrounds (one round
of hard negatives, as Dalal and Triggs did). The model is logistic
regression on the HOG descriptor (hmr_tf.inference.hog_detector), fitted
by full-batch gradient descent with an L2 penalty; the tool prints its
accuracy on held-out samples. Deterministic for a seed and a dataset.
"""

import glob
import os

from absl import app
from absl import flags
from absl import logging
import cv2
import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.inference import hog_detector as hog
from hmr_tf.synthetic import scene

FLAGS = flags.FLAGS
_HEIGHT, _WIDTH = hog.WINDOW


def _people(data_dir, num):
  """[(image uint8 RGB, (x0, y0, x1, y1) box of its visible keypoints)]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hmr_tf.data import decoder  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(data_dir, 'synthetic_3d',
                                        'train_*.tfrecord')))
  if not files:
    raise FileNotFoundError(f'{data_dir}/synthetic_3d: no train shards')
  out = []
  for record in tf.data.TFRecordDataset(files).take(num):
    example = decoder.decode_image_example(record)
    kp = example['keypoints2d'].numpy()
    kp = kp[kp[:, 2] > 0, :2]
    if len(kp) < 10:
      continue
    out.append((example['image'].numpy(), (*kp.min(0), *kp.max(0))))
  return out


def _cut(image, box, height, shift=(0.0, 0.0)):
  """The 64 x 128 window where `box` is `height` px tall, centred + shift."""
  x0, y0, x1, y1 = box
  factor = height / max(y1 - y0, 1.0)
  px, py, pw, ph = hog.PERSON_BOX
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  tx = px + pw / 2 - 0.5 + shift[0] - factor * cx
  ty = py + ph / 2 - 0.5 + shift[1] - factor * cy
  matrix = np.array([[factor, 0, tx], [0, factor, ty]])
  return cv2.warpAffine(image, matrix, (_WIDTH, _HEIGHT),
                        flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)


def _positives(rng, people):
  out = []
  for image, box in people:
    window = _cut(image, box, hog.PERSON_BOX[3] * rng.uniform(0.94, 1.06),
                  (rng.uniform(-2, 2), rng.uniform(-3, 3)))
    out.append(hog.window_features(window))
    out.append(hog.window_features(window[:, ::-1]))
  return np.stack(out)


def _misplaced(rng, people):
  """Windows with the person off centre or at the wrong size: negatives."""
  out = []
  for image, box in people:
    if rng.random() < 0.5:
      tall = hog.PERSON_BOX[3] * rng.choice([rng.uniform(0.4, 0.65),
                                             rng.uniform(1.6, 2.5)])
      shift = (0.0, 0.0)
    else:
      tall = hog.PERSON_BOX[3] * rng.uniform(0.9, 1.1)
      shift = rng.choice([-1, 1], 2) * rng.uniform([24, 40], [48, 80])
    out.append(hog.window_features(_cut(image, box, tall, shift)))
  return np.stack(out)


def _background(rng, height, width):
  size = max(height, width)
  image = scene.random_background(rng, size, shapes=rng.random() < 0.7)
  return image[:height, :width]


def _negatives(rng, num):
  out = []
  while len(out) < num:
    scale = rng.uniform(1.0, 4.0)
    image = _background(rng, int(_HEIGHT * scale) + 8,
                        int(_WIDTH * scale) + 8)
    window = cv2.resize(image, (_WIDTH, _HEIGHT),
                        interpolation=cv2.INTER_AREA)
    out.append(hog.window_features(window))
  return np.stack(out)


def _fit(x, y, l2, steps=600, rate=1.0):
  """Logistic regression by gradient descent: (weights, bias)."""
  w = np.zeros(x.shape[1])
  b = 0.0
  # Balance the classes: each gets half the loss.
  sample_weight = np.where(y > 0, 0.5 / y.sum(), 0.5 / (1 - y).sum())
  for _ in range(steps):
    p = 1 / (1 + np.exp(-(x @ w + b)))
    g = (p - y) * sample_weight
    w -= rate * (x.T @ g + l2 * w)
    b -= rate * g.sum()
  return w, b


def _hard_negatives(rng, detector, num_images, limit):
  out = []
  for _ in range(num_images):
    image = _background(rng, 256, 256)
    for person in detector(image):
      if person.score > 0.3:
        x, y, w, h = person.box
        # The window around the detected box, back at 64 x 128.
        x0 = x - hog.PERSON_BOX[0] * w / hog.PERSON_BOX[2]
        y0 = y - hog.PERSON_BOX[1] * h / hog.PERSON_BOX[3]
        sx, sy = w / hog.PERSON_BOX[2], h / hog.PERSON_BOX[3]
        matrix = np.array([[sx, 0, x0], [0, sy, y0]])
        window = cv2.warpAffine(image, matrix, (_WIDTH, _HEIGHT),
                                flags=cv2.WARP_INVERSE_MAP |
                                cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out.append(hog.window_features(window))
    if len(out) >= limit:
      break
  return np.stack(out[:limit]) if out else np.zeros((0, 3780))


def _accuracy(w, b, x, y):
  return float(np.mean(((x @ w + b) > 0) == (y > 0)))


def main(argv):
  del argv
  rng = np.random.default_rng(FLAGS.seed)
  people = _people(FLAGS.data_dir, FLAGS.num_people)
  split = int(0.85 * len(people))
  logging.info('%d people', len(people))
  pos = _positives(rng, people)
  misplaced = _misplaced(rng, people)
  neg = np.concatenate([_negatives(rng, FLAGS.num_negatives), misplaced])
  pos_train, pos_test = pos[:2 * split], pos[2 * split:]
  cut = int(0.85 * len(neg))
  order = rng.permutation(len(neg))
  neg_train, neg_test = neg[order[:cut]], neg[order[cut:]]
  x = np.concatenate([pos_train, neg_train])
  y = np.concatenate([np.ones(len(pos_train)), np.zeros(len(neg_train))])
  w, b = _fit(x, y, FLAGS.l2)
  detector = hog.HogDetector.__new__(hog.HogDetector)
  detector.weights, detector.bias = w, b
  hard = _hard_negatives(rng, detector, FLAGS.hard_images, limit=3000)
  logging.info('%d hard negatives', len(hard))
  x = np.concatenate([x, hard])
  y = np.concatenate([y, np.zeros(len(hard))])
  w, b = _fit(x, y, FLAGS.l2)
  x_test = np.concatenate([pos_test, neg_test])
  y_test = np.concatenate([np.ones(len(pos_test)), np.zeros(len(neg_test))])
  print(f'held-out accuracy {_accuracy(w, b, x_test, y_test):.3f} '
        f'(positives {_accuracy(w, b, pos_test, np.ones(len(pos_test))):.3f}'
        f', negatives '
        f'{_accuracy(w, b, neg_test, np.zeros(len(neg_test))):.3f})')
  with atomic_io.atomic_path(FLAGS.output) as tmp:
    np.savez(tmp, weights=w.astype(np.float32), bias=np.float32(b),
             seed=FLAGS.seed, num_people=FLAGS.num_people)


if __name__ == '__main__':
  flags.DEFINE_string('output', 'hmr_tf/assets/hog_people.npz',
                      'Where the weights go.')
  flags.DEFINE_integer('seed', 0, 'Random seed.')
  flags.DEFINE_string('data_dir', 'runs/quickstart/data',
                      'The synthetic dataset (its synthetic_3d train '
                      'shards).')
  flags.DEFINE_integer('num_people', 1500, 'People (positives).')
  flags.DEFINE_integer('num_negatives', 8000, 'Random background windows.')
  flags.DEFINE_integer('hard_images', 300, 'Backgrounds searched for hard '
                       'negatives.')
  flags.DEFINE_float('l2', 1e-4, 'L2 penalty of the weights.')
  app.run(main)
