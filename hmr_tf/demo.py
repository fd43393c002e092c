"""HMR demo: `python -m hmr_tf.demo --checkpoint=DIR --image=photo.jpg`.

Or, without a checkpoint, with a LiteRT export (`--mode=export
--export_format=tflite`): `python -m hmr_tf.demo
--tflite=EXPORT_DIR/tflite/hmr_float32.tflite --image=photo.jpg`; the crop
rule and the mesh's faces come from the files beside it.

  python -m hmr_tf.demo --checkpoint=runs/quickstart/model \
      --smpl_model_path=runs/quickstart/body_model/body_model.npz \
      --image=photo.jpg [--bbox=x,y,w,h | --bboxes=boxes.txt |
                         --openpose_json=photo.json [--person_index=K]] \
      --output_dir=demo_out

`--image_dir=DIR` runs on every image in a folder and `--video=FILE` on every
frame of a video, in batches with a progress bar. For each image it writes
`<name>_overlay.png` (the mesh over the image), `<name>_side.png`,
`<name>_keypoints.png`, `<name>_mesh.obj` and `<name>_params.json` (see
hmr_tf.inference.demo_lib for the crop and camera conventions).

Every person in the picture: with `--bboxes=FILE` (one x,y,w,h a line) or
an OpenPose json without `--person_index`, all people run in one batch and
each image gets one overlay with everybody (rendered together in the whole
image's camera, so nearer people hide farther ones), one
`<name>_person<k>_mesh.obj` per person and one `<name>_params.json` with a
`people` list (depth-ranked by cam_t_full's Z).

Inputs are read as a stream, one batch at a time, so a long video or a big
folder needs no more memory than a few images. The flags, the image (the
folder's first image, the video's first frame) are checked before the model
is built: a bad one stops the demo with one line on stderr, exit status 1,
and no files written. A bad image later in a folder stops it the same way;
the outputs already written are complete (each is written to a temporary
name and renamed). Ctrl-C: one line, exit status 130.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from hmr_tf import configs
from hmr_tf.inference import demo_lib

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines the demo's flags (only under __main__: no clash on import)."""
  flags.DEFINE_string('checkpoint', None, 'Checkpoint folder, prefix or '
                      '.weights.h5 file; model_config.json must sit beside it '
                      'unless --img_size is given.')
  flags.DEFINE_string('tflite', None, 'A LiteRT model from --mode=export '
                      '--export_format=tflite, instead of --checkpoint (its '
                      'export_info.json and faces.npy beside it).')
  flags.DEFINE_string('image', None, 'One input image.')
  flags.DEFINE_string('image_dir', None, 'A folder of input images.')
  flags.DEFINE_string('video', None, 'A video file (every frame is used).')
  flags.DEFINE_string('bbox', None, 'Person box x,y,w,h in pixels (--image '
                      'only, or every frame of --video).')
  flags.DEFINE_string('bboxes', None, 'A text file of person boxes, one '
                      'x,y,w,h a line: every person is run (--image, and every '
                      'image of --image_dir or frame of --video).')
  flags.DEFINE_string('openpose_json', None, 'OpenPose keypoints of --image: '
                      'every person with confident keypoints is run, unless '
                      '--person_index picks one.')
  flags.DEFINE_integer('person_index', None, 'Which OpenPose person to use '
                       '(default: all of them).', lower_bound=0)
  flags.DEFINE_float('focal_length', None, 'Focal length in pixels of the '
                     'full-image camera of the outputs (cam_t_full); default: '
                     'each image\'s diagonal.', lower_bound=1e-6)
  flags.DEFINE_string('output_dir', 'demo_output', 'Where outputs go.')
  flags.DEFINE_integer('batch_size', 8, 'Images per forward pass.',
                       lower_bound=1)
  flags.DEFINE_string('smpl_model_path', '', 'The body model the checkpoint was '
                      'trained with (.pkl or .npz); default: the run\'s '
                      'body_model/body_model.npz next to the checkpoint folder '
                      'if there is one, else --body_model.')
  flags.DEFINE_enum('body_model', configs.BodyModelConfig.body_model,
                    configs.BODY_MODELS,
                    'Embedded body model used when there is neither '
                    '--smpl_model_path nor a run body model file.')
  flags.DEFINE_integer('standin_num_vertices',
                       configs.BodyModelConfig.standin_num_vertices,
                       'Stand-in size, with --body_model=standin.',
                       lower_bound=configs.STANDIN_MIN_VERTICES)
  flags.DEFINE_integer('img_size', None, 'Model input size, only needed when '
                       'the checkpoint has no model_config.json.',
                       lower_bound=configs.MIN_IMG_SIZE)



