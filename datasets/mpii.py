"""MPII Human Pose to TFRecords (the training images' single persons).

Input (as distributed): the annotation file `mpii_human_pose_v1_u12_1.mat`
(in `<input_dir>`, `<input_dir>/annotations` or
`<input_dir>/mpii_human_pose_v1_u12_2`) holding the MATLAB struct `RELEASE`
(`annolist`, `img_train`, `single_person`), and the images in
`<input_dir>/images`. Pairing: each `annolist(i)` names its image
(`image.name`) and holds its people (`annorect`), and `single_person{i}`
lists the 1-based `annorect` indices of image i's single persons (the
annotation file's own structure, as the original converter reads it).
As in the original converter, every "single person" of
every training image becomes one record: MPII's 16 joints map to the 14 LSP
joints (upper neck -> neck, head top -> head top), every annotated joint
counts as visible, the image is scaled so the person is ~150 px tall and a
600x600 window around the person is stored.

  python -m datasets.mpii --input_dir=.../mpii --output_dir=...
"""

import os
from typing import List, Optional

from absl import flags
import numpy as np

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib

FLAGS = flags.FLAGS
DATASET = 'mpii'
ANNOTATION_NAME = 'mpii_human_pose_v1_u12_1.mat'
MARGIN = 300  # Half the side of the stored window (original: 600x600).
NUM_MPII_JOINTS = 16
# MPII joint id of each LSP joint: ankles, knees, hips, wrists, elbows,
# shoulders, then upper neck (8) as neck and head top (9).
MPII_TO_LSP = (0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9)


def _as_list(value) -> list:
  """MATLAB arrays that scipy squeezed to a scalar (or not) as a list."""
  if isinstance(value, np.ndarray):
    return list(value.ravel())
  return [value]


def _is_empty(value) -> bool:
  return isinstance(value, np.ndarray) and value.size == 0


def load_release(path: str):
  """Loads `RELEASE` and checks the fields the converter reads."""
  common.require_file(path, 'MPII annotation file')
  mat = common.load_mat(path, struct_as_record=False, squeeze_me=True)
  if 'RELEASE' not in mat:
    raise ValueError(f'{path}: no struct named RELEASE')
  release = mat['RELEASE']
  for field in ('annolist', 'img_train', 'single_person'):
    if field not in getattr(release, '_fieldnames', ()):
      raise ValueError(f'{path}: RELEASE has no field {field!r}')
  num = len(_as_list(release.annolist))
  for field in ('img_train', 'single_person'):
    size = len(_as_list(getattr(release, field)))
    if size != num:
      raise ValueError(f'{path}: RELEASE.{field}: expected {num} entries '
                       f'(one per annolist image), got {size}')
  return release


def read_joints(rect, path: str, record: str) -> Optional[np.ndarray]:
  """The annotated joints of one person as [14, 3] (x, y, annotated).

  Returns None when the person has fewer than two annotated points (the
  original skipped those too).
  """
  if 'annopoints' not in getattr(rect, '_fieldnames', ()):
    return None
  annopoints = rect.annopoints
  if _is_empty(annopoints):
    return None
  points = _as_list(annopoints.point)
  if len(points) < 2:
    return None
  by_id = {}
  for point in points:
    joint_id = int(np.asarray(point.id).item())
    if not 0 <= joint_id < NUM_MPII_JOINTS:
      raise common.BadRecordError(
          path, record, f'joint id {joint_id} out of range [0, '
          f'{NUM_MPII_JOINTS})')
    xy = np.array([np.asarray(point.x, np.float64).item(),
                   np.asarray(point.y, np.float64).item()])
    if not np.all(np.isfinite(xy)):
      raise common.BadRecordError(path, record,
                                  f'joint {joint_id}: non-finite position')
    by_id[joint_id] = xy
  joints = np.zeros((len(MPII_TO_LSP), 3))
  for lsp_index, mpii_id in enumerate(MPII_TO_LSP):
    if mpii_id in by_id:
      # Annotated means usable (the original ignored MPII's is_visible).
      joints[lsp_index] = [by_id[mpii_id][0], by_id[mpii_id][1], 1.0]
  return joints


def _people(anno, single, path: str, record: str) -> List:
  """(rect number, joints or None) of each single person of one image.

  Args:
    anno: the image's `annolist` entry.
    single: its `single_person` entry (1-based `annorect` indices).
    path: the annotation file (for errors).
    record: the image's record name (for errors).
  """
  ids = [] if _is_empty(single) else _as_list(single)
  rects = [] if _is_empty(anno.annorect) else _as_list(anno.annorect)
  people = []
  for rect_id in ids:
    rect_id = int(rect_id)
    if not 1 <= rect_id <= len(rects):
      raise common.BadRecordError(
          path, record, f'single_person index {rect_id} out of range '
          f'[1, {len(rects)}]')
    people.append(
        (rect_id, read_joints(rects[rect_id - 1], path,
                              f'{record} person {rect_id}')))
  return people


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            annotation_file: Optional[str] = None) -> dict:
  """Converts MPII's training single persons. Returns the sidecar dict.

  Args:
    input_dir: the MPII folder (annotation file and images/).
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed records instead of stopping.
    annotation_file: the .mat path; found under input_dir when None.
  """
  path = annotation_file or common.first_existing(
      [os.path.join(input_dir, d, ANNOTATION_NAME)
       for d in ('', 'annotations', 'mpii_human_pose_v1_u12_2')],
      'MPII annotation file')
  release = load_release(path)
  annolist = _as_list(release.annolist)
  singles = _as_list(release.single_person)
  is_train = np.asarray(_as_list(release.img_train)).astype(bool)
  split = 'train'
  with writer_lib.ShardedWriter(output_dir, DATASET, schema.KIND_2D,
                                shard_size=shard_size,
                                skip_bad=skip_bad) as writer:
    writer.add_split(split)
    for image_index in np.flatnonzero(is_train):
      anno = annolist[image_index]
      name = str(anno.image.name)
      record = f'annolist[{image_index}] ({name})'
      with writer.guard(split, path, record):
        people = _people(anno, singles[image_index], path, record)
        image = None
        for rect_id, joints in people:
          if joints is None:
            writer.filtered(split, 'fewer than 2 annotated joints')
            continue
          scale = common.person_scale(joints)
          if scale is None:
            writer.filtered(split, 'cannot normalise the person scale')
            continue
          if image is None:
            image = common.read_image(os.path.join(input_dir, 'images', name),
                                      f'{record} person {rect_id}')
          crop = common.crop_person(image, joints, scale, MARGIN)
          writer.write(split, common.image_example(
              crop.image, crop.keypoints, crop.center, name, DATASET))
  return writer.summary()


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad, annotation_file=FLAGS.annotation_file)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  flags.DEFINE_string('annotation_file', None,
                      f'Path of {ANNOTATION_NAME}; default: looked up in '
                      'input_dir, input_dir/annotations and '
                      'input_dir/mpii_human_pose_v1_u12_2.')
  common.run(main, 'datasets.mpii')
