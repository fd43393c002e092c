"""TensorBoard pictures of predictions: image panels and 3D meshes.

Training (`hmr_tf.training.callbacks`) and evaluation
(`hmr_tf.evaluation.evaluate`) write the same two summaries of a few fixed
examples:
- the image panels (input + ground-truth keypoints | predicted keypoints |
  predicted mesh), through `tf.summary.image`;
- the predicted meshes themselves, through TensorBoard's mesh plugin
  (`tensorboard.plugins.mesh.summary_v2`), shown in its "Mesh" tab as 3D
  views that can be turned.

The mesh plugin's viewer (three.js) has y up; the model's meshes are in the
camera frame (y down, z forward), so they are written turned by a half turn
about x: (x, y, z) -> (x, −y, −z) (`DISPLAY_FROM_MODEL`), as the .glb files
are (`hmr_tf.inference.gltf`). Nothing else changes: the vertices are the
model's, before the camera.

Unlike the rest of `hmr_tf.render` (NumPy and OpenCV), this module imports
TensorFlow.
"""

from typing import Optional

import cv2
import numpy as np
import tensorflow as tf
from tensorboard.plugins.mesh import summary_v2 as mesh_summary

from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import renderer

# Model (camera) frame -> the mesh viewer's frame (y up): a half turn about x.
DISPLAY_FROM_MODEL = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
# One light blue for every vertex (RGB): the viewer shades it.
MESH_COLOR = (166, 189, 219)

PANELS_DESCRIPTION = ('input + ground-truth keypoints | predicted keypoints | '
                      'predicted mesh')
MESH_DESCRIPTION = ('predicted meshes of the examples shown in the image '
                    'panels, in the camera frame turned y-up (x, -y, -z)')


def _to_uint8(image: np.ndarray) -> np.ndarray:
  """[S, S, 3] float in [-1, 1] -> uint8."""
  return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)


def example_panels(images: np.ndarray, keypoints_gt: np.ndarray,
                   keypoints_pred: np.ndarray, vertices: np.ndarray,
                   cams: np.ndarray, faces: np.ndarray,
                   display_size: int = 0) -> np.ndarray:
  """Side-by-side pictures of inputs and predictions for TensorBoard.

  Each row is [input + ground-truth keypoints | input + predicted keypoints |
  input + predicted mesh], keypoints drawn with renderer.draw_keypoints and
  the mesh rendered with renderer.render_mesh through HMR's weak-perspective
  camera.

  Args:
    images: [K, S, S, 3] float crops in [-1, 1].
    keypoints_gt: [K, 19, 3] ground truth (x, y in [-1, 1], visibility).
    keypoints_pred: [K, 19, 2] predicted keypoints in [-1, 1].
    vertices: [K, N, 3] predicted mesh (the model's frame, before the
      camera).
    cams: [K, 3] predicted (s, tx, ty).
    faces: [F, 3] int mesh faces.
    display_size: side D of each picture; 0 = max(S, 160) (small training
      crops are enlarged so the drawings stay legible).

  Returns:
    [K, D, 3 * D, 3] uint8 RGB.
  """
  images = np.asarray(images)
  size = images.shape[1]
  d = int(display_size) or max(size, 160)
  panels = []
  for k in range(images.shape[0]):
    base = cv2.resize(_to_uint8(images[k]), (d, d),
                      interpolation=cv2.INTER_LINEAR)
    gt = keypoints_gt[k]
    # cv2.resize keeps pixel centres aligned, so crop coordinates map into
    # the D-pixel picture as into the S-pixel crop (crop_lib's convention).
    with_gt = renderer.draw_keypoints(
        base, crop_lib.crop_to_pixels_np(gt[:, :2], d), gt[:, 2] > 0)
    with_pred = renderer.draw_keypoints(
        base, crop_lib.crop_to_pixels_np(keypoints_pred[k], d))
    verts = np.asarray(vertices[k], np.float64)
    if np.all(np.isfinite(verts)) and np.all(np.isfinite(cams[k])):
      projected = renderer.weak_perspective_to_pixels(verts, cams[k], d)
      mesh = renderer.render_mesh(projected, faces, d, d, background=base,
                                shading_vertices=verts).image
    else:
      mesh = base
    panels.append(np.concatenate([with_gt, with_pred, mesh], axis=1))
  return np.stack(panels)


def write_mesh_summary(tag: str, vertices, faces: np.ndarray, step: int,
                       colors: Optional[np.ndarray] = None,
                       description: str = MESH_DESCRIPTION) -> None:
  """Writes meshes with TensorBoard's mesh plugin (one summary, K meshes).

  Call inside a summary writer's default context.

  Args:
    tag: the summary name; the plugin stores `<tag>_VERTEX`, `<tag>_FACE`
      and `<tag>_COLOR`.
    vertices: [K, N, 3] meshes in the model's (camera) frame.
    faces: [F, 3] int faces, shared by the K meshes.
    step: the summary step.
    colors: [K, N, 3] uint8 RGB; None: `MESH_COLOR` everywhere.
    description: shown under the mesh in TensorBoard.
  """
  vertices = np.asarray(vertices, np.float32) @ DISPLAY_FROM_MODEL.T
  num = vertices.shape[0]
  # The plugin pairs each mesh with its own faces and colours.
  faces = np.broadcast_to(np.asarray(faces, np.int32),
                          (num,) + np.shape(faces))
  if colors is None:
    colors = np.broadcast_to(np.asarray(MESH_COLOR, np.uint8),
                             vertices.shape)
  mesh_summary.mesh(tag, vertices=tf.constant(vertices),
                    faces=tf.constant(faces), colors=tf.constant(colors),
                    step=step, description=description)


def write_examples(image_tag: str, mesh_tag: str, images: np.ndarray,
                   keypoints_gt: np.ndarray, outputs, faces: np.ndarray,
                   step: int, num_meshes: int) -> None:
  """Writes the image panels of K examples and the meshes of the first few.

  Call inside a summary writer's default context.

  Args:
    image_tag: tag of the image panels.
    mesh_tag: tag of the meshes.
    images: [K, S, S, 3] float crops in [-1, 1].
    keypoints_gt: [K, 19, 3] ground truth (x, y in [-1, 1], visibility).
    outputs: the model's outputs on `images` (a dict with 'keypoints2d'
      [K, 19, 2], 'vertices' [K, N, 3] and 'cam' [K, 3], tensors or arrays).
    faces: [F, 3] mesh faces.
    step: the summary step.
    num_meshes: meshes written (the first ones; 0: none).
  """
  vertices = np.asarray(outputs['vertices'])
  panels = example_panels(images, keypoints_gt,
                          np.asarray(outputs['keypoints2d']), vertices,
                          np.asarray(outputs['cam']), faces)
  # max_outputs: tf.summary.image keeps only 3 images by default.
  tf.summary.image(image_tag, panels, step=step, max_outputs=len(panels),
                   description=PANELS_DESCRIPTION)
  num_meshes = min(int(num_meshes), len(vertices))
  if num_meshes > 0 and np.all(np.isfinite(vertices[:num_meshes])):
    write_mesh_summary(mesh_tag, vertices[:num_meshes], faces, step)