def _inputs():
  """(items, count): (stem, image, crop) as a lazy stream, and its length.

  Flags, the single image, the folder's first image and the video's first
  frame are checked here, before the model is built; the rest is decoded
  while the demo runs, one batch at a time (count None: a video that does
  not say how many frames it has).
  """
  given = [n for n in ('image', 'image_dir', 'video') if FLAGS[n].value]
  if len(given) != 1:
    raise demo_lib.DemoInputError('give exactly one of --image, --image_dir, '
                                  f'--video (got {given or "none"})')
  boxes_given = [n for n in ('bbox', 'bboxes', 'openpose_json')
                 if FLAGS[n].value]
  if len(boxes_given) > 1:
    raise demo_lib.DemoInputError('give at most one of --bbox, --bboxes and '
                                  f'--openpose_json (got {boxes_given})')
  if FLAGS.openpose_json and not FLAGS.image:
    raise demo_lib.DemoInputError('--openpose_json needs --image')
  if FLAGS.image:
    image = demo_lib.load_image(FLAGS.image)
    stem = os.path.splitext(os.path.basename(FLAGS.image))[0]
    items = list(_people([(stem, image)]))  # crops checked before the model
    return items, len(items)
  if FLAGS.image_dir:
    paths = demo_lib.image_dir_files(FLAGS.image_dir)
    _crops(demo_lib.load_image(paths[0]))  # Checked up front.
    stream = demo_lib.iter_images(paths)
    count = len(paths)
    source = FLAGS.image_dir
  else:
    stream = demo_lib.VideoFrames(FLAGS.video)
    count = stream.num_frames
    source = FLAGS.video
  del source
  # The progress bar counts people: unknown ahead when each image may hold
  # several.
  return _people(stream), (None if _multi_person() else count)


def _people(stream):
  """((stem, k, n), image, crop) for person k of n in each image."""
  for stem, image in stream:
    crops = _crops(image)
    for k, crop in enumerate(crops):
      yield (stem, k, len(crops)), image, crop


def _multi_person() -> bool:
  """Whether each image's people are written together (people JSON)."""
  return bool(FLAGS.bboxes or
              (FLAGS.openpose_json and FLAGS.person_index is None))


def _crops(image):
  """The crops of one image: one per person to run."""
  if FLAGS.bbox:
    return [demo_lib.crop_from_bbox(demo_lib.parse_bbox(FLAGS.bbox),
                                    image.shape)]
  if FLAGS.bboxes:
    return [demo_lib.crop_from_bbox(box, image.shape)
            for box in demo_lib.read_bboxes(FLAGS.bboxes)]
  if FLAGS.openpose_json:
    if FLAGS.person_index is None:
      return demo_lib.crops_from_openpose(FLAGS.openpose_json, image.shape)
    return [demo_lib.crop_from_openpose(FLAGS.openpose_json, image.shape,
                                        FLAGS.person_index)]
  return [demo_lib.crop_whole_image(image.shape)]


def _run_body_model_file(checkpoint: str) -> str:
  """The quickstart/run layout's body model beside the checkpoint, or ''.

  hmr_tf.main writes OUTPUT_DIR/model/ (checkpoints) next to
  OUTPUT_DIR/body_model/body_model.npz (the body the model was trained with).
  """
  folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(
      checkpoint)
  path = os.path.join(os.path.dirname(os.path.abspath(folder)), 'body_model',
                      'body_model.npz')
  return path if os.path.isfile(path) else ''


