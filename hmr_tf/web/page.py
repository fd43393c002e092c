"""The gradio page: upload a photo, see the mesh, download the files.

The page calls one function (`Predictor.run`, the demo's library) through
gradio's queue: requests wait their turn (one runs at a time: the model
holds both cores) rather than being dropped, up to a bounded queue. A bad
upload or box raises gr.Error with the predictor's one-line message, which
gradio shows in the page; the server keeps serving. The page's API
(`/predict`) is what `gradio_client` scripts call.

No request leaves the machine: analytics off (here and through
GRADIO_ANALYTICS_ENABLED, set by the command line before gradio loads), no
share link, and gradio's default theme, whose fonts are served by the app
itself.
"""

import json
import os
from typing import List, Optional, Tuple

import gradio as gr

from hmr_tf import resources
from hmr_tf.web import predict as predict_lib

EXAMPLES_DIR = resources.WEB_EXAMPLES_DIR
# Element ids the browser test (and anyone styling the page) finds things by.
IDS = dict(photo='photo', boxes='boxes', finder='finder', run='run',
           overlay='overlay', side='side', view3d='view3d',
           downloads='downloads', timing='timing')


def examples() -> List[List[str]]:
  """The bundled example rows [photo path, boxes] (examples/examples.json)."""
  with open(os.path.join(EXAMPLES_DIR, 'examples.json')) as f:
    rows = json.load(f)
  return [[os.path.join(EXAMPLES_DIR, r['file']), r['boxes']] for r in rows]


def _timing(result: predict_lib.WebResult) -> str:
  s = result.seconds
  people = (f'{result.num_people} person' if result.num_people == 1 else
            f'{result.num_people} people')
  return (f'**{people}** · read {s["read"]:.2f} s · finding people '
          f'{s["people"]:.2f} s · model, pictures and files '
          f'{s["model and files"]:.2f} s · total {s["total"]:.2f} s')


def build(predictor: predict_lib.Predictor, about: str = '',
          default_finder: str = predict_lib.WHOLE_IMAGE) -> gr.Blocks:
  """The page around `predictor` (launch it with `launch`).

  Args:
    predictor: runs one photo (hmr_tf.web.predict.Predictor).
    about: a line on the model (which checkpoint, which body model).
    default_finder: the detector chosen when the page opens (one of
      predictor.finders).
  """

  def run(photo: Optional[str], boxes: str,
          finder: Optional[str] = None) -> Tuple:
    if not photo:
      raise gr.Error('Upload a photo first (or pick an example).',
                     duration=None)
    name = os.path.basename(photo)
    try:
      result = predictor.run(photo, name, boxes or '',
                             finder or default_finder)
    except predict_lib.UploadError as e:
      raise gr.Error(str(e), duration=None) from e
    return (result.overlay, result.side, result.view_mesh, result.downloads,
            _timing(result))

  with gr.Blocks(title='hmr_tf: HMR web demo', analytics_enabled=False,
                 delete_cache=(3600, 3600)) as page:
    gr.Markdown(
        '## hmr_tf: a body mesh from one photo (HMR)\n'
        'Upload a photo of a person, or pick an example. With boxes (one '
        '`x,y,w,h` a line, in pixels) every box is run; without, the '
        'detector finds the people, or with none the whole image is taken '
        'as one tightly framed person (the demo\'s rules).' +
        (f'\n\n{about}' if about else ''))
    with gr.Row():
      with gr.Column(scale=1):
        photo = gr.File(label='Photo', type='filepath', elem_id=IDS['photo'])
        boxes = gr.Textbox(label='Person boxes (optional)', lines=2,
                           placeholder='x,y,w,h (one a line)',
                           elem_id=IDS['boxes'])
        finder = gr.Dropdown(list(predictor.finders), value=default_finder,
                             label='Find people (without boxes)',
                             elem_id=IDS['finder'])
        button = gr.Button('Run', variant='primary', elem_id=IDS['run'])
        gr.Examples(examples=examples(), inputs=[photo, boxes],
                    label='Examples')
      with gr.Column(scale=2):
        with gr.Row():
          overlay = gr.Image(label='Mesh over the photo', type='filepath',
                             interactive=False, elem_id=IDS['overlay'])
          side = gr.Image(label='Side view', type='filepath',
                          interactive=False, elem_id=IDS['side'])
        view = gr.Model3D(label='3D (drag to turn)', interactive=False,
                          clear_color=(1.0, 1.0, 1.0, 1.0), height=400,
                          elem_id=IDS['view3d'])
        timing = gr.Markdown(elem_id=IDS['timing'])
        downloads = gr.File(label='Downloads (pictures, meshes, JSON)',
                            file_count='multiple', interactive=False,
                            elem_id=IDS['downloads'])
    button.click(run, inputs=[photo, boxes, finder],
                 outputs=[overlay, side, view, downloads, timing],
                 api_name='predict')
  return page


def launch(page: gr.Blocks, host: str, port: int, max_upload_mb: float,
           queue_size: int, allowed_paths: List[str]) -> None:
  """Serves the page until interrupted (blocks the calling thread)."""
  page.queue(default_concurrency_limit=1, max_size=queue_size)
  page.launch(server_name=host, server_port=port, share=False,
              ssr_mode=False, mcp_server=False, pwa=False,
              max_file_size=f'{max_upload_mb:g}mb',
              allowed_paths=allowed_paths + [EXAMPLES_DIR],
              footer_links=['api'], theme=gr.themes.Default())
