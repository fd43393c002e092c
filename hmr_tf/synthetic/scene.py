"""One synthetic example's picture and 2D labels, from a posed mesh.

Everything here is NumPy + OpenCV (no TensorFlow), so worker processes that
render in parallel start fast. `SceneRenderer.render` takes a posed body in
HMR's camera frame (x right, y down, z away from the camera; metres) and a
per-example seed, and returns the JPEG, the exact 2D keypoints with
visibility, and the crop facts for the record.

Camera (weak perspective, as HMR's): pixel = f_px * (X, Y) + offset, depth =
f_px * Z (depth in pixel units, so shading normals are undistorted). f_px
makes the diagonal of the 14 LSP keypoints' box (the original converters'
person height) 150 * S / 224 pixels times a random factor, i.e. ~150 px in a
224 crop (HMR's normalisation) for any image size S. The box centre lands at
the image centre plus a random shift. About 10% of the examples are
truncated: enlarged and pushed over one image border.

The stored image is the crop itself: `image/center` is the image centre
(S // 2, an integer as the schema requires, and the point the camera places
the body relative to) and `image/scale` = 224 / S, so the parser's window
224 / scale = S covers the stored image exactly, and its crop coordinates
(p - center) * 2 / S equal HMR's (px / S) * 2 - 1.

Scene options (`SceneConfig.part_colors`, `.background`, `.antialias`): by default every
example draws its own colour for each of the 24 body parts (like clothing)
and a cluttered background (gradient, blotches and random shapes).
'fixed' part colours give every part the same colour in every image (left
and right parts differ; see `fixed_part_palette`), and a 'plain' background
keeps the gradient and blotches without the shapes: an easier scene, where
a small network learns the parts' layout within minutes on a CPU (the
quickstart's choice). Without `antialias` the silhouette's edge pixels are
the body's or the background's colour, not a blend (rendering takes ~40%
less time). The example's random draws are the same either way, so one seed
gives the same body, camera and light under every option.

Visibility rule: a keypoint is visible when it lies inside the image (pixel
centres 0..S-1) and at least one of its support vertices is seen. The
support vertices are the `num_support` template vertices nearest to the
keypoint in the rest pose (the surface around the joint; the keypoint itself
is inside the body, so its own depth cannot be tested against the surface).
A support vertex is seen when it lies inside the image and its depth is at
most the z-buffer's depth at its pixel plus `depth_tolerance` metres (or the
pixel is empty: a vertex on the silhouette). So a joint hidden behind
another body part (or behind its own body, e.g. the far hip in profile) is
invisible; one whose surface shows anywhere is visible.
"""

import dataclasses
import time
from typing import Dict, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from hmr_tf import configs
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import renderer

NUM_LSP = 14
# Scene options (SceneConfig.part_colors, SceneConfig.background).
PART_COLORS = configs.PART_COLORS
BACKGROUNDS = configs.BACKGROUNDS


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """Options of the camera, truncation, lighting and visibility rule.

  Attributes:
    scale_min, scale_max: range of the random person-size factor.
    shift_max: max shift of the person's box centre from the image centre,
      as a fraction of the image size (per axis).
    truncation_fraction: fraction of examples pushed over a border.
    truncation_scale: person-size factor range of truncated examples.
    truncation_overhang: fraction of the person's box beyond the border.
    ambient_min, ambient_max: range of the ambient light.
    noise_max: max standard deviation of the pixel noise (0..255 levels).
    num_support: support vertices per keypoint (visibility rule).
    depth_tolerance: metres a support vertex may lie behind the z-buffer.
    part_colors: 'random' (each example draws the 24 parts' colours) or
      'fixed' (`fixed_part_palette` in every example).
    background: 'clutter' (gradient, blotches and random shapes) or 'plain'
      (gradient and blotches only).
    antialias: blend the silhouette's edge pixels with the background by
      their coverage (`renderer.render_mesh`); off, every pixel is the body
      or the background (about 40% less rendering time; the quickstart's
      64-px crops of 128-px images resample the edges anyway).
  """
  scale_min: float = 0.85
  scale_max: float = 1.15
  shift_max: float = 0.08
  truncation_fraction: float = 0.1
  truncation_scale: tuple = (1.0, 1.4)
  truncation_overhang: tuple = (0.15, 0.45)
  ambient_min: float = 0.25
  ambient_max: float = 0.6
  noise_max: float = 6.0
  num_support: int = 16
  depth_tolerance: float = 0.02
  part_colors: str = configs.SyntheticConfig.part_colors
  background: str = configs.SyntheticConfig.background
  antialias: bool = configs.SyntheticConfig.antialias

  def __post_init__(self):
    configs.check_choice('part_colors', self.part_colors, PART_COLORS)
    configs.check_choice('background', self.background, BACKGROUNDS)


