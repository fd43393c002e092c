"""HMR demo: `python -m hmr_tf.demo --checkpoint=DIR --image=photo.jpg`.

Or, without a checkpoint, with a LiteRT export (`--mode=export
--export_format=tflite`): `python -m hmr_tf.demo
--tflite=EXPORT_DIR/tflite/hmr_float32.tflite --image=photo.jpg`; the crop
rule and the mesh's faces come from the files beside it (images and
folders; a video's animated `.glb` needs the body model of --checkpoint).

  python -m hmr_tf.demo --checkpoint=runs/quickstart/model \
      --smpl_model_path=runs/quickstart/body_model/body_model.npz \
      --image=photo.jpg [--bbox=x,y,w,h | --bboxes=boxes.txt |
                         --openpose_json=photo.json [--person_index=K]] \
      --output_dir=demo_out

`--image_dir=DIR` runs on every image in a folder and `--video=FILE` on every
frame of a video, in batches with a progress bar. For each image it writes
`<name>_overlay.png` (the mesh over the image), `<name>_side.png`,
`<name>_keypoints.png`, `<name>_mesh.obj`, `<name>_mesh.glb` and
`<name>_params.json` (see hmr_tf.inference.crops and demo_lib for the crop
and camera conventions).

Every person in the picture: with `--detector=SAVEDMODEL|hog` (people
found by a detector, hmr_tf.inference.detectors), `--bboxes=FILE` (one
x,y,w,h a line) or an OpenPose json without `--person_index`, all people
run in one batch and each image gets one overlay with everybody (rendered
together in the whole image's camera, so nearer people hide farther ones),
one `<name>_person<k>_mesh.obj` and `.glb` per person and one
`<name>_params.json` with a `people` list (depth-ranked by cam_t_full's Z;
each person's box and detector score). An image where the detector finds
nobody gets one line (for `--image`: the error, exit status 1).

A video's people are tracked (a `track_id` in each frame's JSON), each
track smoothed over time (`--nosmoothing`: off) and written as one animated
`track<id>.glb` (hmr_tf.inference.video).

Inputs are read as a stream, one batch at a time, so a long video or a big
folder needs no more memory than a few images. The flags, the image (the
folder's first image, the video's first frame) are checked before the model
is built, and so is the detector: a bad one stops the demo with one line on
stderr, exit status 1 (a bad flag combination or a --detector that is
neither hog nor a folder: 2), and no files written. A bad image later in a folder stops it the same way;
the outputs already written are complete (each is written to a temporary
name and renamed). Ctrl-C: one line, exit status 130.
"""

import os

from absl import flags
from absl import logging

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.inference import crops
from hmr_tf.inference import demo_lib
from hmr_tf.inference import sources
from hmr_tf.inference import writers

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
  _define_config_flags(configs.PeopleConfig)
  _define_config_flags(configs.TrackingConfig)
  _define_config_flags(configs.SmoothingConfig)  # --[no]smoothing, ...


def _define_config_flags(cls) -> None:
  """Defines the flags of a configs dataclass (hmr_tf.flags' rule)."""
  for field in configs.flag_fields(cls):
    spec = configs.flag_spec(field)
    name, default = configs.flag_name(field), configs.flag_default(field)
    kind = configs.flag_kind(field)
    if kind == 'string':
      flags.DEFINE_string(name, default, spec.help)
    elif kind == 'boolean':
      flags.DEFINE_boolean(name, default, spec.help)
    elif kind in ('integer', 'float'):
      define = (flags.DEFINE_integer if kind == 'integer' else
                flags.DEFINE_float)
      define(name, default, spec.help, lower_bound=spec.lower_bound,
             upper_bound=spec.upper_bound)
    else:  # the demo's configs have no enum or list flags (yet)
      raise ValueError(f'--{name}: a {kind} flag; add its kind here')


def _config(cls):
  """The configs dataclass `cls` from its flags."""
  return cls(**{field.name: FLAGS[configs.flag_name(field)].value
                for field in configs.flag_fields(cls)})


def _check_flags() -> None:
  """The flag combinations, before any file is read (usage errors)."""
  given = [n for n in ('image', 'image_dir', 'video') if FLAGS[n].value]
  if len(given) != 1:
    raise errors.UsageError('give exactly one of --image, --image_dir, '
                            f'--video (got {given or "none"})')
  boxes_given = [n for n in ('bbox', 'bboxes', 'openpose_json', 'detector')
                 if FLAGS[n].value]
  if len(boxes_given) > 1:
    raise errors.UsageError('give at most one of --bbox, --bboxes, '
                            f'--openpose_json and --detector (got '
                            f'{boxes_given})')
  if FLAGS.openpose_json and not FLAGS.image:
    raise errors.UsageError('--openpose_json needs --image')


def _multi_person() -> bool:
  """Whether each image's people are written together (people JSON)."""
  return bool(FLAGS.bboxes or FLAGS.detector or
              (FLAGS.openpose_json and FLAGS.person_index is None))


