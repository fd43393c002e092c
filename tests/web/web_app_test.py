"""The web demo as people and scripts use it: a real browser and gradio_client.

One app process (a small untrained model and a tiny person detector,
`python -m hmr_tf.web` on a free loopback port) serves both tests. The browser test drives headless Chromium
(Debian's chromium + chromium-driver through selenium) as a person would:
upload the astronaut photo, run, look at what the page shows, download the
files, upload a bad file, then a good one again; it checks that the page
asks nothing of any host but the app. The client test calls the page's API
(`/predict`) with gradio_client, several requests at once through the
queue, and compares the numbers with the demo's library run on the same
checkpoint in this process.
"""

import json
import os
import struct
import time
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest

import detector_models  # tests/support/
import repo_paths  # tests/support/
import web_app  # tests/support/

gradio = pytest.importorskip(
    'gradio', reason='the web demo needs requirements-web.txt')

EXAMPLES = os.path.join(repo_paths.ROOT, 'hmr_tf', 'web', 'examples')
ASTRONAUT = os.path.join(EXAMPLES, 'astronaut.jpg')
MAX_MEGAPIXELS = 0.5  # The app's limit here: a 1000x800 photo is refused.
DETECTOR = 'SavedModel detector'  # The page's name for --detector=.../detector
WHOLE_IMAGE = 'none (the whole image)'  # hmr_tf.web.predict.WHOLE_IMAGE


@pytest.fixture(scope='module')
def app(tmp_path_factory):
  folder = tmp_path_factory.mktemp('web')
  checkpoint = web_app.tiny_model(str(folder))
  # Its person is the image's bright rectangle (tests/support).
  detector = detector_models.save_object_detection(str(folder / 'detector'))
  from hmr_tf.smpl import model_io  # pylint: disable=g-import-not-at-top
  body = model_io.load_model(os.path.join(str(folder), 'body_model',
                                          'body_model.npz'))
  server = web_app.WebApp([f'--checkpoint={checkpoint}',
                           f'--max_megapixels={MAX_MEGAPIXELS}',
                           f'--detector={detector}'])
  try:
    server.wait()
    yield dict(server=server, folder=folder, checkpoint=checkpoint,
               body=body)
  finally:
    server.stop()


def _photo_files(folder):
  """A wide crop of the astronaut (not square), a text file, a broken
  JPEG, and a photo over the app's pixel limit."""
  astronaut = cv2.imread(ASTRONAUT)
  paths = {'wide': str(folder / 'wide astronaut.png'),
           'text': str(folder / 'notes.txt'),
           'broken': str(folder / 'broken.jpg'),
           'huge': str(folder / 'huge.jpg')}
  cv2.imwrite(paths['wide'], astronaut[40:340])  # 512 x 300
  with open(paths['text'], 'w') as f:
    f.write('not a photo\n')
  with open(ASTRONAUT, 'rb') as f:
    head = f.read(600)  # a JPEG header and nothing decodable after it
  with open(paths['broken'], 'wb') as f:
    f.write(head + b'\0' * 64)
  cv2.imwrite(paths['huge'], cv2.resize(astronaut, (1000, 800)))
  return paths


def _fetch(url):
  with urllib.request.urlopen(url, timeout=60) as response:
    assert response.status == 200, url
    return response.read()


def _check_download(name, data, photo_shape, body):
  if name.endswith('.png'):
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == photo_shape, name
  elif name.endswith('.json'):
    params = json.loads(data)
    assert params['num_people'] == 1
    person = params['people'][0]
    assert len(person['pose']) == 72 and len(person['shape']) == 10
    assert params['image_size'] == {'height': photo_shape[0],
                                    'width': photo_shape[1]}
  elif name.endswith('.obj'):
    text = data.decode()
    assert text.count('\nv ') == len(body.v_template)
    assert text.count('\nf ') == len(body.faces)
  elif name.endswith('.glb'):
    magic, version, length = struct.unpack('<III', data[:12])
    assert (magic, version, length) == (0x46546C67, 2, len(data))
  else:
    raise AssertionError(f'unexpected download {name}')


# ---------------------------------------------------------------------------
# A person in a browser.


@pytest.mark.skipif(not (web_app.CHROMIUM and web_app.CHROMEDRIVER),
                    reason='needs Debian\'s chromium and chromium-driver '
                    '(.ci/run installs them)')
