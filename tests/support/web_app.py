"""The web demo in a test: a tiny model, the app as a process, a browser.

`tiny_model(folder)` writes a checkpoint the web app loads as it loads a
trained run (model/ with model_config.json, body_model/body_model.npz beside
it); `WebApp` starts `python -m hmr_tf.web` on a free loopback port, waits
until it answers and ends it by its PID; `chromium()` is headless Debian
Chromium through selenium, with its network log on.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import repo_paths

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')


def tiny_model(folder: str) -> str:
  """Writes a small untrained run: FOLDER/model/ and FOLDER/body_model/.

  Returns:
    The checkpoint folder (FOLDER/model).
  """
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  from hmr_tf import configs
  from hmr_tf.modeling import hmr_model
  from hmr_tf.modeling import mean_params
  from hmr_tf.smpl import model_io
  from hmr_tf.smpl import standin
  from hmr_tf.training import model_files
  # pylint: enable=g-import-not-at-top
  body = standin.build(num_vertices=300)
  config = configs.ModelConfig(img_size=64, encoder=configs.RESNET_V2_SMALL)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      body, mean_params.mean_theta(np.zeros(72), np.zeros(10)), config)
  model(np.zeros((1, 64, 64, 3), np.float32), training=False)
  ckpt_dir = os.path.join(folder, 'model')
  tf.train.Checkpoint(model=model).save(os.path.join(ckpt_dir, 'ckpt'))
  model_files.save_model_config(ckpt_dir, config)
  model_io.save_model(body, os.path.join(folder, 'body_model',
                                         'body_model.npz'))
  return ckpt_dir


def free_port() -> int:
  """A loopback port nobody listens on now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class WebApp:
  """`python -m hmr_tf.web` (or a given command) serving on a free port.

  Args:
    args: the app's flags.
    command: the program (default: this Python with -m hmr_tf.web, from the
      repository).
    cwd: where it runs.
    env: extra environment.
  """

  def __init__(self, args, command=None, cwd=None, env=None):
    self.port = free_port()
    self.url = f'http://127.0.0.1:{self.port}/'
    command = command or [sys.executable, '-m', 'hmr_tf.web']
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
                    **({} if cwd else {'PYTHONPATH': repo_paths.ROOT}))
    full_env.update(env or {})
    self.log_path = os.path.join(
        os.environ.get('TMPDIR', '/tmp'), f'hmr_tf_web_{self.port}.log')
    self._log = open(self.log_path, 'w')
    self.process = subprocess.Popen(
        [*command, *args, f'--port={self.port}'], cwd=cwd or repo_paths.ROOT,
        env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

  def wait(self, timeout: float = 300) -> 'WebApp':
    """Returns once the page answers; raises with the log if it cannot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self.process.poll() is not None:
        raise RuntimeError(f'the web app exited ({self.process.returncode}):'
                           f'\n{self.log()[-3000:]}')
      try:
        with urllib.request.urlopen(self.url, timeout=5) as response:
          if response.status == 200:
            return self
      except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass
      time.sleep(1)
    raise RuntimeError(f'the web app did not answer in {timeout} s:\n'
                       f'{self.log()[-3000:]}')

  def log(self) -> str:
    self._log.flush()
    with open(self.log_path) as f:
      return f.read()

  def stop(self) -> None:
    """Ends the app by its PID (SIGTERM, then SIGKILL)."""
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait(timeout=30)
    self._log.close()


def chromium():
  """Headless Chromium (selenium) with the performance (network) log."""
  # pylint: disable=g-import-not-at-top
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  # pylint: enable=g-import-not-at-top
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
              '--window-size=1400,1300', '--disable-gpu',
              # WebGL on the CPU for the page's 3D view.
              '--enable-unsafe-swiftshader',
              # No requests of Chromium's own (updates, suggestions).
              '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync'):
    options.add_argument(arg)
  options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
  return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