def _people_finder():
  """image -> the crops of its people, from the flags.

  A detector (--detector) is loaded here: a bad one stops the demo before
  the model is built.
  """
  if FLAGS.detector:
    from hmr_tf.inference import detectors  # pylint: disable=g-import-not-at-top
    from hmr_tf.inference import people  # pylint: disable=g-import-not-at-top
    config = _config(configs.PeopleConfig)
    return people.people_finder(
        detectors.load_detector(config.detector, config), config)
  if FLAGS.bbox:
    box = crops.parse_bbox(FLAGS.bbox)
    return lambda image: [crops.crop_from_bbox(box, image.shape)]
  if FLAGS.bboxes:
    boxes = crops.read_bboxes(FLAGS.bboxes)
    return lambda image: [crops.crop_from_bbox(b, image.shape)
                          for b in boxes]
  if FLAGS.openpose_json:
    if FLAGS.person_index is None:
      return lambda image: crops.crops_from_openpose(FLAGS.openpose_json,
                                                     image.shape)
    return lambda image: [crops.crop_from_openpose(
        FLAGS.openpose_json, image.shape, FLAGS.person_index)]
  return lambda image: [crops.crop_whole_image(image.shape)]


def _people(stream, find_people, fail_on_nobody: bool):
  """((stem, k, n), image, crop) for person k of n in each image.

  An image where nobody is found gets one line (a single --image: an
  error) and no files.
  """
  for stem, image in stream:
    found = find_people(image)
    if not found:
      message = f'{stem}: no person found'
      if fail_on_nobody:
        how = (f' by --detector={FLAGS.detector} with a score of at least '
               f'{FLAGS.detector_threshold:g}' if FLAGS.detector else '')
        raise sources.DemoInputError(f'--image {FLAGS.image}: no person '
                                     f'found{how}')
      logging.warning('%s; no files written for it.', message)
    for k, crop in enumerate(found):
      yield (stem, k, len(found)), image, crop


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


def _load_model():
  """(model, body_model) from --checkpoint and the body model flags."""
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
  return checkpoints.restore_model(FLAGS.checkpoint, body_model,
                                   config), body_model


def _run():
  if bool(FLAGS.checkpoint) == bool(FLAGS.tflite):
    raise errors.UsageError('give exactly one of --checkpoint and --tflite')
  if FLAGS.tflite and FLAGS.video:
    raise errors.UsageError(
        '--video needs --checkpoint: a track\'s animated .glb is skinned with '
        'the body model, which a --tflite export does not hold')
  _check_flags()
  # The inputs are checked before the model is built: the image, the
  # folder's first image, the video's first frame, the box files.
  if FLAGS.image:
    image = sources.load_image(FLAGS.image)
    stream = [(os.path.splitext(os.path.basename(FLAGS.image))[0], image)]
    count = 1
  elif FLAGS.image_dir:
    paths = sources.image_dir_files(FLAGS.image_dir)
    sources.load_image(paths[0])
    stream, count = sources.iter_images(paths), len(paths)
  else:
    stream = sources.VideoFrames(FLAGS.video)
    count = stream.num_frames
  find_people = _people_finder()
  if FLAGS.image:  # nobody in the one image: one line, no model, no file
    stream = list(_people(stream, find_people, fail_on_nobody=True))
  # Imported after the inputs are checked: TensorFlow takes seconds to load.
  import keras  # pylint: disable=g-import-not-at-top
  if FLAGS.tflite:
    model, faces = _tflite_model()
  else:
    model, body_model = _load_model()
    faces = body_model.faces
  source = FLAGS.image or FLAGS.image_dir or FLAGS.video
  multi = _multi_person()
  # The progress bar counts people: unknown ahead when each image may hold
  # several.
  bar = keras.utils.Progbar(None if multi else count, unit_name='person')
  if FLAGS.video:
    from hmr_tf.inference import video  # pylint: disable=g-import-not-at-top
    smoothing = configs.smoothing_from_flags(FLAGS)
    options = video.VideoOptions(
        multi=multi, smoothing=smoothing,
        tracking=_config(configs.TrackingConfig),
        focal_length=FLAGS.focal_length, batch_size=FLAGS.batch_size,
        source=source)
    summary = video.run_on_video(model, FLAGS.video, find_people,
                                 FLAGS.output_dir, options,
                                 progress=bar.update)
    logging.info('Wrote %d frame(s) and %d track(s) to %s',
                 summary['frames_written'], len(summary['tracks']),
                 FLAGS.output_dir)
    return
  items = (stream if FLAGS.image else
           _people(stream, find_people, fail_on_nobody=False))
  written = []
  people = []  # The current image's results, until its last person.

  def write(key, image, result):
    stem, k, num = key
    people.append(result)
    if k + 1 < num:
      return
    if multi:
      paths = writers.write_people_outputs(FLAGS.output_dir, stem, image,
                                           people, faces,
                                           source=source)
    else:
      paths = writers.write_outputs(FLAGS.output_dir, stem, image,
                                    people[0], faces,
                                    source=source)
    people.clear()
    written[:] = [paths['overlay']]

  done = demo_lib.run_streaming(model, items, write,
                                batch_size=FLAGS.batch_size,
                                progress=bar.update,
                                focal_length=FLAGS.focal_length)
  logging.info('Ran %d person crop(s); outputs in %s (last: %s)', done,
               FLAGS.output_dir, written[0] if written else 'none')


def run() -> None:
  """The console entry point (`hmr_tf-demo`, as `python -m hmr_tf.demo`).

  Expected failures are one line and hmr_tf.errors' exit status
  (--verbosity=1 adds the traceback); anything else is a bug and keeps its
  traceback.
  """
  errors.run_console('hmr_tf.demo', __name__, _define_flags, _run)


if __name__ == '__main__':
  run()