def test_page_in_a_browser(app, tmp_path):
  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait
  # pylint: enable=g-import-not-at-top
  files = _photo_files(tmp_path)
  url = app['server'].url
  driver = web_app.chromium()
  try:
    wait = WebDriverWait(driver, 180, poll_frequency=0.25)

    def find(css):
      return driver.find_elements(By.CSS_SELECTOR, css)

    def upload(path):
      if find('#photo button[aria-label=Clear]'):
        find('#photo button[aria-label=Clear]')[0].click()
      wait.until(lambda d: find('#photo input[type=file]'))
      find('#photo input[type=file]')[0].send_keys(path)
      # The upload is done when the component offers the file back.
      wait.until(lambda d: [a for a in find('#photo a.download-link') if
                            a.get_attribute('download') ==
                            os.path.basename(path)])
      find('#run')[0].click()

    def overlay_src():
      images = find('#overlay img')
      return images[0].get_attribute('src') if images else None

    def shown_image(previous):
      """Waits for a new overlay; returns its natural and shown size."""
      wait.until(lambda d: overlay_src() not in (None, previous) and
                 driver.execute_script(
                     'return arguments[0].complete && '
                     'arguments[0].naturalWidth > 0', find('#overlay img')[0]))
      image = find('#overlay img')[0]
      natural = driver.execute_script(
          'return [arguments[0].naturalWidth, arguments[0].naturalHeight]',
          image)
      return natural, (image.size['width'], image.size['height'])

    start = time.monotonic()
    driver.get(url)
    wait.until(lambda d: find('#photo input[type=file]'))
    upload(ASTRONAUT)
    natural, shown = shown_image(None)
    seconds = time.monotonic() - start
    photo = cv2.imread(ASTRONAUT)
    # The overlay is the photo's size, shown at its aspect.
    assert natural == [photo.shape[1], photo.shape[0]]
    assert shown[0] / shown[1] == pytest.approx(
        photo.shape[1] / photo.shape[0], rel=0.02)
    wait.until(lambda d: 'person' in find('#timing')[0].text)
    assert '1 person' in find('#timing')[0].text
    assert 'total' in find('#timing')[0].text
    # The 3D view: a canvas with the mesh drawn on it (not all background).
    wait.until(lambda d: find('#view3d canvas'))
    canvas = find('#view3d canvas')[0]
    assert canvas.size['width'] > 100 and canvas.size['height'] > 100

    def drawn():
      shot = cv2.imdecode(np.frombuffer(canvas.screenshot_as_png, np.uint8),
                          cv2.IMREAD_COLOR)
      return np.mean(np.abs(shot.astype(int) - 255).sum(-1) > 30)

    wait.until(lambda d: drawn() > 0.005)
    screenshot = os.path.join(os.environ.get('HMR_TF_SCREENSHOT_DIR',
                                             str(tmp_path)), 'web_page.png')
    driver.save_screenshot(screenshot)
    assert os.path.getsize(screenshot) > 0
    # Every download link works and holds what its name says.
    links = {a.get_attribute('download'): a.get_attribute('href')
             for a in find('#downloads a.download-link')}
    assert sorted(links) == sorted(
        f'astronaut_{k}' for k in ('keypoints.png', 'person0_mesh.obj',
                                   'person0_mesh.glb', 'overlay.png',
                                   'params.json', 'side.png'))
    for name, href in links.items():
      _check_download(name, _fetch(href), photo.shape, app['body'])
    # Bad uploads: a message in the page each time; the page goes on.
    messages = {'text': 'notes.txt: not a readable image',
                'broken': 'broken.jpg: not a readable image',
                'huge': 'huge.jpg: the image is 1000x800 pixels'}
    for key, message in messages.items():
      upload(files[key])
      wait.until(lambda d, m=message: any(
          m in t.text for t in find('.toast-body')))
      for close in find('.toast-close'):
        close.click()
    previous = overlay_src()
    upload(files['wide'])
    natural, shown = shown_image(previous)
    assert natural == [512, 300]
    assert shown[0] / shown[1] == pytest.approx(512 / 300, rel=0.02)
    # No request left the machine: every URL the page loaded is the app's
    # (or data:/blob: in the page itself).
    hosts = set()
    for entry in driver.get_log('performance'):
      message = json.loads(entry['message'])['message']
      if message['method'] == 'Network.requestWillBeSent':
        parsed = urllib.parse.urlparse(message['params']['request']['url'])
        if parsed.scheme not in ('data', 'blob'):
          hosts.add(parsed.netloc)
    assert hosts == {f'127.0.0.1:{app["server"].port}'}
    print(f'first result in the browser after {seconds:.1f} s')
  finally:
    driver.quit()


