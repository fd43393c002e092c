r"""Renders the README picture of the MakeHuman-derived body.

  python src/tools/render_body_picture.py --output=docs/makehuman_body.png

Three bodies (the template and +/- 2 along the first shape direction, which is
mostly stature and build), each from the front and the side, rendered by the
project's own renderer (`hmr_tf.render.renderer`).
"""


from absl import app
from absl import flags
import cv2
import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.render import renderer
from hmr_tf.smpl import model_io

FLAGS = flags.FLAGS
flags.DEFINE_string('model', 'hmr_tf/assets/makehuman_smpl.npz',
                    'SMPL-format body model to draw.')
flags.DEFINE_string('output', 'docs/makehuman_body.png', 'PNG to write.')
flags.DEFINE_integer('size', 360, 'Height of each view in pixels.')

# (label, betas index, value), left to right; index None: the template.
_SHAPES = (('template', None, 0.0), ('beta1 = -2', 0, -2.0),
           ('beta1 = +2', 0, 2.0))


def render_views(model: model_io.BodyModel, size: int) -> np.ndarray:
  """Front and side views of each shape, side by side: [size, W, 3] uint8."""
  meshes = []
  for _, index, value in _SHAPES:
    v = model.v_template.copy()
    if index is not None:
      v = v + value * model.shapedirs[:, :, index]
    # Body frame (y up, facing +z) -> camera in front: x right, y down, z away.
    meshes.append(v * np.array([1.0, -1.0, -1.0]))
  # One scale for all views so that the heights compare: metres -> pixels.
  top = min(m[:, 1].min() for m in meshes)
  bottom = max(m[:, 1].max() for m in meshes)
  scale = 0.9 * size / (bottom - top)
  tiles = []
  for cam in meshes:
    for turn in (0.0, 90.0):
      a = np.deg2rad(turn)
      rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0],
                      [-np.sin(a), 0.0, np.cos(a)]])
      centre = np.array([(cam[:, 0].min() + cam[:, 0].max()) / 2, 0.0,
                         (cam[:, 2].min() + cam[:, 2].max()) / 2])
      turned = (cam - centre) @ rot.T
      width = int(np.ceil((np.ptp(turned[:, 0]) * scale + 0.1 * size) / 2) * 2)
      px = turned * scale
      px[:, 0] += (width - 1) / 2
      px[:, 1] += 0.05 * size - top * scale
      tiles.append(renderer.render_mesh(px, model.faces, size, width,
                                      background=(1.0, 1.0, 1.0),
                                      light_dir=(-0.3, -0.4, -1.0)).image)
  return np.concatenate(tiles, axis=1)


def main(argv):
  del argv
  model = model_io.load_model(FLAGS.model)
  image = render_views(model, FLAGS.size)
  ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  if not ok:
    raise ValueError(f'{FLAGS.output}: PNG encoding failed')
  atomic_io.write_bytes_atomic(FLAGS.output, data.tobytes())


if __name__ == '__main__':
  app.run(main)
