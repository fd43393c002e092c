"""COCO person keypoints (2014) to TFRecords.

Input (as distributed): `person_keypoints_{train,val}2014.json` (in
`<input_dir>/annotations` or `<input_dir>`) and the images in
`<input_dir>/images/{train,val}2014` or `<input_dir>/{train,val}2014`.
Pairing: each annotation's `image_id` is the `id` of an entry of `images`,
whose `file_name` is the image (COCO's data format; the original converter
goes through the COCO API's `loadImgs(image_id)`, the same lookup).

As in the original converter: COCO's 17 keypoints map to the LSP joints
where they exist (COCO has no neck or head top: those stay missing) and the
nose, eyes and ears become the 5 face points; people are dropped when fewer
than 6 keypoints are labelled visible, when the longer side of their box is
under 60 px, or when only the face and shoulders are labelled. The image is
scaled so the person is ~150 px tall and a 400x400 window around the person
is stored. Every labelled keypoint (COCO v = 1 or 2) is stored as visible.

  python -m datasets.coco --input_dir=.../coco --output_dir=... \
      [--splits=train,val]
"""

import collections
import json
import os
from typing import NamedTuple, Optional, Sequence

from absl import flags
import numpy as np

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib

FLAGS = flags.FLAGS
DATASET = 'coco'
MARGIN = 200  # Half the side of the stored window (original: 400x400).
MIN_VISIBLE = 6  # Keypoints labelled visible (v = 2).
MIN_BOX_SIDE = 60  # Pixels, the longer side of the person's box.
NUM_COCO_KEYPOINTS = 17
# COCO keypoint index of each LSP limb joint (R ankle .. L wrist); COCO:
# 0 nose, 1/2 L/R eye, 3/4 L/R ear, 5/6 L/R shoulder, 7/8 L/R elbow,
# 9/10 L/R wrist, 11/12 L/R hip, 13/14 L/R knee, 15/16 L/R ankle.
COCO_TO_LSP_LIMBS = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9)
# Face points in cocoplus order: nose, L eye, R eye, L ear, R ear.
COCO_FACE = (0, 1, 2, 3, 4)
# Keypoints other than the face and shoulders.
_BODY_WITHOUT_FACE_SHOULDERS = (16, 14, 12, 11, 13, 15, 10, 8, 7, 9)
_SPLIT_FILES = {'train': 'train2014', 'val': 'val2014'}


def coco_to_cocoplus(keypoints: np.ndarray) -> np.ndarray:
  """[17, 3] COCO (x, y, v) -> [19, 3] cocoplus (x, y, labelled 0/1)."""
  out = np.zeros((19, 3))
  out[:12] = keypoints[list(COCO_TO_LSP_LIMBS)]
  out[14:] = keypoints[list(COCO_FACE)]
  out[:, 2] = out[:, 2] > 0
  out[out[:, 2] == 0] = 0.0
  return out


def keep_person(keypoints: np.ndarray, box) -> Optional[str]:
  """None when the person is used, else the reason to drop it."""
  visible = keypoints[:, 2] == 2
  if visible.sum() < MIN_VISIBLE:
    return f'fewer than {MIN_VISIBLE} visible keypoints'
  if max(box[2], box[3]) < MIN_BOX_SIDE:
    return f'box side under {MIN_BOX_SIDE} px'
  if not np.any(keypoints[list(_BODY_WITHOUT_FACE_SHOULDERS), 2] > 0):
    return 'only face and shoulders labelled'
  return None


def _read_annotation(path: str):
  common.require_file(path, 'COCO keypoint annotation file')
  try:
    with open(path, 'r', encoding='utf-8') as f:
      data = json.load(f)
  except (ValueError, OSError) as e:
    raise ValueError(f'{path}: cannot read the JSON file ({e})') from e
  if not isinstance(data, dict):
    raise ValueError(f'{path}: expected a JSON object with images and '
                     f'annotations, got {type(data).__name__}')
  for key in ('images', 'annotations'):
    if not isinstance(data.get(key), list):
      raise ValueError(f'{path}: expected a list under {key!r}')
  for i, image in enumerate(data['images']):
    if not (isinstance(image, dict) and 'id' in image and
            'file_name' in image):
      raise ValueError(f'{path}: images[{i}]: expected an object with id '
                       'and file_name')
  for i, ann in enumerate(data['annotations']):
    if not isinstance(ann, dict):
      raise ValueError(f'{path}: annotations[{i}]: expected an object, got '
                       f'{type(ann).__name__}')
  return data


