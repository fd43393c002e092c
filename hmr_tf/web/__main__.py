"""The web demo's command line: `python -m hmr_tf.web --checkpoint=DIR`.

  pip install -r requirements-web.txt
  python -m hmr_tf.web --checkpoint=runs/quickstart/model

serves the page on http://127.0.0.1:7860 (`--port`; `--host=0.0.0.0` to
expose it on purpose). The model is loaded by the demo's own loading (the
same flags and defaults: the run's body model beside the checkpoint folder,
else `--smpl_model_path` / `--body_model`); `--detector=SAVEDMODEL|hog` and
the demo's other people flags (`--detector_threshold`, `--max_people`, ...)
add that detector to the page's "Find people" choice and pick it first (the
built-in hog is offered whenever this hmr_tf has it). A bad checkpoint, body
model or detector stops it before it serves, with one line and the demo's
exit status; Ctrl-C stops it.
"""

import importlib.util
import os
import tempfile

from absl import flags
from absl import logging

from hmr_tf import configs
from hmr_tf import demo
from hmr_tf import errors

FLAGS = flags.FLAGS

# Before gradio (and huggingface_hub, which it imports) load: no telemetry,
# no version check, no hub requests.
_OFFLINE_ENV = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_OFFLINE': '1',
                'HF_HUB_DISABLE_TELEMETRY': '1', 'DO_NOT_TRACK': '1'}


def _define_flags() -> None:
  """The page's flags (only when run as a command: no clash on import)."""
  flags.DEFINE_string('checkpoint', None, 'Checkpoint folder, prefix or '
                      '.weights.h5 file (as the demo\'s); model_config.json '
                      'must sit beside it unless --img_size is given.')
  flags.DEFINE_string('smpl_model_path', '', 'The body model the checkpoint '
                      'was trained with (.pkl or .npz); default: the run\'s '
                      'body_model/body_model.npz next to the checkpoint '
                      'folder if there is one, else --body_model.')
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
  flags.DEFINE_float('focal_length', None, 'Focal length in pixels of the '
                     'full-image camera of the outputs; default: each '
                     'image\'s diagonal.', lower_bound=1e-6)
  flags.DEFINE_string('host', configs.WEB_HOST, 'Address to serve on (the '
                      'loopback by default; 0.0.0.0 exposes the page to the '
                      'network).')
  flags.DEFINE_integer('port', configs.WEB_PORT, 'Port to serve on.',
                       lower_bound=1, upper_bound=65535)
  flags.DEFINE_float('max_upload_mb', configs.WEB_MAX_UPLOAD_MB,
                     'Largest upload in megabytes.', lower_bound=0.001)
  flags.DEFINE_float('max_megapixels', configs.WEB_MAX_MEGAPIXELS,
                     'Largest image in megapixels.', lower_bound=0.001)
  flags.DEFINE_integer('queue_size', configs.WEB_QUEUE_SIZE,
                       'Requests that may wait in the queue.', lower_bound=1)
  # --detector, --detector_threshold, ...: the demo's people flags.
  demo._define_config_flags(configs.PeopleConfig)  # pylint: disable=protected-access


def _about(checkpoint: str, body) -> str:
  text = (f'Model: `{checkpoint}`; body model: '
          f'{body.metadata.get("name", "unnamed")}.')
  if body.is_standin:
    text += (' Trained on the embedded body and synthetic images, a model '
             'checks the pipeline; it says nothing about accuracy on real '
             'photos.')
  return text


def _finders(config: configs.PeopleConfig):
  """{name: people finder} the page offers, and the one chosen first.

  The built-in HOG detector (when this hmr_tf has it) and the --detector
  SavedModel, loaded now: a bad one stops the app before it serves.
  """
  # pylint: disable=g-import-not-at-top
  from hmr_tf.inference import detectors
  from hmr_tf.inference import people
  from hmr_tf.web import predict as predict_lib
  # pylint: enable=g-import-not-at-top
  finders, default = {}, predict_lib.WHOLE_IMAGE
  specs = [configs.HOG_DETECTOR] if importlib.util.find_spec(
      'hmr_tf.inference.hog_detector') else []
  if config.detector and config.detector not in specs:
    specs.append(config.detector)
  for spec in specs:
    name = ('hog (built in, weak)' if spec == configs.HOG_DETECTOR else
            f'SavedModel {os.path.basename(os.path.normpath(spec))}')
    finders[name] = people.people_finder(
        detectors.load_detector(spec, config), config)
    if spec == config.detector:
      default = name
  return finders, default


def _serve() -> None:
  if not FLAGS.checkpoint:
    raise errors.UsageError('--checkpoint is required')
  os.environ.update(_OFFLINE_ENV)
  # pylint: disable=g-import-not-at-top
  from hmr_tf.web import page as page_lib
  from hmr_tf.web import predict as predict_lib
  # pylint: enable=g-import-not-at-top
  # The demo's own loading (the same flags): the run's body model beside
  # the checkpoint, --smpl_model_path, --body_model, --img_size.
  model, body = demo._load_model()  # pylint: disable=protected-access
  finders, default = _finders(demo._config(configs.PeopleConfig))  # pylint: disable=protected-access
  with tempfile.TemporaryDirectory(prefix='hmr_tf_web_') as root:
    predictor = predict_lib.Predictor(model, body.faces, root, finders,
                                      focal_length=FLAGS.focal_length,
                                      max_megapixels=FLAGS.max_megapixels)
    page = page_lib.build(predictor, _about(FLAGS.checkpoint, body), default)
    logging.info('Serving the page on http://%s:%d', FLAGS.host, FLAGS.port)
    page_lib.launch(page, FLAGS.host, FLAGS.port, FLAGS.max_upload_mb,
                    FLAGS.queue_size, allowed_paths=[root])


def run() -> None:
  """The console entry point (`hmr_tf-web`, as `python -m hmr_tf.web`).

  Expected failures are one line and hmr_tf.errors' exit status
  (--verbosity=1 adds the traceback); anything else is a bug and keeps its
  traceback.
  """
  errors.run_console('hmr_tf.web', __name__, _define_flags, _serve)


if __name__ == '__main__':
  run()
