"""Mesh renderer on OpenCV + NumPy (no OpenGL): z-buffer, Lambert, AA edges.

Used by the synthetic dataset, the demo, TensorBoard image summaries and the
README pictures. Frames and conventions:

  * Vertices given to `render_mesh` are already projected: x right and y down
    in pixels of the output image, z = depth (larger = farther from the
    camera). Pixel (row r, column c) is centred at (x, y) = (c, r), OpenCV's
    convention, so keypoints drawn by `draw_keypoints` (cv2) land where the
    mesh is rendered. `perspective_project` and `weak_perspective_to_pixels`
    produce such vertices.
  * Images are uint8 RGB (not OpenCV's BGR): convert with
    `cv2.cvtColor(image, cv2.COLOR_RGB2BGR)` before `cv2.imwrite`.
  * Colours passed in are RGB floats in [0, 1].

Rasterization, the z-buffer and the silhouette anti-aliasing live in
`hmr_tf.render.raster`.
"""

import functools
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import raster

DEFAULT_COLOR = (0.65, 0.74, 0.86)  # a light blue-grey, as in HMR's figures

ArrayLike = Union[np.ndarray, Sequence[float]]


class RenderResult(NamedTuple):
  """What `render_mesh` returns.

  Attributes:
    image: [H, W, 3] uint8 RGB, the shaded mesh composited over the
      background.
    mask: [H, W] float32 in [0, 1], the mesh's coverage of each pixel
      (fractional along the silhouette when anti-aliased, else 0 or 1).
    depth: [H, W] float32, depth of the nearest face at the pixel centre; inf
      where no face covers the centre.
    face_index: [H, W] int32, that face's index; -1 where empty.
  """
  image: np.ndarray
  mask: np.ndarray
  depth: np.ndarray
  face_index: np.ndarray


def _as_rgb(color, name: str, rows: Optional[int] = None) -> np.ndarray:
  """Validates colours: [3] or [rows, 3] floats in [0, 1] -> float64."""
  arr = np.asarray(color, dtype=np.float64)
  ok_shape = arr.shape == (3,) or (rows is not None and arr.shape == (rows, 3))
  if not ok_shape:
    expected = '[3]' if rows is None else f'[3] or [{rows}, 3]'
    raise ValueError(f'{name}: expected shape {expected} RGB in [0, 1], got '
                     f'shape {arr.shape}')
  if not np.all((arr >= 0) & (arr <= 1)):
    raise ValueError(f'{name}: RGB values must lie in [0, 1]')
  return arr


