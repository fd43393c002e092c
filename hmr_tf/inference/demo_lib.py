"""The demo's model stage: crops in, predictions in the image's pixels out.

The demo's flow (docs/ARCHITECTURE.md) reads image source
(hmr_tf.inference.sources) -> people (people, detectors) -> crops (crops) ->
model (this module) -> tracks (tracking, smoothing; video.py for a video)
-> writers (writers, gltf). `run_streaming` runs the model over a stream of
(key, image, crop) in batches; `run_on_photo` is the whole flow for one
photograph (the command line's and the web page's entry).

Camera. HMR predicts a weak-perspective camera (s, tx, ty) of the crop:
x_n = s * (X + tx). The demo also gives the body's place in a perspective
camera of the whole image, the camera later HMR systems output: focal
length f (default: the image diagonal, `--focal_length` overrides it),
principal point at the image centre ((W - 1) / 2, (H - 1) / 2), the body
moved by cam_t_full = (TX, TY, TZ) with TZ = 2 f / (window * s) and
(TX, TY) = t + 2 (center - principal point) / (window * s)
(hmr_tf.geometry.camera.full_image_translation and its NumPy twin
full_image_translation_np, which the demo uses). Points at the body's depth
project exactly where the weak-perspective camera puts them; nearer parts a
little larger. The JSON and the overlay use this camera.
"""

import dataclasses
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from hmr_tf.geometry import camera
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.inference import crops as crops_lib
from hmr_tf.inference import writers
from hmr_tf.inference.sources import DemoInputError


def check_faces(body_model) -> None:
  """Stops with one line when the body model has no faces to render.

  A model imported from the original checkpoint without the SMPL file has
  the arrays to pose the body but not its triangles.
  """
  if not len(body_model.faces):
    raise DemoInputError(
        f'the body model ({body_model.metadata.get("name", "unnamed")}) has '
        'no faces to render; pass --smpl_model_path=the SMPL file (for the '
        'released HMR model: neutral_smpl_with_cocoplus_reg.pkl)')


def to_image_coordinates(prediction: Dict[str, np.ndarray],
                         crop: crops_lib.Crop,
                         image_shape,
                         focal_length: Optional[float] = None) -> Dict:
  """Adds image-pixel quantities to one example's prediction.

  Args:
    prediction: numpy arrays of one example: cam [3], pose [72], shape [10],
      vertices [N, 3], joints3d [24, 3], keypoints3d [19, 3], keypoints2d
      [19, 2] (crop coordinates).
    crop: where the crop came from.
    image_shape: (height, width, ...) of the image.
    focal_length: the full-image camera's focal length in pixels; None: the
      image diagonal.

  Returns:
    The prediction plus 'keypoints2d_image' [19, 2] (image pixels),
    'camera_image' (the weak-perspective camera in image pixels: x_px =
    scale_px * (X + tx) + center), 'cam_t_full' [3] and 'perspective'
    (focal_px, principal_point, translation = cam_t_full: the full-image
    camera of the module docstring) and 'crop'.
  """
  out = dict(prediction)
  center = np.asarray(crop.center, np.float64)
  s, tx, ty = (float(v) for v in prediction['cam'])
  out['keypoints2d_image'] = crop_lib.crop_to_image_np(
      prediction['keypoints2d'], center, crop.window)
  height, width = image_shape[:2]
  if focal_length is None:
    focal_length = camera.default_focal_length_np((height, width))
  trans = camera.full_image_translation_np(
      prediction['cam'], center, crop.window, (height, width), focal_length)
  out['camera_image'] = {'scale_px': s * (crop.window / 2.0), 'tx': tx,
                         'ty': ty, 'center_px': center.tolist()}
  out['cam_t_full'] = trans
  out['perspective'] = {
      'focal_px': float(focal_length),
      'principal_point': list(crop_lib.image_center(height, width)),
      'translation': trans.tolist()}
  out['crop'] = {'center': list(crop.center), 'scale': crop.scale,
                 'window_px': crop.window, 'source': crop.source}
  if crop.box is not None:
    out['crop']['box'] = [float(v) for v in crop.box]
  if crop.score is not None:
    out['crop']['score'] = float(crop.score)
  return out


