"""Writes the web demo's bundled example photos into hmr_tf/web/examples/.

  python -m src.tools.web_examples --data_dir=runs/quickstart/data

* `astronaut.jpg`: scikit-image's `data.astronaut()` (NASA, public domain),
  run on the whole image;
* `synthetic_heldout.jpg`: the quickstart demo's held-out synthetic image
  (the first test record whose body keypoints all lie inside the image,
  hmr_tf.stages' rule), with the person box that gives the record's own
  crop window (box side 150 / scale around its centre: the demo's box rule
  then crops exactly as the quickstart's demo does).

`examples.json` lists them with their boxes (the page's example rows).
Needs scikit-image (requirements-dev.txt) and a quickstart data folder.
"""

import json
import os

from absl import app
from absl import flags
import cv2

from hmr_tf import configs
from hmr_tf.files import atomic_io
from hmr_tf.geometry import crop as crop_lib

FLAGS = flags.FLAGS
flags.DEFINE_string('data_dir', 'runs/quickstart/data', 'The quickstart data '
                    'folder (its synthetic_3d test split).')
flags.DEFINE_string('output_dir', os.path.join('hmr_tf', 'web', 'examples'),
                    'Where the examples go.')


def main(argv):
  del argv
  from skimage import data  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hmr_tf.data import decoder  # pylint: disable=g-import-not-at-top
  from hmr_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import joints  # pylint: disable=g-import-not-at-top
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  quality = [cv2.IMWRITE_JPEG_QUALITY, configs.JPEG_QUALITY]

  def write_jpeg(name, rgb):
    ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               quality)
    assert ok, name
    atomic_io.write_bytes_atomic(os.path.join(FLAGS.output_dir, name),
                          encoded.tobytes())

  write_jpeg('astronaut.jpg', data.astronaut())
  shards = input_pipeline.list_shards(FLAGS.data_dir, configs.SYNTHETIC_3D,
                                      'test')
  chosen = None
  for record in tf.data.TFRecordDataset(list(shards.files)).take(50):
    example = decoder.decode_image_example(record)
    image = example['image'].numpy()
    kp = example['keypoints2d'].numpy()[:joints.NUM_LSP_JOINTS]
    height, width = image.shape[:2]
    inside = bool(np.all((kp[:, 0] >= 0) & (kp[:, 0] <= width - 1) &
                         (kp[:, 1] >= 0) & (kp[:, 1] <= height - 1)))
    if chosen is None or inside:
      chosen = (image, example['center'].numpy(),
                float(example['scale'].numpy()))
    if inside:
      break
  image, center, scale = chosen
  write_jpeg('synthetic_heldout.jpg', image)
  # The box whose crop (crops.crop_from_bbox) is the record's window:
  # centre = the box's centre, scale = PERSON_HEIGHT_PX / side.
  side = crop_lib.PERSON_HEIGHT_PX / scale
  # box_center is x + w / 2 - 0.5 (pixel centres): invert it.
  x = float(center[0]) + 0.5 - side / 2
  y = float(center[1]) + 0.5 - side / 2
  assert np.allclose(crop_lib.box_center(x, y, side, side), center,
                     atol=1e-4)
  examples = [
      {'file': 'astronaut.jpg', 'boxes': '',
       'about': 'NASA astronaut Eileen Collins (scikit-image, public '
                'domain); whole image'},
      {'file': 'synthetic_heldout.jpg',
       'boxes': f'{x:.2f},{y:.2f},{side:.2f},{side:.2f}',
       'about': 'a held-out synthetic test image of the quickstart data, '
                'with its person box'},
  ]
  atomic_io.write_text_atomic(os.path.join(FLAGS.output_dir, 'examples.json'),
                       json.dumps(examples, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