def _background(background, height: int, width: int) -> np.ndarray:
  """The background as a fresh uint8 [H, W, 3] image."""
  if background is None:
    return np.zeros((height, width, 3), np.uint8)
  arr = np.asarray(background)
  if arr.ndim == 3:
    if arr.shape != (height, width, 3) or arr.dtype != np.uint8:
      raise ValueError(
          f'background: expected a uint8 [{height}, {width}, 3] image, got '
          f'{arr.dtype} {list(arr.shape)}')
    return arr.copy()
  rgb = _as_rgb(arr, 'background')
  out = np.empty((height, width, 3), np.uint8)
  out[...] = np.round(rgb * 255).astype(np.uint8)
  return out


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Unit face normals turned towards the camera.

  A face's normal is the cross product of two of its edges, flipped where
  needed so that it points towards the camera (negative z), whatever the
  mesh's winding. The visible side of a face is the one facing the camera,
  so this is the right normal for lighting what is seen; meshes with either
  winding, or inconsistent windings, shade the same.

  Args:
    vertices: [N, 3] float, x right, y down, z away from the camera, equal
      units on all axes.
    faces: [F, 3] int.

  Returns:
    [F, 3] float64 unit normals (zero for degenerate faces).
  """
  v = np.asarray(vertices, np.float64)
  p0, p1, p2 = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
  a, b = (p1 - p0).T, (p2 - p0).T  # [3, F] each
  n = np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                a[0] * b[1] - a[1] * b[0]])
  n *= np.where(n[2] > 0, -1.0, 1.0)
  length = np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
  return (n / np.where(length > 0, length, 1.0)).T


def render_mesh(vertices: np.ndarray,
                faces: np.ndarray,
                height: int,
                width: int,
                background=None,
                face_colors: Optional[ArrayLike] = None,
                vertex_colors: Optional[np.ndarray] = None,
                light_dir: ArrayLike = (0.0, 0.0, -1.0),
                ambient: float = 0.3,
                antialias: bool = True,
                shading_vertices: Optional[np.ndarray] = None) -> RenderResult:
  """Renders a triangle mesh, z-buffered and Lambert-shaded, over a background.

  Every pixel shows the face nearest to the camera at the pixel centre
  (a per-pixel z-buffer, so faces that pierce each other are split along
  their intersection line). Its colour is

    colour = base_colour * (ambient + (1 - ambient) * max(0, n . l))

  with n the face normal turned towards the camera (see `face_normals`: both
  windings shade the same) and l the unit `light_dir`. The result is
  composited over the background with the coverage `mask`, which along the
  silhouette is the fraction of a 4 x 4 sub-pixel grid inside the mesh (when
  `antialias`).

  Args:
    vertices: [N, 3] float: x, y in output pixels (x right, y down; pixel
      (r, c) is centred at (c, r)), z = depth (larger = farther; orthographic
      along z). Depth is interpolated linearly in the image plane.
    faces: [F, 3] int vertex indices.
    height: output height in pixels.
    width: output width in pixels.
    background: None (black), an RGB colour [3] in [0, 1], or a uint8
      [H, W, 3] RGB image (not modified).
    face_colors: [3] or [F, 3] RGB in [0, 1]; default `DEFAULT_COLOR`.
      Ignored when `vertex_colors` is given.
    vertex_colors: [N, 3] RGB in [0, 1], interpolated barycentrically (in
      the image plane) inside each face.
    light_dir: [3] direction from the surface towards the light, in the
      camera frame (x right, y down, z away from the camera). The default
      (0, 0, -1) is a light at the camera.
    ambient: in [0, 1], the light every visible face gets.
    antialias: whether to compute fractional coverage along the silhouette.
    shading_vertices: optional [N, 3], the same vertices in a frame with
      equal units on all axes (x right, y down, z away from the camera), to
      compute the normals from; e.g. the camera-frame metres given to
      `perspective_project`, or the mesh given to
      `weak_perspective_to_pixels` (whose depth stays in metres). Default:
      `vertices` (right when z is in pixels, as in an orthographic view).

  Returns:
    A `RenderResult` (image uint8 [H, W, 3] RGB, mask float32 [H, W],
    depth float32 [H, W], face_index int32 [H, W]).

  Raises:
    ValueError: on arrays of the wrong shape, out-of-range face indices,
      colours outside [0, 1] or a non-positive image size.
  """
  vertices = np.asarray(vertices)
  faces = np.asarray(faces)
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    raise ValueError(f'vertices: expected [N, 3], got {list(vertices.shape)}')
  if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(
      faces.dtype, np.integer):
    raise ValueError(f'faces: expected int [F, 3], got {faces.dtype} '
                     f'{list(faces.shape)}')
  if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
    raise ValueError(f'faces: indices must lie in [0, {len(vertices)})')
  if int(height) <= 0 or int(width) <= 0:
    raise ValueError(f'height, width: must be positive, got {height}, {width}')
  if not 0.0 <= ambient <= 1.0:
    raise ValueError(f'ambient: must lie in [0, 1], got {ambient}')
  height, width = int(height), int(width)
  image = _background(background, height, width)
  num_faces = len(faces)
  if vertex_colors is not None:
    vertex_colors = _as_rgb(vertex_colors, 'vertex_colors', len(vertices))
    if vertex_colors.ndim == 1:
      vertex_colors = np.broadcast_to(vertex_colors, (len(vertices), 3))
  base = _as_rgb(DEFAULT_COLOR if face_colors is None else face_colors,
                 'face_colors', num_faces)
  light = np.asarray(light_dir, np.float64)
  if light.shape != (3,) or not np.linalg.norm(light) > 0:
    raise ValueError(f'light_dir: expected a nonzero [3] vector, got '
                     f'{light_dir}')
  light = light / np.linalg.norm(light)
  if shading_vertices is None:
    shading_vertices = vertices
  shading_vertices = np.asarray(shading_vertices)
  if shading_vertices.shape != vertices.shape:
    raise ValueError(f'shading_vertices: expected {list(vertices.shape)}, got '
                     f'{list(shading_vertices.shape)}')

  tri = raster.setup(vertices, faces)
  closed = raster.is_closed_and_oriented(faces)
  # A closed mesh's back faces never win the z-buffer: rasterizing only the
  # front ones halves the work (see raster.front_orientation).
  front = raster.front_orientation(tri) if closed else 0
  face_index, depth = raster.rasterize(raster.cull_back_faces(tri, front),
                                       height, width)
  if antialias:
    orientation = 0
    if closed:
      orientation = raster.visible_orientation(tri, face_index)
    coverage, edge_face = raster.silhouette_coverage(
        tri, face_index, orientation)
  else:
    coverage = (face_index >= 0).astype(np.float32)
    edge_face = face_index
  # Face that colours each pixel: the one at its centre, or for silhouette
  # pixels partly covered with an empty centre, the nearest one touching it.
  shade_face = np.where(face_index >= 0, face_index, edge_face).ravel()
  pix = np.nonzero(shade_face >= 0)[0]
  fid = shade_face[pix]

  # Shading of the faces that colour a pixel only (a few thousand of a
  # body's tens of thousands at small image sizes).
  used, use = np.unique(fid, return_inverse=True)
  normals = face_normals(shading_vertices, faces[used])
  intensity = (ambient + (1.0 - ambient) *
               np.maximum(normals @ light, 0.0))[use]  # per pixel
  if vertex_colors is not None:
    rows, cols = np.divmod(pix, width)
    weights = raster.barycentric(tri, fid, cols.astype(np.float64),
                                        rows.astype(np.float64))
    # Edge pixels' centres may lie just outside their face.
    weights = np.clip(weights, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    corner_colors = vertex_colors[faces[fid]]  # [P, 3, 3]
    color = np.einsum('pk,pkc->pc', weights, corner_colors)
    color *= intensity[:, None]
  else:
    color = np.broadcast_to(base, (num_faces, 3))[fid] * intensity[:, None]

  alpha = coverage.ravel()[pix, None].astype(np.float64)
  flat = image.reshape(-1, 3)
  blended = flat[pix] * (1.0 - alpha) + color * 255.0 * alpha
  flat[pix] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
  return RenderResult(image=image,
                      mask=coverage,
                      depth=depth.astype(np.float32),
                      face_index=face_index)


def perspective_project(vertices: np.ndarray, focal: Union[float, ArrayLike],
                        principal_point: ArrayLike) -> np.ndarray:
  """Pinhole projection of camera-frame vertices to pixels plus depth.

  x = fx * X / Z + cx, y = fy * Y / Z + cy, depth = Z. E.g. focal 500,
  principal point (112, 112), vertex (0.1, -0.2, 2.0) m -> (137, 62, 2.0).

  Args:
    vertices: [N, 3] float, camera frame (x right, y down, z forward;
      metres).
    focal: focal length in pixels, a scalar or (fx, fy).
    principal_point: (cx, cy) in pixels.

  Returns:
    [N, 3] float64: pixel x, pixel y, depth Z (for `render_mesh`).

  Raises:
    ValueError: on bad shapes, or a vertex at or behind the camera (Z <= 0).
  """
  v = np.asarray(vertices, np.float64)
  if v.ndim != 2 or v.shape[1] != 3:
    raise ValueError(f'vertices: expected [N, 3], got {list(v.shape)}')
  f = np.broadcast_to(np.asarray(focal, np.float64), (2,))
  c = np.asarray(principal_point, np.float64)
  if c.shape != (2,):
    raise ValueError(f'principal_point: expected (cx, cy), got {c.shape}')
  if np.any(v[:, 2] <= 0):
    raise ValueError('vertices: every vertex must lie in front of the camera '
                     f'(Z > 0); min Z is {v[:, 2].min()}')
  xy = f * v[:, :2] / v[:, 2:] + c
  return np.concatenate([xy, v[:, 2:]], axis=1)


def weak_perspective_to_pixels(vertices: np.ndarray, cam: ArrayLike,
                               img_size: Union[float, ArrayLike]) -> np.ndarray:
  """HMR's weak-perspective camera, to pixels of the crop plus depth.

  x_norm = s * (X[:, :2] + (tx, ty)) lies in [-1, 1] crop coordinates;
  pixel = (x_norm + 1) * img_size / 2 - 0.5 (hmr_tf.geometry.crop's
  crop_to_pixels_np: x_norm = -1 is the crop's left edge, pixel centres at
  integers as `render_mesh` takes them); depth = Z (unscaled, so pass the
  input vertices as `shading_vertices` to `render_mesh` for undistorted
  normals).

  Worked example: cam (s, tx, ty) = (0.9, 0.1, -0.2), img_size 224, vertex
  (0.5, 0.3, 2.0): x_norm = 0.9 * (0.5 + 0.1) = 0.54,
  y_norm = 0.9 * (0.3 - 0.2) = 0.09; pixel x = 1.54 * 112 - 0.5 = 171.98,
  y = 1.09 * 112 - 0.5 = 121.58; depth 2.0.

  Args:
    vertices: [N, 3] float, the mesh in HMR's camera-aligned frame.
    cam: [3] (s, tx, ty).
    img_size: crop size in pixels, a scalar or (width, height).

  Returns:
    [N, 3] float64: pixel x, pixel y, depth.
  """
  v = np.asarray(vertices, np.float64)
  if v.ndim != 2 or v.shape[1] != 3:
    raise ValueError(f'vertices: expected [N, 3], got {list(v.shape)}')
  cam = np.asarray(cam, np.float64)
  if cam.shape != (3,):
    raise ValueError(f'cam: expected (s, tx, ty), got shape {cam.shape}')
  size = np.broadcast_to(np.asarray(img_size, np.float64), (2,))
  x_norm = cam[0] * (v[:, :2] + cam[1:])
  return np.concatenate([crop_lib.crop_to_pixels_np(x_norm, size), v[:, 2:]],
                        axis=1)


def fit_orthographic(vertices: np.ndarray, height: int, width: int,
                     fill: float = 0.9) -> np.ndarray:
  """Scales and centres a mesh orthographically into an image.

  Args:
    vertices: [N, 3] float, x right, y down, z away from the camera.
    height: image height in pixels.
    width: image width in pixels.
    fill: fraction of the image the mesh's larger extent spans.

  Returns:
    [N, 3] float64 vertices in pixels (depth scaled by the same factor).
  """
  v = np.asarray(vertices, np.float64)
  lo, hi = v.min(axis=0), v.max(axis=0)
  extent = np.max((hi[:2] - lo[:2]) / np.array([width, height]))
  scale = fill / extent if extent > 0 else 1.0
  centre = (lo + hi) / 2
  out = (v - centre) * scale
  out[:, 0] += (width - 1) / 2
  out[:, 1] += (height - 1) / 2
  return out


def side_view(vertices: np.ndarray,
              faces: np.ndarray,
              height: int,
              width: int,
              angle_deg: float = 90.0,
              fill: float = 0.9,
              **render_kwargs) -> RenderResult:
  """Renders the mesh turned about the vertical axis through its centre.

  The rotation is about the image's y axis (down) through the centre of the
  mesh's bounding box; with the default 90 degrees, the surface that faced
  image-right (+x) faces the camera. The turned mesh is fitted
  orthographically into the image (`fit_orthographic`).

  Args:
    vertices: [N, 3] float in a frame with equal units on all axes, x right,
      y down, z away from the camera (e.g. HMR's camera-frame mesh).
    faces: [F, 3] int.
    height: output height in pixels.
    width: output width in pixels.
    angle_deg: rotation angle in degrees.
    fill: fraction of the image the turned mesh spans.
    **render_kwargs: passed on to `render_mesh`.

  Returns:
    The `RenderResult` of the turned mesh.
  """
  v = np.asarray(vertices, np.float64)
  if v.ndim != 2 or v.shape[1] != 3:
    raise ValueError(f'vertices: expected [N, 3], got {list(v.shape)}')
  a = np.deg2rad(angle_deg)
  # x' = cos a x + sin a z, z' = -sin a x + cos a z: a turn about y.
  rot = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0],
                  [-np.sin(a), 0.0, np.cos(a)]])
  centre = (v.min(axis=0) + v.max(axis=0)) / 2
  turned = (v - centre) @ rot.T
  return render_mesh(fit_orthographic(turned, height, width, fill), faces,
                     height, width, **render_kwargs)


@functools.lru_cache(maxsize=1)
def cocoplus_bones() -> Tuple[Tuple[int, int], ...]:
  """The 19 bones of HMR's cocoplus skeleton, as (joint, joint) indices.

  Legs, hips, arms, shoulders, shoulder-hip sides, neck-head and the face
  (neck-nose, nose-eyes, eyes-ears). The first 13 use LSP joints only.
  """
  # Imported here: hmr_tf.smpl's package import pulls in TensorFlow, which
  # rendering alone does not need.
  from hmr_tf.smpl import joints  # pylint: disable=g-import-not-at-top
  names = (('R_ankle', 'R_knee'), ('R_knee', 'R_hip'), ('L_ankle', 'L_knee'),
           ('L_knee', 'L_hip'), ('R_hip', 'L_hip'), ('R_wrist', 'R_elbow'),
           ('R_elbow', 'R_shoulder'), ('L_wrist', 'L_elbow'),
           ('L_elbow', 'L_shoulder'), ('R_shoulder', 'neck'),
           ('L_shoulder', 'neck'), ('neck', 'head_top'),
           ('R_hip', 'R_shoulder'), ('L_hip', 'L_shoulder'), ('neck', 'nose'),
           ('nose', 'R_eye'), ('nose', 'L_eye'), ('R_eye', 'R_ear'),
           ('L_eye', 'L_ear'))
  index = {n: i for i, n in enumerate(joints.COCOPLUS_JOINT_NAMES)}
  return tuple((index[a], index[b]) for a, b in names)


_RIGHT_COLOR = (230, 60, 50)
_LEFT_COLOR = (40, 110, 230)
_CENTRE_COLOR = (60, 200, 80)
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate anti-aliased drawing


def _side_colors(num_keypoints: int):
  """Default RGB colour per keypoint: right red, left blue, centre green."""
  if num_keypoints not in (14, 19):
    return [_CENTRE_COLOR] * num_keypoints
  from hmr_tf.smpl import joints  # pylint: disable=g-import-not-at-top
  names = joints.COCOPLUS_JOINT_NAMES[:num_keypoints]
  return [_RIGHT_COLOR if n.startswith('R_') else
          _LEFT_COLOR if n.startswith('L_') else _CENTRE_COLOR for n in names]


def draw_keypoints(image: np.ndarray,
                   keypoints: np.ndarray,
                   visibility: Optional[np.ndarray] = None,
                   skeleton: Optional[Sequence[Tuple[int, int]]] = None,
                   color: Optional[Tuple[int, int, int]] = None,
                   radius: int = 3,
                   thickness: int = 2) -> np.ndarray:
  """Draws keypoints and bones (anti-aliased) on a copy of an image.

  Invisible keypoints, and bones that touch one, are not drawn.

  Args:
    image: [H, W, 3] uint8 RGB; not modified.
    keypoints: [K, 2] float pixel (x, y), pixel (r, c) centred at (c, r).
    visibility: [K] 0/1 (or bool); default all visible.
    skeleton: (i, j) keypoint pairs to join; default `cocoplus_bones()` for
      19 keypoints, its LSP part for 14, none otherwise.
    color: one uint8 RGB triple for everything; default right-side joints
      red, left blue, centre green (for 14 or 19 keypoints in cocoplus
      order; green otherwise). A bone takes its first joint's colour.
    radius: keypoint disc radius in pixels.
    thickness: bone line width in pixels.

  Returns:
    [H, W, 3] uint8, the drawn copy.
  """
  img = np.asarray(image)
  if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
    raise ValueError(f'image: expected uint8 [H, W, 3], got {img.dtype} '
                     f'{list(img.shape)}')
  kp = np.asarray(keypoints, np.float64)
  if kp.ndim != 2 or kp.shape[1] != 2:
    raise ValueError(f'keypoints: expected [K, 2], got {list(kp.shape)}')
  num = len(kp)
  vis = (np.ones(num, bool) if visibility is None else
         np.asarray(visibility).astype(bool))
  if vis.shape != (num,):
    raise ValueError(f'visibility: expected [{num}], got {list(vis.shape)}')
  if skeleton is None:
    bones = cocoplus_bones() if num in (14, 19) else ()
    skeleton = [(a, b) for a, b in bones if a < num and b < num]
  colors = ([tuple(int(c) for c in color)] * num if color is not None else
            _side_colors(num))
  out = np.ascontiguousarray(img.copy())
  # Non-finite points are treated as invisible: cv2 needs integers.
  vis &= np.isfinite(kp).all(axis=1)
  fixed = np.zeros((num, 2), np.int64)
  # Clipped far outside the image so that cv2's int32 coordinates hold.
  fixed[vis] = np.round(np.clip(kp[vis], -1e5, 1e5) *
                        (1 << _SHIFT)).astype(np.int64)
  for a, b in skeleton:
    if not (0 <= a < num and 0 <= b < num):
      raise ValueError(f'skeleton: bone ({a}, {b}) out of range for {num} '
                       'keypoints')
    if vis[a] and vis[b]:
      cv2.line(out, tuple(int(t) for t in fixed[a]),
               tuple(int(t) for t in fixed[b]), colors[a], thickness,
               cv2.LINE_AA, _SHIFT)
  for k in np.nonzero(vis)[0]:
    cv2.circle(out, tuple(int(t) for t in fixed[k]), radius << _SHIFT,
               colors[k], -1, cv2.LINE_AA, _SHIFT)
  return out


def write_obj(path: str, vertices: np.ndarray, faces: np.ndarray) -> None:
  """Writes a triangle mesh as Wavefront .obj (atomically: temp + rename).

  Args:
    path: output file path.
    vertices: [N, 3] float.
    faces: [F, 3] int, 0-based (written 1-based as .obj requires).
  """
  v = np.asarray(vertices, np.float64)
  f = np.asarray(faces)
  if v.ndim != 2 or v.shape[1] != 3:
    raise ValueError(f'vertices: expected [N, 3], got {list(v.shape)}')
  if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or
                                                      f.max() >= len(v))):
    raise ValueError(f'faces: expected int [F, 3] indices into {len(v)} '
                     'vertices')
  lines = ['# written by hmr_tf.render.renderer.write_obj\n']
  lines += ['v %.9g %.9g %.9g\n' % tuple(p) for p in v]
  lines += ['f %d %d %d\n' % tuple(t) for t in f.astype(np.int64) + 1]
  atomic_io.write_text_atomic(path, ''.join(lines))


def read_obj(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads vertices and faces from a Wavefront .obj file.

  Reads `v` and `f` lines (ignoring texture/normal indices after '/',
  resolving negative relative indices, fan-triangulating polygons); other
  statements are ignored.

  Args:
    path: the .obj file.

  Returns:
    vertices: [N, 3] float64.
    faces: [F, 3] int32, 0-based.

  Raises:
    ValueError: naming the file and line of a malformed statement or an
      index out of range.
  """
  vertices, faces = [], []
  with open(path) as fh:
    for line_no, line in enumerate(fh, 1):
      parts = line.split()
      if not parts:
        continue
      where = f'{path}:{line_no}'
      try:
        if parts[0] == 'v':
          vertices.append([float(t) for t in parts[1:4]])
          if len(vertices[-1]) != 3:
            raise ValueError('a vertex needs 3 coordinates')
        elif parts[0] == 'f':
          idx = []
          for token in parts[1:]:
            i = int(token.split('/')[0])
            if i == 0:
              raise ValueError('.obj indices start at 1')
            idx.append(i - 1 if i > 0 else len(vertices) + i)
          if len(idx) < 3:
            raise ValueError('a face needs at least 3 vertices')
          if min(idx) < 0 or max(idx) >= len(vertices):
            raise ValueError(f'vertex index out of range [1, {len(vertices)}]')
          faces.extend([idx[0], idx[k], idx[k + 1]]
                       for k in range(1, len(idx) - 1))
      except ValueError as e:
        raise ValueError(f'{where}: bad "{parts[0]}" statement: {e}') from e
  return (np.asarray(vertices, np.float64).reshape(-1, 3),
          np.asarray(faces, np.int32).reshape(-1, 3))