def _run_batch(model, batch: Sequence[tuple], on_result: Callable,
               focal_length: Optional[float]) -> None:
  """One forward pass over [(key, image, crop)]; on_result per image."""
  size = model.config.img_size
  # The window follows the crop rule the model was trained with.
  batch = [(key, image, dataclasses.replace(
      crop, base_crop_size=model.config.base_crop_size))
           for key, image, crop in batch]
  crops = np.stack([crops_lib.crop_image(image, crop, size)
                    for _, image, crop in batch])
  out = model(crops, training=False)
  out = {k: np.asarray(v) for k, v in out.items()}
  for i, (key, image, crop) in enumerate(batch):
    one = {k: v[i] for k, v in out.items()}
    on_result(key, image, to_image_coordinates(one, crop, image.shape,
                                               focal_length))


def run_streaming(model, items: Iterable[tuple], on_result: Callable,
                  batch_size: int = 8, progress=None,
                  focal_length: Optional[float] = None) -> int:
  """Runs the model over a stream of images, holding one batch at a time.

  Images are read from `items` as they are needed and dropped once their
  results are handed on, so memory stays flat however long the stream (a
  video, a folder of photographs).

  Args:
    model: an HMRModel (`model.config.img_size` gives S).
    items: (key, uint8 RGB [H, W, 3] image, Crop) tuples, e.g. a generator.
    on_result: callable(key, image, result) for each image, in order
      (result: see `to_image_coordinates`).
    batch_size: images per forward pass.
    progress: optional callable(num_done) called after each batch.
    focal_length: the full-image camera's focal length in pixels (None: each
      image's diagonal).

  Returns:
    The number of images processed.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size: expected >= 1, got {batch_size}')
  done = 0
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == batch_size:
      _run_batch(model, batch, on_result, focal_length)
      done += len(batch)
      batch = []
      if progress is not None:
        progress(done)
  if batch:
    _run_batch(model, batch, on_result, focal_length)
    done += len(batch)
    if progress is not None:
      progress(done)
  return done


def run_on_images(model, images: Sequence[np.ndarray],
                  crops: Sequence[crops_lib.Crop],
                  batch_size: int = 8, progress=None,
                  focal_length: Optional[float] = None) -> List[Dict]:
  """Runs the model on crops of several images, batched.

  Args:
    model: an HMRModel (`model.config.img_size` gives S).
    images: uint8 RGB [H, W, 3] images.
    crops: one Crop per image.
    batch_size: images per forward pass.
    progress: optional callable(num_done) called after each batch.
    focal_length: the full-image camera's focal length in pixels (None: each
      image's diagonal).

  Returns:
    One dict per image (see `to_image_coordinates`).
  """
  results = []
  run_streaming(model, ((i, im, c) for i, (im, c) in
                        enumerate(zip(images, crops))),
                lambda key, image, result: results.append(result),
                batch_size=batch_size, progress=progress,
                focal_length=focal_length)
  return results


def run_on_image(model, image: np.ndarray, crop: crops_lib.Crop) -> Dict:
  """One image (see `run_on_images`)."""
  return run_on_images(model, [image], [crop], batch_size=1)[0]


def run_on_photo(model, image: np.ndarray, find_people: Callable,
                 output_dir: Optional[str] = None, stem: str = 'photo',
                 faces: Optional[np.ndarray] = None, source: str = '',
                 focal_length: Optional[float] = None,
                 batch_size: int = 8) -> Dict:
  """The demo's whole flow on one photograph: people, model, files.

  Args:
    model: an HMRModel (or anything with its call and `config`).
    image: uint8 RGB [H, W, 3].
    find_people: callable(image) -> list of Crop, one per person (a
      detector's `people.people_finder`, or a fixed rule such as
      `lambda im: [crops.crop_whole_image(im.shape)]`).
    output_dir: where to write the files; None: write nothing.
    stem: the files' name prefix.
    faces: [F, 3] the body model's faces (needed to write).
    source: the input's name, recorded in the JSON.
    focal_length: the full-image camera's focal length (None: the diagonal).
    batch_size: people per forward pass.

  Returns:
    {'results': one dict per person (see `to_image_coordinates`), best
    detection first; 'paths': {key: path} of the files written (the
    overlay, side view, keypoints, params, and per person k `mesh_k`
    (.obj) and `glb_k` (.glb)), empty when nothing was written}.

  Raises:
    DemoInputError: nobody found in the image.
  """
  crops = find_people(image)
  if not crops:
    raise DemoInputError(f'{source or stem}: no person found')
  results = run_on_images(model, [image] * len(crops), crops,
                          batch_size=batch_size, focal_length=focal_length)
  paths = {}
  if output_dir is not None:
    if faces is None:
      raise ValueError('run_on_photo: faces are needed to write the files')
    paths = writers.write_people_outputs(output_dir, stem, image, results,
                                         faces, source=source)
  return {'results': results, 'paths': paths}
