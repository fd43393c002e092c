"""Vectorised NumPy triangle rasterizer with a z-buffer (private to render.py).

Pixel convention (OpenCV's): pixel (row r, column c) is the unit square
centred at (x, y) = (c, r), i.e. it covers [c - 0.5, c + 0.5) x
[r - 0.5, r + 0.5). A pixel belongs to a triangle when its centre lies in the
closed triangle, so the result equals a point-in-triangle test per pixel
centre. Depth is the triangle's plane z at the pixel centre (linear in screen
space: exact for orthographic projections).

All faces are rasterized at once, with no Python loop over faces: every face
is split at its middle vertex (in y) into two trapezoids, each trapezoid is
expanded into one span per pixel row, and every span into its pixels
(`np.repeat` over run lengths). The z-buffer is a scatter-min
(`np.minimum.at`), so faces that pierce each other are split exactly along
their intersection line at pixel-centre resolution, whatever the draw order.
"""

from typing import NamedTuple, Tuple

import cv2
import numpy as np

# Sub-pixel sample grid for the anti-aliased coverage of silhouette pixels.
_AA_GRID = 4
_POPCOUNT16 = np.array([bin(i).count('1') for i in range(1 << 16)],
                       dtype=np.uint8)


class Triangles(NamedTuple):
  """Screen-space set-up of a mesh's faces (float64).

  Attributes:
    x: [F, 3] vertex x of each face (pixels).
    y: [F, 3] vertex y of each face (pixels).
    z: [F, 3] vertex depth of each face.
    area2: [F] twice the signed area in the image plane.
    dzdx: [F] plane slope of depth along x.
    dzdy: [F] plane slope of depth along y.
    valid: [F] bool, finite and not degenerate (edge-on) in the image plane.
  """
  x: np.ndarray
  y: np.ndarray
  z: np.ndarray
  area2: np.ndarray
  dzdx: np.ndarray
  dzdy: np.ndarray
  valid: np.ndarray


def setup(vertices: np.ndarray, faces: np.ndarray) -> Triangles:
  """Per-face coordinates, signed areas and depth planes.

  Args:
    vertices: [N, 3] float, pixel x, pixel y, depth.
    faces: [F, 3] int vertex indices.

  Returns:
    A `Triangles` tuple.
  """
  vertices = np.asarray(vertices, np.float64)
  # One gather per coordinate from a contiguous column, with intp indices
  # (NumPy converts int32 ones on every gather): several times faster than
  # gathering [F, 3, 3] rows and splitting them.
  faces = np.asarray(faces).astype(np.intp, copy=False)
  x, y, z = (np.take(np.ascontiguousarray(vertices[:, i]), faces)
             for i in range(3))
  ex1, ey1, ez1 = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], z[:, 1] - z[:, 0]
  ex2, ey2, ez2 = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0], z[:, 2] - z[:, 0]
  area2 = ex1 * ey2 - ex2 * ey1
  if np.isfinite(vertices).all():  # The usual case: no per-face test.
    finite = np.ones(len(faces), dtype=bool)
  else:
    finite = np.isfinite(vertices).all(axis=1)[faces].all(axis=1)
  # Edge-on faces cover no area; their depth plane is undefined.
  valid = finite & (np.abs(area2) > 1e-12)
  with np.errstate(divide='ignore', invalid='ignore'):
    inv = np.where(valid, 1.0 / np.where(valid, area2, 1.0), 0.0)
    dzdx = (ez1 * ey2 - ez2 * ey1) * inv
    dzdy = (ex1 * ez2 - ex2 * ez1) * inv
  return Triangles(x, y, z, area2, dzdx, dzdy, valid)


