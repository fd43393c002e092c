"""Leeds Sports Pose (LSP) to TFRecords.

Input (as distributed): `<input_dir>/joints.mat` with `joints` [3, 14, N]
(x, y, flag; in LSP the flag is 1 for an *occluded* joint, so it is
inverted here) and images `<input_dir>/images/im%04d.jpg` (1-based). The
first half (1000 of the 2000 images) is train, the second half test.
Pairing: column i of `joints` is `im{i+1:04d}.jpg`, as the original
converter (`lsp_to_tfrecords.py`) pairs them: column i with the i-th of the
sorted image names.

LSP's authors already scaled every image so the person is about 150 px
tall, so, as in the original converter, the image is stored as it is (no
rescaling or cropping) with the person centre at the midpoint of the visible
keypoints.

  python -m datasets.lsp --input_dir=.../lsp_dataset --output_dir=.../tfrecords
"""

import os
from typing import Optional

from absl import flags
import numpy as np

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.smpl import joints as joints_lib

FLAGS = flags.FLAGS
NUM_JOINTS = joints_lib.NUM_LSP_JOINTS

_JPEG_MAGIC = b'\xff\xd8'


def load_joints(path: str, layout: str) -> np.ndarray:
  """Reads `joints` from an LSP-style joints.mat as [N, 14, 3].

  Args:
    path: the .mat file.
    layout: '3x14' (LSP, [3, 14, N]) or '14x3' (LSP-extended, [14, 3, N]).

  Returns:
    [N, 14, 3] float64 (x, y, raw flag).
  """
  common.require_file(path, 'joints annotation file')
  mat = common.load_mat(path)
  if 'joints' not in mat:
    raise ValueError(f'{path}: no variable named "joints"')
  joints = np.asarray(mat['joints'], dtype=np.float64)
  if layout == '3x14':
    expected, order = (3, NUM_JOINTS), (2, 1, 0)
  elif layout == '14x3':
    expected, order = (NUM_JOINTS, 3), (2, 0, 1)
  else:
    raise ValueError(f'layout: unknown {layout!r}')
  if joints.ndim != 3 or joints.shape[:2] != expected:
    raise ValueError(f'{path}: joints: expected shape '
                     f'[{expected[0]}, {expected[1]}, N], got {joints.shape}')
  return np.transpose(joints, order)


def read_image_record(path: str, record: int):
  """Returns (JPEG bytes, height, width) of an image file.

  JPEG files are stored byte for byte (no re-encoding loss); other formats
  are re-encoded as JPEG.
  """
  image = common.read_image(path, record)
  with open(path, 'rb') as f:
    data = f.read()
  if not data.startswith(_JPEG_MAGIC):
    data = common.encode_jpeg(image)
  return data, image.shape[0], image.shape[1]


def convert_joints_file(input_dir: str,
                        output_dir: str,
                        dataset: str,
                        layout: str,
                        inverted_flag: bool,
                        image_pattern: str,
                        num_train: Optional[int],
                        shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
                        skip_bad: bool = False) -> dict:
  """Converts an LSP-style dataset (joints.mat + numbered images).

  Args:
    input_dir: folder with joints.mat and images/.
    output_dir: root output folder.
    dataset: the output dataset name.
    layout: see `load_joints`.
    inverted_flag: True when the file's flag means occluded (LSP).
    image_pattern: image path relative to input_dir, %-formatted with the
      1-based index.
    num_train: records [0, num_train) are train, the rest test; None: all
      train.
    shard_size: records per shard.
    skip_bad: skip and count malformed records instead of stopping.

  Returns:
    The sidecar dict.
  """
  joints_path = os.path.join(input_dir, 'joints.mat')
  all_joints = load_joints(joints_path, layout)
  count = all_joints.shape[0]
  if num_train is None:
    num_train = count
  with writer_lib.ShardedWriter(output_dir, dataset, schema.KIND_2D,
                                shard_size=shard_size,
                                skip_bad=skip_bad) as writer:
    writer.add_split('train')
    if num_train < count:
      writer.add_split('test')
    for index in range(count):
      split = 'train' if index < num_train else 'test'
      relative = image_pattern % (index + 1)
      image_path = os.path.join(input_dir, relative)
      with writer.guard(split, joints_path, f'{index} ({relative})'):
        keypoints = all_joints[index].copy()
        flag = keypoints[:, 2]
        if not np.all(np.isin(flag, (0.0, 1.0))):
          raise common.BadRecordError(
              joints_path, index,
              f'visibility flags must be 0 or 1, got {np.unique(flag)}')
        visible = flag == 0 if inverted_flag else flag == 1
        keypoints[:, 2] = visible
        # Occluded joints keep their annotated coordinates with visibility
        # 0, as in the original converter: losses and metrics ignore them,
        # analysis tools can still use them.
        if not np.any(visible):
          writer.filtered(split, 'no visible joint')
          continue
        data, height, width = read_image_record(image_path, index)
        low, high = common.visible_box(keypoints)
        example = schema.make_image_example(
            data, height, width, relative, (low + high) / 2.0, keypoints,
            dataset=dataset)
        writer.write(split, example)
  return writer.summary()


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False) -> dict:
  """Converts LSP; the first half of the images is train, the rest test."""
  count = load_joints(os.path.join(input_dir, 'joints.mat'), '3x14').shape[0]
  return convert_joints_file(
      input_dir, output_dir, 'lsp', layout='3x14', inverted_flag=True,
      image_pattern=os.path.join('images', 'im%04d.jpg'),
      num_train=count // 2, shard_size=shard_size, skip_bad=skip_bad)


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  common.run(main, 'datasets.lsp')
