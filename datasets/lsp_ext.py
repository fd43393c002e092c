"""LSP-extended to TFRecords (all train).

Input (as distributed): `<input_dir>/joints.mat` with `joints` [14, 3, N]
(x, y, visible; unlike LSP the flag is 1 for a visible joint) and images
`<input_dir>/images/im%05d.jpg` (1-based; column i of `joints` is
`im{i+1:05d}.jpg`, as the original converter's sorted image list pairs
them). Images are stored as they are, as
in LSP (the dataset's authors scaled people to about 150 px).

  python -m datasets.lsp_ext --input_dir=.../lspet_dataset --output_dir=...
"""

import os

from absl import flags

from datasets import common
from datasets import lsp
from hmr_tf.data import writer as writer_lib

FLAGS = flags.FLAGS


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False) -> dict:
  """Converts LSP-extended; every image is train. Returns the sidecar."""
  return lsp.convert_joints_file(
      input_dir, output_dir, 'lsp_ext', layout='14x3', inverted_flag=False,
      image_pattern=os.path.join('images', 'im%05d.jpg'), num_train=None,
      shard_size=shard_size, skip_bad=skip_bad)


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  common.run(main, 'datasets.lsp_ext')