def _holds_pixel_centre(tri: Triangles, height: int) -> np.ndarray:
  """[F] bool: whether a face's bounding box holds a pixel centre on the image.

  A face without one produces no fragment, so leaving it out changes
  nothing; at small image sizes most faces of a dense mesh are smaller than
  a pixel and have none (about two thirds of the body's at 128 px), and the
  trapezoid set-up below costs as much per face as the test. Rows use the
  same bounds as `_segments` (ceil(y_top) <= floor(y_bottom)); columns allow
  1e-9 px of slack because the spans' x comes from interpolated edges.
  """
  y_lo = np.minimum(np.minimum(tri.y[:, 0], tri.y[:, 1]), tri.y[:, 2])
  y_hi = np.maximum(np.maximum(tri.y[:, 0], tri.y[:, 1]), tri.y[:, 2])
  x_lo = np.minimum(np.minimum(tri.x[:, 0], tri.x[:, 1]), tri.x[:, 2])
  x_hi = np.maximum(np.maximum(tri.x[:, 0], tri.x[:, 1]), tri.x[:, 2])
  with np.errstate(invalid='ignore'):
    rows = (np.maximum(np.ceil(y_lo), 0) <=
            np.minimum(np.floor(y_hi), height - 1))
    cols = np.ceil(x_lo - 1e-9) <= np.floor(x_hi + 1e-9)
  return rows & cols


def _segments(tri: Triangles, height: int):
  """Splits faces into trapezoids with one left and one right edge line.

  Returns, per trapezoid: face id, first row, row count, x of the left and
  right edge at the first row's centre, and their slopes dx/dy.
  """
  fid = np.nonzero(tri.valid & _holds_pixel_centre(tri, height))[0]
  # Sort each face's vertices by y with a three-swap sorting network (much
  # faster than argsort along a length-3 axis).
  xt, xm, xb = (tri.x[fid, i] for i in range(3))
  yt, ym, yb = (tri.y[fid, i] for i in range(3))
  for first, second in ((0, 1), (1, 2), (0, 1)):
    xs, ys = [xt, xm, xb], [yt, ym, yb]
    swap = ys[first] > ys[second]
    xs[first], xs[second] = (np.where(swap, xs[second], xs[first]),
                             np.where(swap, xs[first], xs[second]))
    ys[first], ys[second] = (np.where(swap, ys[second], ys[first]),
                             np.where(swap, ys[first], ys[second]))
    (xt, xm, xb), (yt, ym, yb) = xs, ys
  with np.errstate(divide='ignore', invalid='ignore'):
    k_long = np.where(yb > yt, (xb - xt) / (yb - yt), 0.0)
    k_top = np.where(ym > yt, (xm - xt) / (ym - yt), 0.0)
    k_bot = np.where(yb > ym, (xb - xm) / (yb - ym), 0.0)
  long_is_left = xt + (ym - yt) * k_long < xm

  # Rows whose centre y = r lies in [yt, ym) (upper part) or [ym, yb].
  r_top = np.maximum(np.ceil(yt), 0)
  r_mid = np.clip(np.ceil(ym), 0, height)
  r_end = np.minimum(np.floor(yb), height - 1) + 1
  starts = np.concatenate([r_top, r_mid])
  counts = np.concatenate([r_mid - r_top, r_end - r_mid])
  # The long edge (top to bottom) bounds both parts; the short edge is
  # top-to-middle above the middle vertex and middle-to-bottom below it.
  k_long2 = np.concatenate([k_long, k_long])
  k_short = np.concatenate([k_top, k_bot])
  x_long = (np.concatenate([xt, xt]) +
            (starts - np.concatenate([yt, yt])) * k_long2)
  x_short = np.concatenate([xt + (r_top - yt) * k_top,
                            xm + (r_mid - ym) * k_bot])
  left = np.concatenate([long_is_left, long_is_left])
  xl = np.where(left, x_long, x_short)
  xr = np.where(left, x_short, x_long)
  kl = np.where(left, k_long2, k_short)
  kr = np.where(left, k_short, k_long2)
  keep = counts > 0
  face = np.concatenate([fid, fid])[keep]
  return (face, starts[keep].astype(np.int64), counts[keep].astype(np.int64),
          xl[keep], xr[keep], kl[keep], kr[keep])