class SceneResult(NamedTuple):
  """One rendered example.

  Attributes:
    jpeg: the encoded image (RGB content, JPEG bytes).
    keypoints: [19, 3] float64 (x px, y px, visibility 0/1), cocoplus order.
    center: [2] int, the crop centre stored as `image/center`.
    scale: `image/scale` (= 224 / S).
    truncated: whether the example was pushed over a border.
    timings: seconds spent per stage ('rendering', 'jpeg').
  """
  jpeg: bytes
  keypoints: np.ndarray
  center: np.ndarray
  scale: float
  truncated: bool
  timings: Dict[str, float]


def face_parts(weights: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """[F] body part of each face: the argmax joint of its mean skin weight."""
  return np.argmax(weights[faces].mean(axis=1), axis=1).astype(np.int32)


def support_vertices(v_template: np.ndarray, keypoint_regressor: np.ndarray,
                     num_support: int) -> np.ndarray:
  """[K, M] indices of the template vertices nearest each rest keypoint."""
  rest = keypoint_regressor @ v_template  # [K, 3]
  dist = np.linalg.norm(v_template[None] - rest[:, None], axis=-1)
  num_support = min(num_support, v_template.shape[0])
  nearest = np.argpartition(dist, num_support - 1, axis=1)[:, :num_support]
  # Sorted by distance so the result does not depend on argpartition.
  order = np.take_along_axis(dist, nearest, 1).argsort(axis=1, kind='stable')
  return np.take_along_axis(nearest, order, 1)


def keypoint_visibility(keypoints_px: np.ndarray, support_px: np.ndarray,
                        depth: np.ndarray, tolerance: float) -> np.ndarray:
  """The visibility rule of the module docstring.

  Args:
    keypoints_px: [K, 2] keypoint pixels (x, y).
    support_px: [K, M, 3] support vertices: pixel x, pixel y, depth (in the
      z-buffer's units).
    depth: [H, W] z-buffer (inf where empty).
    tolerance: allowed depth behind the z-buffer, z-buffer units.

  Returns:
    [K] bool.
  """
  height, width = depth.shape
  inside = ((keypoints_px[:, 0] >= 0) & (keypoints_px[:, 0] <= width - 1) &
            (keypoints_px[:, 1] >= 0) & (keypoints_px[:, 1] <= height - 1))
  col = np.round(support_px[..., 0])
  row = np.round(support_px[..., 1])
  on_image = (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
  col = np.where(on_image, col, 0).astype(np.int64)
  row = np.where(on_image, row, 0).astype(np.int64)
  surface = depth[row, col]
  seen = on_image & (support_px[..., 2] <= surface + tolerance)
  return inside & np.any(seen, axis=1)


def fixed_part_palette(num_parts: int) -> np.ndarray:
  """[num_parts, 3] RGB in [0, 1]: one distinct colour per body part.

  Hues step by the golden ratio around the colour wheel (neighbouring part
  indices, e.g. a left and a right joint, get far-apart hues), with
  alternating brightness so parts of similar hue still differ.
  """
  k = np.arange(num_parts)
  hue = (k * 0.6180339887498949) % 1.0
  value = np.where(k % 2 == 0, 0.95, 0.6)
  saturation = np.where(k % 3 == 0, 0.55, 0.85)
  # HSV -> RGB, written out (colorsys is per colour).
  sector = np.floor(hue * 6.0)
  f = hue * 6.0 - sector
  p = value * (1 - saturation)
  q = value * (1 - f * saturation)
  t = value * (1 - (1 - f) * saturation)
  table = [(value, t, p), (q, value, p), (p, value, t), (p, q, value),
           (t, p, value), (value, p, q)]
  rgb = np.zeros([num_parts, 3])
  for i, (r, g, b) in enumerate(table):
    on = sector % 6 == i
    rgb[on] = np.stack([r, g, b], -1)[on]
  return rgb


def random_background(rng: np.random.Generator, size: int,
                      shapes: bool = True) -> np.ndarray:
  """A smooth random gradient, low-frequency blotches and random shapes.

  Args:
    rng: the example's generator.
    size: image side.
    shapes: draw the random shapes; without them the generator still draws
      the shapes' numbers, so what it draws next is the same either way.

  Returns:
    [size, size, 3] uint8 RGB.
  """
  # Built on a coarse grid and upsampled smoothly: a linear gradient between
  # two colours plus low-frequency blotches (cheap at any image size).
  grid = 8
  c0, c1 = rng.random(3) * 255, rng.random(3) * 255
  angle = rng.random() * 2 * np.pi
  ramp = np.linspace(-1.0, 1.0, grid)
  t = 0.5 + 0.5 * (np.cos(angle) * ramp[None, :] +
                   np.sin(angle) * ramp[:, None]) / np.sqrt(2.0)
  coarse = c0 * (1 - t[..., None]) + c1 * t[..., None]
  coarse += rng.normal(0.0, 30.0, (grid, grid, 3))
  coarse = np.clip(coarse, 0, 255).astype(np.float32)
  image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
  image = np.clip(image, 0, 255).astype(np.uint8)
  for _ in range(int(rng.integers(2, 7))):
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    kind = int(rng.integers(0, 3))
    p = rng.random(4) * size
    width = int(1 + rng.integers(0, 1 + size // 32)) if kind == 2 else 0
    if not shapes:
      continue
    if kind == 0:
      cv2.circle(image, (int(p[0]), int(p[1])), int(3 + p[2] / 5), color, -1,
                 cv2.LINE_AA)
    elif kind == 1:
      cv2.rectangle(image, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])),
                    color, -1)
    else:
      cv2.line(image, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), color,
               width, cv2.LINE_AA)
  return image