# ---------------------------------------------------------------------------
# A script: gradio_client against the page's API.


def test_client_api_queue_detector_and_the_demo_library(app, tmp_path):
  # pylint: disable=g-import-not-at-top
  from gradio_client import Client
  from gradio_client import handle_file
  from gradio_client import exceptions
  from hmr_tf.inference import crops
  from hmr_tf.inference import demo_lib
  from hmr_tf.inference import sources
  from hmr_tf.training import checkpoints
  # pylint: enable=g-import-not-at-top
  files = _photo_files(tmp_path)
  # A dark picture with one bright rectangle: the tiny detector's person.
  scene = np.full((240, 320, 3), 30, np.uint8)
  scene[40:200, 100:160] = 220  # x 100..160, y 40..200: box 100,40,60,160
  lamp = str(tmp_path / 'lamp.png')
  cv2.imwrite(lamp, scene)
  client = Client(app['server'].url, verbose=False,
                  download_files=str(tmp_path / 'client'))

  def params_of(result):
    (path,) = [p for p in result[3] if p.endswith('_params.json')]
    with open(path) as f:
      return json.load(f)

  # Four requests at once: the queue runs them one after another and
  # answers every one.
  requests = ((ASTRONAUT, '', WHOLE_IMAGE), (files['wide'], '', WHOLE_IMAGE),
              (ASTRONAUT, '140,20,240,490\n10,10,100,200', WHOLE_IMAGE),
              (lamp, '', DETECTOR))
  jobs = [client.submit(handle_file(path), boxes, finder,
                        api_name='/predict')
          for path, boxes, finder in requests]
  results = [job.result(timeout=300) for job in jobs]
  overlay, side, view, _, timing = results[0]
  assert cv2.imread(overlay).shape == (512, 512, 3)
  assert cv2.imread(side).shape == (512, 512, 3)
  assert view.endswith('.glb') and '1 person' in timing
  # The same numbers as the demo's library on the same checkpoint.
  web = params_of(results[0])['people'][0]
  model = checkpoints.restore_model(app['checkpoint'], app['body'])
  image = sources.load_image(ASTRONAUT)
  ref = demo_lib.run_on_image(model, image,
                              crops.crop_whole_image(image.shape))
  np.testing.assert_allclose(web['pose'], ref['pose'], atol=1e-4)
  np.testing.assert_allclose(web['cam_t_full'], ref['cam_t_full'],
                             rtol=1e-4)
  assert cv2.imread(results[1][0]).shape == (300, 512, 3)
  # Two boxes: two people, a mesh each, one JSON with both.
  names = sorted(os.path.basename(p) for p in results[2][3])
  for k in (0, 1):
    assert f'astronaut_person{k}_mesh.obj' in names
    assert f'astronaut_person{k}_mesh.glb' in names
  assert params_of(results[2])['num_people'] == 2
  assert [p['box'] for p in params_of(results[2])['people']] == [
      [140, 20, 240, 490], [10, 10, 100, 200]]
  assert '2 people' in results[2][4]
  # The detector (--detector): the bright rectangle, its score.
  found = params_of(results[3])['people']
  assert len(found) == 1 and found[0]['detector_score'] == pytest.approx(0.95)
  np.testing.assert_allclose(found[0]['box'], [100, 40, 60, 160], atol=1e-3)
  # Bad input: the app's message reaches the script; the app goes on.
  with pytest.raises(exceptions.AppError, match='Person boxes: line 1'):
    client.predict(handle_file(ASTRONAUT), '1,2,3', WHOLE_IMAGE,
                   api_name='/predict')
  with pytest.raises(exceptions.AppError, match='notes.txt: not a readable'):
    client.predict(handle_file(files['text']), '', WHOLE_IMAGE,
                   api_name='/predict')
  dark = str(tmp_path / 'dark.png')
  cv2.imwrite(dark, np.full((64, 64, 3), 30, np.uint8))
  with pytest.raises(exceptions.AppError,
                     match=f'dark.png: no person found by {DETECTOR}'):
    client.predict(handle_file(dark), '', DETECTOR, api_name='/predict')
  again = client.predict(handle_file(ASTRONAUT), '', WHOLE_IMAGE,
                         api_name='/predict')
  assert '1 person' in again[4]