def _expand(counts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """For runs of the given lengths: run index and offset of every element."""
  total = int(counts.sum())
  run = np.repeat(np.arange(len(counts)), counts)
  first = np.cumsum(counts) - counts
  return run, np.arange(total) - first[run]


def fragments(tri: Triangles, height: int, width: int):
  """All (pixel, depth, face) fragments whose pixel centre is in a face.

  Returns:
    pix: [P] int64 flat pixel index row * width + col.
    depth: [P] float64 plane depth at the pixel centre.
    face: [P] int64 face index.
  """
  face, r0, nrows, xl0, xr0, kl, kr = _segments(tri, height)
  seg, k = _expand(nrows)
  row = r0[seg] + k
  xl = xl0[seg] + kl[seg] * k
  xr = xr0[seg] + kr[seg] * k
  c0 = np.maximum(np.ceil(xl), 0)
  c1 = np.minimum(np.floor(xr), width - 1)
  ncols = np.maximum(c1 - c0 + 1, 0).astype(np.int64)
  keep = ncols > 0
  row, c0, ncols = row[keep], c0[keep].astype(np.int64), ncols[keep]
  face_row = face[seg[keep]]
  # Depth at each span's first pixel, relative to vertex 0 so that steep
  # planes do not lose precision.
  z_start = (tri.z[face_row, 0] +
             tri.dzdx[face_row] * (c0 - tri.x[face_row, 0]) +
             tri.dzdy[face_row] * (row - tri.y[face_row, 0]))
  span, j = _expand(ncols)
  pix = (row * width + c0)[span] + j
  depth = z_start[span] + tri.dzdx[face_row][span] * j
  return pix, depth, face_row[span]


def rasterize(tri: Triangles, height: int,
              width: int) -> Tuple[np.ndarray, np.ndarray]:
  """Z-buffered rasterization sampled at pixel centres.

  Args:
    tri: the faces' `Triangles` set-up.
    height: image height in pixels.
    width: image width in pixels.

  Returns:
    face_index: [H, W] int32, nearest face per pixel centre, -1 where empty.
    depth: [H, W] float64, its depth, inf where empty.
  """
  pix, depth, face = fragments(tri, height, width)
  zbuf = np.full(height * width, np.inf)
  np.minimum.at(zbuf, pix, depth)
  # Fragments that reached the minimum own their pixel; exact depth ties
  # (coplanar faces) go to whichever is written last.
  win = depth == zbuf[pix]
  face_index = np.full(height * width, -1, dtype=np.int32)
  face_index[pix[win]] = face[win]
  return (face_index.reshape(height, width), zbuf.reshape(height, width))


def barycentric(tri: Triangles, face: np.ndarray, x: np.ndarray,
                y: np.ndarray) -> np.ndarray:
  """Barycentric coordinates of points (x, y) in the given faces.

  Args:
    tri: the faces' `Triangles` set-up.
    face: [P] int face index (valid faces only).
    x: [P] float point x.
    y: [P] float point y.

  Returns:
    [P, 3] float64 weights of the face's three vertices (sum to 1).
  """
  fx, fy = tri.x[face], tri.y[face]
  dx, dy = x - fx[:, 0], y - fy[:, 0]
  inv = 1.0 / tri.area2[face]
  w1 = (dx * (fy[:, 2] - fy[:, 0]) - dy * (fx[:, 2] - fx[:, 0])) * inv
  w2 = (dy * (fx[:, 1] - fx[:, 0]) - dx * (fy[:, 1] - fy[:, 0])) * inv
  return np.stack([1.0 - w1 - w2, w1, w2], axis=1)


_CLOSED_CACHE = {}


def is_closed_and_oriented(faces: np.ndarray) -> bool:
  """Whether a mesh is closed with consistent winding (cached per array).

  True when every directed edge (a, b) occurs once and its reverse (b, a)
  occurs too, as for SMPL and any watertight, consistently wound mesh.
  """
  faces = np.ascontiguousarray(faces, dtype=np.int64)
  key = (faces.shape, hash(faces.tobytes()))
  closed = _CLOSED_CACHE.get(key)
  if closed is None:
    n = int(faces.max()) + 1 if faces.size else 1
    a = faces.ravel()
    b = np.roll(faces, -1, axis=1).ravel()
    forward = np.sort(a * n + b)
    backward = np.sort(b * n + a)
    closed = bool(faces.size and np.all(forward[1:] != forward[:-1]) and
                  np.array_equal(forward, backward))
    if len(_CLOSED_CACHE) >= 8:
      _CLOSED_CACHE.clear()
    _CLOSED_CACHE[key] = closed
  return closed


def front_orientation(tri: Triangles) -> int:
  """Image-plane area sign of the faces turned towards the camera, or 0.

  For a closed, consistently wound mesh (`is_closed_and_oriented`) the
  signed volume tells which way its faces' normals point: with outward
  normals (positive volume in the x right, y down, z away frame) a face
  turned towards the camera has a negative image-plane area (its normal's
  z, the area's cross product, points at the camera), and the reverse for
  inward normals. A perspective projection to pixels with depth keeps the
  volume's sign (its Jacobian's determinant is positive in front of the
  camera). The nearest surface at any pixel is where the ray enters the
  body, a face turned towards the camera, so the other faces can be left
  out of the z-buffer (back-face culling; only a face turned inside out by
  the skinning, where the surface folds over itself, is lost with them).

  Args:
    tri: the faces' `Triangles` set-up (of a closed, consistently wound
      mesh; the caller checks).

  Returns:
    +1 or -1, the area sign of the front faces; 0 when the volume is zero
    or not finite (no culling then).
  """
  # Divergence theorem with the field (0, 0, z): the volume is the sum over
  # faces of their mean depth times their signed image-plane area
  # (area2 / 2 = the area times the normal's z), a sum the set-up's
  # arrays give directly. Invalid faces have no area.
  depth = tri.z[:, 0] + tri.z[:, 1] + tri.z[:, 2]
  volume = np.sum(np.where(tri.valid, depth * tri.area2, 0.0))
  if not np.isfinite(volume) or volume == 0:
    return 0
  return -1 if volume > 0 else 1


def cull_back_faces(tri: Triangles, orientation: int) -> Triangles:
  """The set-up with only the faces of the given area sign left valid."""
  if orientation == 0:
    return tri
  return tri._replace(valid=tri.valid & (np.sign(tri.area2) == orientation))


def visible_orientation(tri: Triangles, face_index: np.ndarray) -> int:
  """Sign of the image-plane area most visible faces have (+1 or -1)."""
  seen = face_index[face_index >= 0]
  return 1 if np.count_nonzero(tri.area2[seen] > 0) * 2 >= len(seen) else -1


def silhouette_coverage(tri: Triangles, face_index: np.ndarray,
                        orientation: int = 0):
  """Anti-aliased coverage of the silhouette's border pixels.

  Pixels within one pixel of the silhouette of the centre-sampled mask are
  re-sampled on a 4 x 4 sub-pixel grid against every face that can touch
  them; their coverage is the fraction of sub-samples inside the union of the
  faces. Other pixels keep coverage 0 or 1. Inner occlusion edges (an arm in
  front of the torso) are not anti-aliased: both sides are covered.

  Args:
    tri: the faces' `Triangles` set-up.
    face_index: [H, W] int32 from `rasterize`.
    orientation: 0 to use all faces; +1 or -1 to use only the faces whose
      image-plane area has that sign, valid for a closed, consistently wound
      mesh (`is_closed_and_oriented`): every point of its silhouette lies in
      faces of both orientations (a ray into a closed surface crosses it
      alternately inwards and outwards), so the faces of one orientation
      give the same coverage at half the cost. Pass the orientation of the
      visible faces (`visible_orientation`) so edge pixels take their
      colour from front faces.

  Returns:
    coverage: [H, W] float32 in [0, 1].
    edge_face: [H, W] int32, for border pixels whose centre is empty but
      that are partly covered: the nearest face touching them (to colour
      them); -1 elsewhere.
  """
  height, width = face_index.shape
  inside = face_index >= 0
  coverage = inside.astype(np.float32)
  edge_face = np.full((height, width), -1, dtype=np.int32)
  mask_u8 = inside.view(np.uint8)
  kernel = np.ones((3, 3), np.uint8)
  band = cv2.dilate(mask_u8, kernel) != cv2.erode(mask_u8, kernel)
  if not band.any():
    return coverage, edge_face

  # Faces whose conservative pixel box holds a band pixel (summed-area
  # table: four look-ups per face).
  if orientation:
    fid = np.nonzero(tri.valid & (tri.area2 * orientation > 0))[0]
  else:
    fid = np.nonzero(tri.valid)[0]
  fx, fy = tri.x[fid], tri.y[fid]
  c0 = np.floor(np.minimum(np.minimum(fx[:, 0], fx[:, 1]), fx[:, 2]) + 0.5)
  c1 = np.floor(np.maximum(np.maximum(fx[:, 0], fx[:, 1]), fx[:, 2]) + 0.5)
  r0 = np.floor(np.minimum(np.minimum(fy[:, 0], fy[:, 1]), fy[:, 2]) + 0.5)
  r1 = np.floor(np.maximum(np.maximum(fy[:, 0], fy[:, 1]), fy[:, 2]) + 0.5)
  c0, c1 = np.maximum(c0, 0), np.minimum(c1, width - 1)
  r0, r1 = np.maximum(r0, 0), np.minimum(r1, height - 1)
  on_image = (c0 <= c1) & (r0 <= r1)
  fid, c0, c1, r0, r1 = (a[on_image].astype(np.int64)
                         for a in (fid, c0, c1, r0, r1))
  sat = cv2.integral(band.view(np.uint8))
  hits = (sat[r1 + 1, c1 + 1] - sat[r0, c1 + 1] - sat[r1 + 1, c0] +
          sat[r0, c0])
  near = hits > 0
  fid, c0, c1, r0, r1 = fid[near], c0[near], c1[near], r0[near], r1[near]

  # Every (face, pixel) pair of those boxes that lies in the band.
  box_w = c1 - c0 + 1
  pair, k = _expand(box_w * (r1 - r0 + 1))
  dr = k // box_w[pair]
  row = r0[pair] + dr
  col = c0[pair] + (k - dr * box_w[pair])
  pix = row * width + col
  in_band = band.ravel()[pix]
  pair, row, col, pix = pair[in_band], row[in_band], col[in_band], pix[in_band]
  face = fid[pair]

  # Edge functions e = A x + B y + C of the three edges, oriented so that
  # the inside is positive whatever the face's winding, evaluated at the
  # pixel centre. Over the pixel square e varies by +-(|A| + |B|) / 2, which
  # sorts pairs into "face misses the square", "square fully inside" (all 16
  # sub-samples set) and partial, the only ones sampled.
  fx, fy = tri.x[face], tri.y[face]
  sign = np.sign(tri.area2[face])
  coef_a, coef_b, centre = [], [], []
  for i, j in ((0, 1), (1, 2), (2, 0)):
    ea = (fy[:, i] - fy[:, j]) * sign
    eb = (fx[:, j] - fx[:, i]) * sign
    coef_a.append(ea)
    coef_b.append(eb)
    centre.append(ea * (col - fx[:, i]) + eb * (row - fy[:, i]))
  reach = [0.5 * (np.abs(ea) + np.abs(eb)) for ea, eb in zip(coef_a, coef_b)]
  touches = ((centre[0] + reach[0] >= 0) & (centre[1] + reach[1] >= 0) &
             (centre[2] + reach[2] >= 0))
  full = ((centre[0] - reach[0] >= 0) & (centre[1] - reach[1] >= 0) &
          (centre[2] - reach[2] >= 0))
  partial = np.nonzero(touches & ~full)[0]
  bits = np.where(full, np.uint16(0xFFFF), np.uint16(0))
  offsets = (np.arange(_AA_GRID) + 0.5) / _AA_GRID - 0.5
  sx = np.tile(offsets, _AA_GRID)[None, :].astype(np.float32)
  sy = np.repeat(offsets, _AA_GRID)[None, :].astype(np.float32)
  covered = np.ones((len(partial), _AA_GRID * _AA_GRID), dtype=bool)
  for ea, eb, ec in zip(coef_a, coef_b, centre):
    ea = ea[partial, None].astype(np.float32)
    eb = eb[partial, None].astype(np.float32)
    ec = ec[partial, None].astype(np.float32)
    covered &= ec + ea * sx + eb * sy >= 0
  bits[partial] = np.packbits(covered, axis=1,
                              bitorder='little').view(np.uint16)[:, 0]
  union = np.zeros(height * width, dtype=np.uint16)
  np.bitwise_or.at(union, pix, bits)
  band_flat = np.nonzero(band.ravel())[0]
  coverage.ravel()[band_flat] = (
      _POPCOUNT16[union[band_flat]].astype(np.float32) /
      (_AA_GRID * _AA_GRID))

  # Colour source for partly covered pixels whose centre is empty: the face
  # nearest to the camera (by mean vertex depth) among those touching them.
  touching = (bits != 0) & ~inside.ravel()[pix]
  if touching.any():
    pix_t, face_t = pix[touching], face[touching]
    z_t = tri.z[face_t].mean(axis=1)
    nearest = np.full(height * width, np.inf)
    np.minimum.at(nearest, pix_t, z_t)
    win = z_t == nearest[pix_t]
    edge_face.ravel()[pix_t[win]] = face_t[win]
  return coverage, edge_face
