"""Human3.6M (preprocessed annotation .npz) to 3D TFRecords.

Human3.6M's license forbids redistribution and the original HMR code has no
converter for it, so this reads the widely used preprocessed annotation form
(as in SPIN): an `.npz` per split with
  imgname [N] (image paths relative to the image folder),
  center [N, 2], scale [N] (box side / 200),
  part [N, 24, 3] (x, y, confidence; the first 14 joints in LSP order),
  S [N, 24, 4] (x, y, z in metres, confidence; same order),
  optionally pose [N, 72] and shape [N, 10] (MoSh SMPL parameters),
plus the image folder. Pairing: row i of every array belongs to the image
`imgname[i]` (the preprocessed files' own layout, as SPIN reads them). Person scale and crop follow the other converters
(~150 px tall person, 300x300 window); the file's own center/scale are used
only where the keypoints cannot give a scale.

  python -m datasets.h36m --input_dir=.../h36m --output_dir=... \
      --splits=train:h36m_train.npz,test:h36m_valid_protocol1.npz
"""

import os
from typing import Dict, Optional

from absl import flags
import numpy as np

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.geometry import crop as crop_lib

FLAGS = flags.FLAGS
DATASET = 'h36m'
MARGIN = 150  # As the original 3D records (300x300 windows).
NUM_FILE_JOINTS = 24
NUM_LSP = schema.NUM_LSP_JOINTS
SPIN_BOX_UNIT = 200.0  # The preprocessed files' scale is box side / 200.


def load_annotation(path: str) -> Dict[str, np.ndarray]:
  """Loads and checks a preprocessed Human3.6M .npz."""
  common.require_file(path, 'Human3.6M annotation file')
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except (ValueError, OSError) as e:
    raise ValueError(f'{path}: cannot read the .npz file ({e})') from e
  for key in ('imgname', 'center', 'scale', 'part', 'S'):
    if key not in arrays:
      raise ValueError(f'{path}: no array named {key!r}')
  if arrays['imgname'].ndim != 1:
    raise ValueError(f'{path}: imgname: expected a list of image paths, got '
                     f'shape {list(arrays["imgname"].shape)}')
  num = len(arrays['imgname'])
  expected = {'center': (num, 2), 'scale': (num,),
              'part': (num, NUM_FILE_JOINTS, 3),
              'S': (num, NUM_FILE_JOINTS, 4), 'pose': (num, 72),
              'shape': (num, 10)}
  for key, shape in expected.items():
    if key in arrays and arrays[key].shape != shape:
      raise ValueError(f'{path}: {key}: expected shape {list(shape)}, got '
                       f'{list(arrays[key].shape)}')
  if ('pose' in arrays) != ('shape' in arrays):
    raise ValueError(f'{path}: pose and shape must come together')
  return arrays


def convert_split(path: str, data: Dict[str, np.ndarray], image_dir: str,
                  split: str, writer: writer_lib.ShardedWriter) -> None:
  """Converts one annotation file (loaded by `load_annotation`) into
  `split`."""
  writer.add_split(split)
  has_smpl = 'pose' in data
  for i, name in enumerate(data['imgname']):
    name = str(name)
    with writer.guard(split, path, f'{i} ({name})'):
      record = f'{path} record {i}'
      part = common.check_array(data['part'][i], [NUM_FILE_JOINTS, 3], path,
                                i, 'part')
      joints3d = common.check_array(data['S'][i], [NUM_FILE_JOINTS, 4], path,
                                    i, 'S')
      keypoints = part[:NUM_LSP].copy()
      keypoints[:, 2] = keypoints[:, 2] > 0
      keypoints[keypoints[:, 2] == 0] = 0.0
      if not np.any(keypoints[:, 2]):
        writer.filtered(split, 'no visible joint')
        continue
      scale = common.person_scale(keypoints)
      if scale is None:
        box = float(data['scale'][i]) * SPIN_BOX_UNIT
        if not box > 0:
          raise common.BadRecordError(path, i, f'scale: {data["scale"][i]}')
        scale = crop_lib.PERSON_HEIGHT_PX / box
      gt3d = None
      if np.all(joints3d[:NUM_LSP, 3] > 0):
        gt3d = joints3d[:NUM_LSP, :3]
      extra = {'is_3d': True, 'joints3d': gt3d}
      if has_smpl:
        extra['pose'] = common.check_array(data['pose'][i], [72], path, i,
                                           'pose')
        extra['shape'] = common.check_array(data['shape'][i], [10], path, i,
                                            'shape')
      image = common.read_image(os.path.join(image_dir, name), record)
      crop = common.crop_person(image, keypoints, scale, MARGIN)
      writer.write(split, common.image_example(
          crop.image, crop.keypoints, crop.center, name, DATASET, **extra))


def parse_splits(specs) -> Dict[str, str]:
  """['train:a.npz', 'test:b.npz'] -> {'train': 'a.npz', 'test': 'b.npz'}."""
  splits = {}
  for spec in specs:
    split, sep, file = spec.partition(':')
    if not sep or not split or not file:
      raise ValueError(f'splits: expected SPLIT:FILE, got {spec!r}')
    splits[split] = file
  return splits


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            splits: Optional[Dict[str, str]] = None,
            image_dir: Optional[str] = None) -> dict:
  """Converts Human3.6M. Returns the sidecar dict.

  Args:
    input_dir: folder of the annotation files (and images by default).
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed records instead of stopping.
    splits: {split name: annotation file (relative to input_dir)}; default
      {'train': 'h36m_train.npz'}.
    image_dir: root of the `imgname` paths; default input_dir.
  """
  splits = splits or {'train': 'h36m_train.npz'}
  image_dir = image_dir or input_dir
  # Every input is checked before the writer starts, and the writer keeps
  # the previous conversion until this one is complete.
  loaded = {}
  for split, file in splits.items():
    path = os.path.join(input_dir, file)
    loaded[split] = (path, load_annotation(path))
  if not os.path.isdir(image_dir):
    raise FileNotFoundError(f'{image_dir}: Human3.6M image folder not found')
  with writer_lib.ShardedWriter(output_dir, DATASET, schema.KIND_3D,
                                shard_size=shard_size,
                                skip_bad=skip_bad) as writer:
    for split, (path, data) in loaded.items():
      convert_split(path, data, image_dir, split, writer)
  return writer.summary()


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad, splits=parse_splits(FLAGS.splits),
          image_dir=FLAGS.image_dir)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  flags.DEFINE_list('splits', ['train:h36m_train.npz'],
                    'SPLIT:FILE pairs: annotation .npz of each split, '
                    'relative to input_dir.')
  flags.DEFINE_string('image_dir', None,
                      'Root of the imgname paths (default: input_dir).')
  common.run(main, 'datasets.h36m')