def _camera(rng: np.random.Generator, keypoints: np.ndarray, size: int,
            config: SceneConfig):
  """Samples f_px and the pixel offset; see the module docstring.

  Args:
    rng: the example's generator.
    keypoints: [19, 3] camera-frame keypoints (metres).
    size: S.
    config: options.

  Returns:
    (f_px, offset [2] so that pixel = f_px * (X, Y) + offset, truncated).
  """
  lsp = keypoints[:NUM_LSP, :2]
  lo, hi = lsp.min(axis=0), lsp.max(axis=0)
  diag = max(float(np.linalg.norm(hi - lo)), 1e-6)
  centre = np.array([size // 2, size // 2], np.float64)
  truncated = bool(rng.random() < config.truncation_fraction)
  if truncated:
    factor = rng.uniform(*config.truncation_scale)
  else:
    factor = rng.uniform(config.scale_min, config.scale_max)
  f_px = (crop_lib.PERSON_HEIGHT_PX * size / crop_lib.BASE_CROP_SIZE * factor
          / diag)
  box_centre = f_px * (lo + hi) / 2
  half = f_px * (hi - lo) / 2
  shift = (2 * rng.random(2) - 1) * config.shift_max * size
  if truncated:
    axis = int(rng.integers(0, 2))
    side = 1.0 if rng.random() < 0.5 else -1.0
    overhang = rng.uniform(*config.truncation_overhang) * 2 * half[axis]
    # The box's edge on `side` ends `overhang` pixels beyond that border.
    edge = (size - 1.0 + overhang) if side > 0 else -overhang
    shift[axis] = edge - side * half[axis] - centre[axis]
  offset = centre + shift - box_centre
  return f_px, offset, truncated


class SceneRenderer:
  """Renders examples of one body model (faces and parts fixed)."""

  def __init__(self, faces: np.ndarray, weights: np.ndarray,
               v_template: np.ndarray, keypoint_regressor: np.ndarray,
               img_size: int, config: SceneConfig = SceneConfig()):
    """Precomputes the face parts and the keypoints' support vertices.

    Args:
      faces: [F, 3] int.
      weights: [N, 24] skinning weights.
      v_template: [N, 3] rest mesh (metres).
      keypoint_regressor: [19, N] cocoplus regressor.
      img_size: S, the image side in pixels.
      config: scene options.
    """
    if img_size < 8:
      raise ValueError(f'img_size: expected >= 8, got {img_size}')
    self.faces = np.asarray(faces, np.int32)
    self.parts = face_parts(np.asarray(weights), self.faces)
    self.num_parts = int(np.asarray(weights).shape[1])
    self.support = support_vertices(np.asarray(v_template, np.float64),
                                    np.asarray(keypoint_regressor, np.float64),
                                    config.num_support)
    self.img_size = int(img_size)
    self.config = config
    self.fixed_palette = fixed_part_palette(self.num_parts)
    # [F, 3] face colours of the fixed palette, gathered once.
    self._fixed_face_colors = self.fixed_palette[self.parts]

  def render(self, vertices: np.ndarray, keypoints: np.ndarray,
             seed: np.random.SeedSequence,
             return_debug: bool = False):
    """Renders one example.

    Args:
      vertices: [N, 3] posed mesh in the camera frame (metres).
      keypoints: [19, 3] posed cocoplus keypoints, same frame.
      seed: the example's scene seed (camera, colours, light, background).
      return_debug: also return a dict with the `renderer.RenderResult`
      ('render'), the background image ('background') and the camera
      ('f_px', 'offset'), for tests.

    Returns:
      A `SceneResult`, or (SceneResult, debug dict) when `return_debug`.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    size, cfg = self.img_size, self.config
    vertices = np.asarray(vertices, np.float64)
    keypoints = np.asarray(keypoints, np.float64)
    f_px, offset, truncated = _camera(rng, keypoints, size, cfg)
    background = random_background(rng, size,
                                   shapes=cfg.background == 'clutter')
    palette = 0.15 + 0.8 * rng.random((self.num_parts, 3))
    face_colors = (self._fixed_face_colors if cfg.part_colors == 'fixed' else
                   palette[self.parts])
    light = np.array([2 * rng.random() - 1, 2 * rng.random() - 1,
                      -1.0 - rng.random()])
    ambient = rng.uniform(cfg.ambient_min, cfg.ambient_max)
    noise = rng.random() * cfg.noise_max
    noise_seed = rng.integers(0, 2**31 - 1)

    projected = np.empty_like(vertices)
    projected[:, :2] = f_px * vertices[:, :2] + offset
    projected[:, 2] = f_px * vertices[:, 2]
    result = renderer.render_mesh(projected, self.faces, size, size,
                                background=background,
                                face_colors=face_colors,
                                light_dir=light, ambient=ambient,
                                antialias=cfg.antialias)
    image = result.image
    if noise > 0:
      # Sensor noise from OpenCV's generator (fast), seeded per example.
      cv2.setRNGSeed(int(noise_seed))
      pixel_noise = np.empty(image.shape, np.int16)
      cv2.randn(pixel_noise, 0.0, float(noise))
      image = cv2.add(image, pixel_noise, dtype=cv2.CV_8U)
    kp_px = f_px * keypoints[:, :2] + offset
    support_px = projected[self.support]  # [K, M, 3]
    visible = keypoint_visibility(kp_px, support_px, result.depth,
                                  cfg.depth_tolerance * f_px)
    labels = np.concatenate([kp_px, visible[:, None].astype(np.float64)], 1)
    rendered = time.perf_counter()
    ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, configs.JPEG_QUALITY])
    if not ok:
      raise RuntimeError('cv2.imencode failed to encode a JPEG')
    done = time.perf_counter()
    out = SceneResult(jpeg=encoded.tobytes(), keypoints=labels,
                      center=np.array([size // 2, size // 2], np.int64),
                      scale=crop_lib.BASE_CROP_SIZE / size, truncated=truncated,
                      timings={'rendering': rendered - start,
                               'jpeg': done - rendered})
    if return_debug:
      return out, {'render': result, 'background': background,
                   'f_px': f_px, 'offset': offset}
    return out


# Worker-process state for multiprocessing (set by `init_worker`).
_WORKER: Optional[SceneRenderer] = None
_WORKER_MESHES: Optional[np.ndarray] = None


def init_worker(scene_renderer: SceneRenderer, meshes,
                shape: Tuple[int, ...]) -> None:
  """Pool initializer: keeps the renderer and the shared mesh block.

  Args:
    scene_renderer: the renderer every job uses.
    meshes: the shared float32 buffer (a multiprocessing RawArray) the
      parent writes the meshes into, `shape` [slots, batch, N, 3]; a job of
      `render_shared_in_worker` names a slot and a row of it.
    shape: the buffer's shape.
  """
  global _WORKER, _WORKER_MESHES
  _WORKER = scene_renderer
  _WORKER_MESHES = np.frombuffer(meshes, np.float32).reshape(shape)
  # One OpenCV thread: the pool has a worker per core already.
  cv2.setNumThreads(1)


def render_shared_in_worker(job):
  """Pool task: job = (slot, row, keypoints, seed) -> SceneResult.

  The vertices are row `row` of slot `slot` of the shared mesh block.
  """
  slot, row, keypoints, seed = job
  return _WORKER.render(_WORKER_MESHES[slot, row], keypoints, seed)


def worker_ready(_) -> bool:
  """Pool task that returns once the worker is initialised."""
  return _WORKER is not None
