r"""Renders the README picture of the demo finding two people in one image.

  python -m src.tools.render_detector_picture --run_dir=runs/quickstart \
      --output=docs/detector_demo.png

Two MakeHuman-derived bodies, coloured by body part as the quickstart's
synthetic images are (the quickstart model knows only those), stand in a
384 x 256 picture over a plain synthetic background. The built-in detector
(`--detector=hog`) finds them; the demo's library (`demo_lib.run_on_photo`)
crops each one and runs the quickstart model (RUN_DIR/model, with
RUN_DIR/body_model/body_model.npz). Left: the picture with the detector's
boxes and scores; middle: the predicted meshes over it (one z-buffer, the
whole image's camera); right: the side view.
"""

import os

from absl import app
from absl import flags
import cv2
import numpy as np

from hmr_tf import configs
from hmr_tf.files import atomic_io
from hmr_tf.geometry import camera as camera_lib
from hmr_tf.inference import demo_lib
from hmr_tf.inference import hog_detector
from hmr_tf.inference import people
from hmr_tf.inference import writers
from hmr_tf.render import renderer
from hmr_tf.smpl import layer
from hmr_tf.smpl import model_io
from hmr_tf.synthetic import pose_prior
from hmr_tf.synthetic import scene
from hmr_tf.training import checkpoints

FLAGS = flags.FLAGS
_HEIGHT, _WIDTH = 256, 384
# (betas[:2], cam_t_full (X, Y, Z) in metres): left and right, the left one
# nearer.
_PEOPLE = (((1.0, 0.5), (-0.75, 0.05, 4.6)),
           ((-0.8, 1.0), (0.8, 0.0, 5.4)))


def two_people_image(body: model_io.BodyModel, seed: int,
                     shift: float = 0.0):
  """The input picture and where its people are.

  Args:
    body: the body model.
    seed: the poses and the background.
    shift: metres the two people have walked towards each other (a video
      frame's).

  Returns:
    (uint8 RGB [H, W, 3] picture of two part-coloured bodies, [2, 4] the
    boxes (x, y, w, h) of their projected meshes, left person first).
  """
  rng = np.random.default_rng(seed)
  focal = float(camera_lib.default_focal_length_np((_HEIGHT, _WIDTH)))
  principal = ((_WIDTH - 1) / 2.0, (_HEIGHT - 1) / 2.0)
  smpl = layer.SMPL(body)
  poses = pose_prior.sample_poses(
      rng, len(_PEOPLE), pose_prior.PosePriorConfig(yaw_max_deg=0.0))
  palette = scene.fixed_part_palette(body.weights.shape[1])
  colors = palette[scene.face_parts(body.weights, body.faces)]
  background = scene.random_background(rng, _WIDTH, shapes=False)
  verts, faces, face_colors, boxes = [], [], [], []
  for k, (betas, trans) in enumerate(_PEOPLE):
    full = np.zeros((1, body.num_betas), np.float32)
    full[0, :2] = betas
    v = smpl(poses[k:k + 1].astype(np.float32), full).vertices.numpy()[0]
    walk = np.array([shift if k == 0 else -shift, 0.0, 0.0])
    verts.append(v.astype(np.float64) + trans + walk)
    points = renderer.perspective_project(verts[-1], focal, principal)
    lo, hi = points[:, :2].min(0) + 0.5, points[:, :2].max(0) + 0.5
    boxes.append([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
    faces.append(body.faces + k * len(v))
    face_colors.append(colors)
  verts = np.concatenate(verts)
  projected = renderer.perspective_project(verts, focal, principal)
  image = renderer.render_mesh(
      projected, np.concatenate(faces), _HEIGHT, _WIDTH,
      background=background[:_HEIGHT], face_colors=np.concatenate(
          face_colors), shading_vertices=verts).image
  return image, np.array(boxes)


def _draw_boxes(image: np.ndarray, crops) -> np.ndarray:
  out = image.copy()
  for crop in crops:
    x, y, w, h = crop.box
    cv2.rectangle(out, (int(round(x)), int(round(y))),
                  (int(round(x + w)), int(round(y + h))), (255, 255, 255), 2)
    cv2.putText(out, f'{crop.score:.2f}', (int(x) + 2, int(y) + 14),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
  return out


def _write_clip(body: model_io.BodyModel, path: str, seed: int,
                num_frames: int = 24, fps: float = 12.0) -> None:
  """A short video of the two people walking towards each other (mp4)."""
  with atomic_io.atomic_path(path) as tmp:
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (_WIDTH, _HEIGHT))
    if not writer.isOpened():
      raise OSError(f'{path}: OpenCV cannot write an mp4 here')
    for t in range(num_frames):
      image, _ = two_people_image(body, seed, shift=0.025 * t)
      writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()


def main(argv):
  del argv
  body = model_io.load_model(os.path.join(FLAGS.run_dir, 'body_model',
                                          'body_model.npz'))
  image, _ = two_people_image(body, FLAGS.seed)
  config = configs.PeopleConfig(detector=configs.HOG_DETECTOR)
  find = people.people_finder(hog_detector.HogDetector(), config)
  model = checkpoints.restore_model(os.path.join(FLAGS.run_dir, 'model'),
                                    body)
  out = demo_lib.run_on_photo(model, image, find, source='two people')
  crops = find(image)
  pictures = writers.render_people(image, out['results'], body.faces)
  picture = np.concatenate([_draw_boxes(image, crops), pictures['overlay'],
                            pictures['side']], axis=1)
  ok, data = cv2.imencode('.png', cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
  if not ok:
    raise OSError(f'{FLAGS.output}: could not encode the PNG')
  atomic_io.write_bytes_atomic(FLAGS.output, data.tobytes())
  if FLAGS.clip:
    _write_clip(body, FLAGS.clip, FLAGS.seed)
  if FLAGS.input_output:
    ok, data = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    atomic_io.write_bytes_atomic(FLAGS.input_output, data.tobytes())


if __name__ == '__main__':
  flags.DEFINE_string('run_dir', 'runs/quickstart',
                      'A quickstart run folder (model/, body_model/).')
  flags.DEFINE_string('output', 'docs/detector_demo.png', 'PNG to write.')
  flags.DEFINE_string('input_output', '',
                      'Also write the input picture here (e.g. to try the '
                      'command line on it).')
  flags.DEFINE_string('clip', '', 'Also write a short video of the two '
                      'walking towards each other here (.mp4), to try '
                      '--video on.')
  flags.DEFINE_integer('seed', 1, 'Poses and background.')
  app.run(main)