def _parse_annotation(ann, path: str, record: str):
  """(keypoints [17, 3], box [4]) of one annotation, checked."""
  keypoints = common.check_array(ann.get('keypoints'),
                                 [3 * NUM_COCO_KEYPOINTS], path, record,
                                 'keypoints').reshape(NUM_COCO_KEYPOINTS, 3)
  if not np.all(np.isin(keypoints[:, 2], (0, 1, 2))):
    raise common.BadRecordError(
        path, record, f'keypoint visibility must be 0, 1 or 2, got '
        f'{np.unique(keypoints[:, 2])}')
  box = common.check_array(ann.get('bbox'), [4], path, record, 'bbox')
  return keypoints, box


class SplitInput(NamedTuple):
  """One split's checked input: its annotation file, parsed, and images."""
  split: str
  path: str
  data: dict
  image_dir: str


def find_split(input_dir: str, split: str) -> SplitInput:
  """Finds and reads one split's annotation file and its image folder.

  Raises:
    FileNotFoundError: naming what is missing.
    ValueError: naming the annotation file when it is not COCO JSON.
  """
  name = f'person_keypoints_{_SPLIT_FILES[split]}.json'
  path = common.first_existing(
      [os.path.join(input_dir, 'annotations', name),
       os.path.join(input_dir, name)], f'COCO annotation file {name}')
  data = _read_annotation(path)
  image_dirs = [os.path.join(input_dir, 'images', _SPLIT_FILES[split]),
                os.path.join(input_dir, _SPLIT_FILES[split])]
  image_dir = next((d for d in image_dirs if os.path.isdir(d)), None)
  if image_dir is None:
    raise FileNotFoundError(f'COCO {split} image folder not found; looked '
                            'for: ' + ', '.join(image_dirs))
  return SplitInput(split, path, data, image_dir)


def convert_split(inputs: SplitInput,
                  writer: writer_lib.ShardedWriter) -> None:
  """Converts one split (train or val), already read, into `writer`."""
  split, path, data, image_dir = inputs
  images = {im['id']: im for im in data['images']}
  by_image = collections.defaultdict(list)
  writer.add_split(split)
  for index, ann in enumerate(data['annotations']):
    if ann.get('category_id', 1) != 1 or ann.get('iscrowd', 0):
      continue
    record = f'annotations[{index}] (id {ann.get("id")})'
    with writer.guard(split, path, record):
      if ann.get('image_id') not in images:
        raise common.BadRecordError(
            path, record, f'image_id {ann.get("image_id")} is not in images')
      by_image[ann['image_id']].append((index, ann))
  for image_id in sorted(by_image):
    file_name = images[image_id]['file_name']
    image = None
    for index, ann in by_image[image_id]:
      record = f'annotations[{index}] (id {ann.get("id")}, {file_name})'
      with writer.guard(split, path, record):
        keypoints, box = _parse_annotation(ann, path, record)
        reason = keep_person(keypoints, box)
        joints = coco_to_cocoplus(keypoints)
        scale = common.person_scale(joints) if reason is None else None
        if reason is None and scale is None:
          reason = 'cannot normalise the person scale'
        if reason is not None:
          writer.filtered(split, reason)
          continue
        if image is None:
          image = common.read_image(os.path.join(image_dir, file_name),
                                    record)
        crop = common.crop_person(image, joints, scale, MARGIN)
        writer.write(split, common.image_example(
            crop.image, crop.keypoints, crop.center, file_name, DATASET))


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            splits: Sequence[str] = ('train',)) -> dict:
  """Converts COCO keypoint splits ('train', 'val'). Returns the sidecar."""
  for split in splits:
    if split not in _SPLIT_FILES:
      raise ValueError(f'splits: unknown split {split!r}; expected one of '
                       f'{sorted(_SPLIT_FILES)}')
  # Every input is checked before the writer starts, and the writer keeps
  # the previous conversion until this one is complete.
  inputs = [find_split(input_dir, split) for split in splits]
  with writer_lib.ShardedWriter(output_dir, DATASET, schema.KIND_2D,
                                shard_size=shard_size,
                                skip_bad=skip_bad) as writer:
    for split_input in inputs:
      convert_split(split_input, writer)
  return writer.summary()


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad, splits=FLAGS.splits)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  flags.DEFINE_list('splits', ['train'],
                    'COCO splits to convert: train (train2014) and/or val '
                    '(val2014). The original converted train only.')
  common.run(main, 'datasets.coco')