def _tflite_model():
  """(model, faces) of --tflite: the LiteRT runner and the mesh's faces."""
  from hmr_tf.inference import tflite_runner  # pylint: disable=g-import-not-at-top
  # The export fixes the body model and the crop size.
  for name in ('smpl_model_path', 'img_size'):
    if FLAGS[name].present:
      raise demo_lib.DemoInputError(
          f'--{name} applies to --checkpoint; a --tflite export has its own '
          '(leave it out)')
  try:
    model = tflite_runner.TFLiteModel(FLAGS.tflite)
  except tflite_runner.TFLiteModelError as e:
    raise demo_lib.DemoInputError(f'--tflite {e}') from e
  if 'vertices' not in model.info['outputs'] or model.faces is None:
    raise demo_lib.DemoInputError(
        f'--tflite {FLAGS.tflite}: the demo draws the mesh, but this export '
        'has no vertices output or no faces.npy (export it with '
        '--export_vertices)')
  return model, model.faces


def _checkpoint_model():
  """(model, faces) of --checkpoint and its body model."""
  from hmr_tf.training import checkpoints  # pylint: disable=g-import-not-at-top
  from hmr_tf.training import model_files  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import body_models  # pylint: disable=g-import-not-at-top
  from hmr_tf.inference import original_import  # pylint: disable=g-import-not-at-top
  folder = (FLAGS.checkpoint if os.path.isdir(FLAGS.checkpoint) else
            os.path.dirname(FLAGS.checkpoint))
  # An imported original model loads its body from where it was imported.
  body_model = (None if FLAGS.smpl_model_path else
                original_import.recorded_body_model(folder))
  if body_model is None:
    body_model = body_models.resolve_body_model(
        FLAGS.smpl_model_path or _run_body_model_file(FLAGS.checkpoint),
        FLAGS.body_model, FLAGS.standin_num_vertices)
  demo_lib.check_faces(body_model)
  fallback = (configs.ModelConfig(img_size=FLAGS.img_size)
              if FLAGS.img_size else None)
  config = model_files.read_model_config(
      checkpoints.resolve_checkpoint(FLAGS.checkpoint), fallback)
  model = checkpoints.restore_model(FLAGS.checkpoint, body_model, config)
  return model, body_model.faces


def _run():
  if bool(FLAGS.checkpoint) == bool(FLAGS.tflite):
    raise demo_lib.DemoInputError('give exactly one of --checkpoint and '
                                  '--tflite')
  items, count = _inputs()
  # After the inputs are checked: TensorFlow takes seconds to load.
  model, faces = _tflite_model() if FLAGS.tflite else _checkpoint_model()
  import keras  # pylint: disable=g-import-not-at-top
  bar = keras.utils.Progbar(count, unit_name='image')
  source = FLAGS.image or FLAGS.image_dir or FLAGS.video
  written = []
  people = []  # The current image's results, until its last person.
  multi = _multi_person()

  def write(key, image, result):
    stem, k, num = key
    people.append(result)
    if k + 1 < num:
      return
    if multi:
      paths = demo_lib.write_people_outputs(FLAGS.output_dir, stem, image,
                                            people, faces,
                                            source=source)
    else:
      paths = demo_lib.write_outputs(FLAGS.output_dir, stem, image,
                                     people[0], faces,
                                     source=source)
    people.clear()
    written[:] = [paths['overlay']]

  done = demo_lib.run_streaming(model, items, write,
                                batch_size=FLAGS.batch_size,
                                progress=bar.update,
                                focal_length=FLAGS.focal_length)
  logging.info('Wrote %d result(s) to %s (last: %s)', done,
               FLAGS.output_dir, written[0])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  # Expected failures: one line (--verbosity=1 adds the traceback) and
  # hmr_tf.errors' exit status; anything else is a bug and keeps its
  # traceback.
  from hmr_tf import errors  # pylint: disable=g-import-not-at-top
  try:
    _run()
  except KeyboardInterrupt:
    _fail('interrupted', errors.EXIT_INTERRUPTED, what='')
  except (errors.HmrError, demo_lib.DemoInputError, OSError,
          ValueError) as e:
    if logging.get_verbosity() >= 1:
      logging.exception('Traceback of the error below:')
    _fail(e, getattr(e, 'exit_code', errors.EXIT_FAILURE))


def _fail(message, status: int, what: str = 'error: '):
  text = str(message).strip().splitlines() or ['']
  sys.stderr.write(f'hmr_tf.demo: {what}{text[0]}\n')
  sys.exit(status)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
