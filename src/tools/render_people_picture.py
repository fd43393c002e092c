r"""Renders the README picture of the demo's multi-person overlay.

  python src/tools/render_people_picture.py --output=docs/multi_person_demo.png

Three MakeHuman-derived bodies (different shapes and poses) stand at known
places in a perspective camera of a 640 x 360 image: their `cam_t_full`s
are set here (ground truth, not network predictions). Each becomes the
result dict the demo builds, and `hmr_tf.inference.writers.render_people` draws them
as the demo does for several people: one z-buffer in the whole image's
camera (nearer people hide farther ones), a colour per person, their
keypoints. Left: the overlay; right: the side view.
"""

from absl import app
from absl import flags
import cv2
import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.geometry import camera as camera_lib
from hmr_tf.inference import writers
from hmr_tf.smpl.layer import SMPL
from hmr_tf.smpl import model_io

FLAGS = flags.FLAGS

# (pose seed, betas, cam_t_full (X, Y, Z) in metres): left to right, the
# middle person nearest.
_PEOPLE = ((1, (1.5, 0.5), (-1.1, 0.1, 6.5)),
           (2, (-1.0, 1.0), (0.05, 0.2, 4.2)),
           (3, (0.5, -1.5), (1.0, 0.0, 7.5)))
_HEIGHT, _WIDTH = 360, 640


def _background() -> np.ndarray:
  """A floor and a wall, uint8 RGB [H, W, 3]."""
  yy = np.linspace(0, 1, _HEIGHT)[:, None, None]
  wall = np.array([0.80, 0.82, 0.86]) * (1 - 0.2 * yy)
  floor = np.array([0.55, 0.50, 0.45]) * (0.8 + 0.2 * yy)
  image = np.where(yy < 0.62, wall, floor) * np.ones((1, _WIDTH, 1))
  return (255 * image).astype(np.uint8)


def people_picture(model: model_io.BodyModel) -> np.ndarray:
  """The overlay and the side view side by side, uint8 RGB."""
  focal = float(camera_lib.default_focal_length_np((_HEIGHT, _WIDTH)))
  principal = [(_WIDTH - 1) / 2.0, (_HEIGHT - 1) / 2.0]
  smpl = SMPL(model)
  results = []
  for seed, betas, trans in _PEOPLE:
    rng = np.random.default_rng(seed)
    pose = np.zeros(72)
    pose[:3] = (np.pi, 0.0, 0.0)  # upright in the camera: y down
    pose[3:] = rng.normal(0, 0.15, 69)
    full_betas = np.zeros(model.num_betas)
    full_betas[:2] = betas
    body = smpl(pose[None].astype(np.float32),
                full_betas[None].astype(np.float32))
    verts = body.vertices.numpy()[0].astype(np.float64)
    keypoints = body.keypoints.numpy()[0].astype(np.float64)
    trans = np.asarray(trans)
    camera = keypoints + trans
    keypoints2d = focal * camera[:, :2] / camera[:, 2:3] + principal
    results.append({
        'vertices': verts, 'cam_t_full': trans,
        'keypoints2d_image': keypoints2d,
        'perspective': {'focal_px': focal, 'principal_point': principal,
                        'translation': trans.tolist()}})
  pictures = writers.render_people(_background(), results, model.faces)
  return np.concatenate([pictures['overlay'], pictures['side']], axis=1)


def main(argv):
  del argv
  picture = people_picture(model_io.load_model(FLAGS.model))
  ok, data = cv2.imencode('.png', cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
  if not ok:
    raise OSError(f'{FLAGS.output}: could not encode the PNG')
  atomic_io.write_bytes_atomic(FLAGS.output, data.tobytes())


if __name__ == '__main__':
  flags.DEFINE_string('model', 'hmr_tf/assets/makehuman_smpl.npz',
                      'SMPL-format body model to draw.')
  flags.DEFINE_string('output', 'docs/multi_person_demo.png', 'PNG to write.')
  app.run(main)
