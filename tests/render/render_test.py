"""Tests for hmr_tf.render.renderer: against per-pixel float64 references by hand."""

import os

import numpy as np
import pytest

from hmr_tf.render import raster
from hmr_tf.render import renderer


def _centres(height, width):
  """Pixel-centre coordinates (x = column, y = row), float64 [H, W] each."""
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  return x, y


def _inside(tri_xy, x, y):
  """Closed point-in-triangle test by the signs of the three cross products."""
  (ax, ay), (bx, by), (cx, cy) = tri_xy
  d0 = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
  d1 = (cx - bx) * (y - by) - (cy - by) * (x - bx)
  d2 = (ax - cx) * (y - cy) - (ay - cy) * (x - cx)
  return (((d0 >= 0) & (d1 >= 0) & (d2 >= 0)) |
          ((d0 <= 0) & (d1 <= 0) & (d2 <= 0)))


def _plane_depth(tri, x, y):
  """Depth of the plane through three [x, y, z] points, by a 3x3 solve."""
  tri = np.asarray(tri, np.float64)
  coef = np.linalg.solve(np.c_[tri[:, :2], np.ones(3)], tri[:, 2])
  return coef[0] * x + coef[1] * y + coef[2]


def _reference_zbuffer(vertices, faces, height, width):
  """Nearest face per pixel centre by brute force over faces."""
  x, y = _centres(height, width)
  best = np.full((height, width), np.inf)
  index = np.full((height, width), -1)
  for k, face in enumerate(faces):
    tri = vertices[face]
    z = _plane_depth(tri, x, y)
    take = _inside(tri[:, :2], x, y) & (z < best)
    best[take] = z[take]
    index[take] = k
  return index, best


TRIANGLE = np.array([[3.3, 2.6, 5.0], [27.8, 6.1, 5.0], [9.4, 20.7, 5.0]])


def test_single_triangle_fills_exactly_its_pixels_with_lambert_colour():
  h, w = 24, 32
  color = (0.8, 0.6, 0.4)
  result = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w, face_colors=color,
                              ambient=0.3, antialias=False)
  x, y = _centres(h, w)
  expected = _inside(TRIANGLE[:, :2], x, y)
  assert expected.sum() > 100
  np.testing.assert_array_equal(result.face_index >= 0, expected)
  np.testing.assert_array_equal(result.mask, expected.astype(np.float32))
  # Facing the camera with the light at the camera: n . l = 1.
  np.testing.assert_array_equal(result.image[expected],
                                np.tile([204, 153, 102], (expected.sum(), 1)))
  np.testing.assert_array_equal(result.image[~expected], 0)

  # Light at 45 degrees: 0.3 + 0.7 * cos(45 deg).
  tilted = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w, face_colors=color,
                              light_dir=(1.0, 0.0, -1.0), ambient=0.3,
                              antialias=False)
  shade = 0.3 + 0.7 * np.sqrt(0.5)
  np.testing.assert_array_equal(
      tilted.image[expected][0], np.round(np.array(color) * shade * 255))
  # Light from behind the face: ambient only.
  behind = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w, face_colors=color,
                              light_dir=(0.0, 0.0, 1.0), ambient=0.3,
                              antialias=False)
  np.testing.assert_array_equal(behind.image[expected][0],
                                np.round(np.array(color) * 0.3 * 255))


def test_both_windings_render_the_same():
  h, w = 24, 32
  ccw = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w,
                           light_dir=(0.3, -0.2, -1.0))
  cw = renderer.render_mesh(TRIANGLE, [[0, 2, 1]], h, w,
                          light_dir=(0.3, -0.2, -1.0))
  np.testing.assert_array_equal(ccw.image, cw.image)
  np.testing.assert_array_equal(ccw.mask, cw.mask)


def test_tilted_triangle_depth_and_shading():
  h, w = 24, 32
  # Plane z = 0.5 x - 0.25 y + 10; normal towards the camera
  # (0.5, -0.25, -1) / |.|, light at the camera -> 1 / |(0.5, -0.25, -1)|.
  tri = TRIANGLE.copy()
  tri[:, 2] = 0.5 * tri[:, 0] - 0.25 * tri[:, 1] + 10.0
  result = renderer.render_mesh(tri, [[0, 1, 2]], h, w, face_colors=(1, 1, 1),
                              ambient=0.0, antialias=False)
  x, y = _centres(h, w)
  inside = _inside(tri[:, :2], x, y)
  np.testing.assert_allclose(result.depth[inside],
                             (0.5 * x - 0.25 * y + 10.0)[inside], rtol=1e-6)
  assert np.all(np.isinf(result.depth[~inside]))
  shade = 255 / np.sqrt(0.5**2 + 0.25**2 + 1)
  np.testing.assert_array_equal(result.image[inside], np.round(shade))


@pytest.mark.parametrize('order', [(0, 1), (1, 0)])
def test_nearer_triangle_wins_whatever_the_draw_order(order):
  h, w = 24, 32
  near = TRIANGLE.copy()
  near[:, 2] = 2.0
  far = np.array([[1.2, 21.4, 7.0], [30.1, 1.3, 7.0], [29.6, 22.9, 7.0]])
  vertices = np.concatenate([near, far])
  tris = [[0, 1, 2], [3, 4, 5]]
  faces = np.array([tris[i] for i in order])
  colors = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[list(order)]
  result = renderer.render_mesh(vertices, faces, h, w, face_colors=colors,
                              antialias=False)
  x, y = _centres(h, w)
  in_near = _inside(near[:, :2], x, y)
  in_far = _inside(far[:, :2], x, y)
  assert (in_near & in_far).sum() > 20
  near_id = order.index(0)
  np.testing.assert_array_equal(result.face_index[in_near], near_id)
  np.testing.assert_array_equal(result.face_index[in_far & ~in_near],
                                1 - near_id)
  np.testing.assert_array_equal(result.image[in_near & in_far],
                                [[255, 0, 0]] * (in_near & in_far).sum())


def test_interpenetrating_triangles_split_along_the_intersection():
  h, w = 24, 32
  # A: z = x (tilted along x); B: z = 15.5 (flat). Where both cover, A is
  # nearer left of x = 15.5 and B right of it. Both reach past the image.
  a = np.array([[-10.3, -5.2, 0.0], [45.6, -3.1, 0.0], [10.2, 40.8, 0.0]])
  a[:, 2] = a[:, 0]
  b = np.array([[-8.1, 30.4, 15.5], [44.4, 27.3, 15.5], [15.3, -12.1, 15.5]])
  for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
    faces = np.array(faces)
    result = renderer.render_mesh(np.concatenate([a, b]), faces, h, w,
                                antialias=False)
    x, y = _centres(h, w)
    both = _inside(a[:, :2], x, y) & _inside(b[:, :2], x, y)
    a_id = int(np.nonzero(faces[:, 0] == 0)[0][0])
    assert (both & (x < 15.5)).sum() > 50 and (both & (x > 15.5)).sum() > 50
    np.testing.assert_array_equal(result.face_index[both & (x < 15.5)], a_id)
    np.testing.assert_array_equal(result.face_index[both & (x > 15.5)],
                                  1 - a_id)
    np.testing.assert_allclose(result.depth[both],
                               np.minimum(x, 15.5)[both], rtol=1e-6)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_random_overlapping_faces_match_a_brute_force_zbuffer(seed):
  rng = np.random.default_rng(seed)
  h, w = 21, 29
  vertices = rng.uniform([-4, -4, 0], [w + 4, h + 4, 10], (18, 3))
  faces = np.arange(18).reshape(6, 3)
  result = renderer.render_mesh(vertices, faces, h, w, antialias=False)
  index, depth = _reference_zbuffer(vertices, faces, h, w)
  np.testing.assert_array_equal(result.face_index, index)
  np.testing.assert_allclose(result.depth, depth.astype(np.float32),
                             rtol=1e-5)


@pytest.mark.parametrize('seed', [0, 1])
def test_subpixel_faces_match_a_brute_force_zbuffer(seed):
  # A dense mesh at a small size: most faces hold no pixel centre (the
  # rasterizer skips those before its set-up), some have a vertex or an edge
  # exactly on one; every centre a face holds must still be found.
  rng = np.random.default_rng(seed)
  h, w = 17, 23
  centres = rng.uniform([-1, -1, 0], [w, h, 10], (300, 3))
  offsets = rng.uniform(-0.7, 0.7, (300, 3, 3)) * [1, 1, 0]
  # A third of the faces with their first vertex on a pixel centre.
  on_centre = rng.random(300) < 0.3
  offsets[on_centre, 0, :2] = (np.round(centres[on_centre, :2]) -
                               centres[on_centre, :2])
  vertices = (centres[:, None, :] + offsets).reshape(-1, 3)
  faces = np.arange(len(vertices)).reshape(-1, 3)
  tri = raster.setup(vertices, faces)
  holds = raster._holds_pixel_centre(tri, h)
  assert 0 < holds.sum() < len(faces)
  result = renderer.render_mesh(vertices, faces, h, w, antialias=False)
  index, depth = _reference_zbuffer(vertices, faces, h, w)
  np.testing.assert_array_equal(result.face_index, index)
  np.testing.assert_allclose(result.depth, depth.astype(np.float32),
                             rtol=1e-5)


def _square(x0, x1, y0, y1, z=1.0):
  vertices = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
  return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def test_antialiased_edges_have_fractional_coverage():
  h, w = 16, 20
  # Pixel c spans [c - 0.5, c + 0.5): a left edge at x = 4.25 covers 1/4
  # of column 4, a right edge at x = 12.0 half of column 12, a top edge at
  # y = 3.0 half of row 3, a bottom edge at y = 10.75 1/4 of row 11.
  vertices, faces = _square(4.25, 12.0, 3.0, 10.75)
  result = renderer.render_mesh(vertices, faces, h, w, face_colors=(1, 1, 1),
                              background=(0, 0, 0), antialias=True)
  cols = np.clip(np.minimum(np.arange(w) + 0.5, 12.0) -
                 np.maximum(np.arange(w) - 0.5, 4.25), 0, 1)
  rows = np.clip(np.minimum(np.arange(h) + 0.5, 10.75) -
                 np.maximum(np.arange(h) - 0.5, 3.0), 0, 1)
  expected = np.outer(rows, cols)
  np.testing.assert_allclose(result.mask, expected, atol=1e-6)
  assert np.any((result.mask > 0) & (result.mask < 1))
  np.testing.assert_array_equal(result.image[..., 0],
                                np.round(expected * 255))
  # Centre-sampled outputs do not change with anti-aliasing.
  plain = renderer.render_mesh(vertices, faces, h, w, antialias=False)
  np.testing.assert_array_equal(plain.face_index, result.face_index)
  np.testing.assert_array_equal(plain.mask, result.face_index >= 0)


def _cube(centre, half, rotation):
  corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1)
                      for z in (-1, 1)], np.float64)
  quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6),
           (0, 2, 6, 4), (1, 5, 7, 3)]
  faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
  return corners * half @ rotation.T + centre, faces


def _rotation(rx, ry):
  cx, sx, cy, sy = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry)
  return (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @
          np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]))


def test_closed_mesh_coverage_shortcut_equals_all_faces():
  vertices, faces = _cube([15.3, 12.7, 50.0], 7.1, _rotation(0.5, 0.7))
  assert raster.is_closed_and_oriented(faces)
  assert not raster.is_closed_and_oriented(faces[1:])
  tri = raster.setup(vertices, faces)
  index, _ = raster.rasterize(tri, 26, 31)
  full, _ = raster.silhouette_coverage(tri, index, orientation=0)
  sign = raster.visible_orientation(tri, index)
  half, _ = raster.silhouette_coverage(tri, index, orientation=sign)
  assert np.any((full > 0) & (full < 1))
  np.testing.assert_array_equal(full, half)
  # The convex cube hides its back faces: only the sign's faces are seen.
  assert np.all(tri.area2[index[index >= 0]] * sign > 0)


@pytest.mark.parametrize('flip_winding', [False, True])
def test_back_face_culling_keeps_the_closed_cube_picture(flip_winding):
  vertices, faces = _cube([15.3, 12.7, 50.0], 7.1, _rotation(0.5, 0.7))
  if flip_winding:
    faces = faces[:, ::-1]
  tri = raster.setup(vertices, faces)
  full, full_depth = raster.rasterize(tri, 26, 31)
  front = raster.front_orientation(tri)
  # The sign the visible faces have, found from the z-buffer itself.
  assert front == raster.visible_orientation(tri, full)
  culled_tri = raster.cull_back_faces(tri, front)
  assert np.count_nonzero(culled_tri.valid) < np.count_nonzero(tri.valid)
  culled, culled_depth = raster.rasterize(culled_tri, 26, 31)
  np.testing.assert_array_equal(culled, full)
  np.testing.assert_array_equal(culled_depth, full_depth)
  assert raster.cull_back_faces(tri, 0) is tri


def _posed_makehuman(seed):
  """The embedded body in a random pose, camera frame (metres), and faces."""
  import smpl_reference  # pylint: disable=g-import-not-at-top  (tests/support)
  from hmr_tf.smpl import body_models  # pylint: disable=g-import-not-at-top
  body = body_models.resolve_body_model(None, 'makehuman', 0, 0)
  rng = np.random.default_rng(seed)
  theta = rng.normal(scale=0.35, size=72)
  theta[:3] = [np.pi, 0.0, 0.0]  # Upright in the y-down camera frame.
  verts, _ = smpl_reference.smpl_forward(body, theta,
                                         rng.normal(size=10) * 0.8)
  return verts + [0.0, 0.0, 3.0], np.asarray(body.faces)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_back_face_culling_keeps_the_posed_body_picture(seed):
  """The embedded body (closed, consistently wound) rendered with and
  without back-face culling, orthographic and perspective: the same faces
  win every pixel but where a face folded over by the skinning is nearest
  (none or a few pixels), and the rendered pictures agree."""
  verts, faces = _posed_makehuman(seed)
  assert raster.is_closed_and_oriented(faces)
  size = 128
  views = {
      'weak perspective': renderer.weak_perspective_to_pixels(
          verts, [0.9, 0.0, 0.0], size),
      'perspective': renderer.perspective_project(
          verts, 5 * size, [size / 2, size / 2]),
  }
  for name, pix in views.items():
    tri = raster.setup(pix, faces)
    full, _ = raster.rasterize(tri, size, size)
    front = raster.front_orientation(tri)
    assert front == raster.visible_orientation(tri, full), name
    culled, _ = raster.rasterize(raster.cull_back_faces(tri, front), size,
                                 size)
    differ = np.count_nonzero(culled != full)
    assert np.count_nonzero(full >= 0) > 1000, name
    assert differ <= 0.002 * np.count_nonzero(full >= 0), (name, differ)
    # The pictures: render_mesh culls; the same render with culling off.
    light = (0.3, -0.5, -1.0)
    image = renderer.render_mesh(pix, faces, size, size, light_dir=light,
                                 antialias=False).image
    original = raster.front_orientation
    try:
      raster.front_orientation = lambda tri: 0
      reference = renderer.render_mesh(pix, faces, size, size,
                                       light_dir=light,
                                       antialias=False).image
    finally:
      raster.front_orientation = original
    changed = np.any(image != reference, axis=-1)
    assert np.count_nonzero(changed) <= differ, (name, np.count_nonzero(changed))


def test_background_is_preserved_where_empty():
  h, w = 24, 32
  rng = np.random.default_rng(3)
  background = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  before = background.copy()
  result = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w,
                              background=background)
  np.testing.assert_array_equal(background, before)
  empty = result.mask == 0
  assert empty.sum() > 100
  np.testing.assert_array_equal(result.image[empty], background[empty])
  plain = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w,
                             background=(0.2, 0.4, 0.6))
  np.testing.assert_array_equal(plain.image[plain.mask == 0][0],
                                [51, 102, 153])
  # Partly covered pixels blend the two.
  partial = (result.mask > 0) & (result.mask < 1)
  assert partial.any()
  full_colour = np.round(np.array(renderer.DEFAULT_COLOR) * 255)
  a = result.mask[partial][:, None]
  expected = background[partial] * (1 - a) + full_colour * a
  assert np.abs(result.image[partial] - expected).max() <= 1.0


def test_output_shapes_and_dtypes():
  result = renderer.render_mesh(TRIANGLE, np.array([[0, 1, 2]], np.int64), 24,
                              32)
  assert result.image.shape == (24, 32, 3) and result.image.dtype == np.uint8
  assert result.mask.shape == (24, 32) and result.mask.dtype == np.float32
  assert result.depth.shape == (24, 32) and result.depth.dtype == np.float32
  assert (result.face_index.shape == (24, 32) and
          result.face_index.dtype == np.int32)
  assert set(np.unique(result.face_index)) == {-1, 0}


def test_vertex_colours_interpolate_barycentrically():
  h, w = 24, 32
  colors = np.eye(3)
  result = renderer.render_mesh(TRIANGLE, [[0, 1, 2]], h, w,
                              vertex_colors=colors, ambient=1.0,
                              antialias=False)
  x, y = _centres(h, w)
  inside = _inside(TRIANGLE[:, :2], x, y)
  m = np.c_[TRIANGLE[:, :2], np.ones(3)].T  # columns: (x, y, 1) per vertex
  weights = np.linalg.solve(m, np.stack([x[inside], y[inside],
                                         np.ones(inside.sum())]))
  np.testing.assert_allclose(result.image[inside], weights.T * 255, atol=0.51)


def test_bad_input_raises_clear_errors():
  with pytest.raises(ValueError, match='vertices'):
    renderer.render_mesh(np.zeros((3, 2)), [[0, 1, 2]], 8, 8)
  with pytest.raises(ValueError, match='faces'):
    renderer.render_mesh(TRIANGLE, [[0, 1, 3]], 8, 8)
  with pytest.raises(ValueError, match='face_colors'):
    renderer.render_mesh(TRIANGLE, [[0, 1, 2]], 8, 8, face_colors=(255, 0, 0))
  with pytest.raises(ValueError, match='background'):
    renderer.render_mesh(TRIANGLE, [[0, 1, 2]], 8, 8,
                       background=np.zeros((8, 9, 3), np.uint8))
  with pytest.raises(ValueError, match='in front of the camera'):
    renderer.perspective_project(np.array([[0.0, 0.0, -1.0]]), 500, (0, 0))


def test_weak_perspective_matches_hand_computation():
  out = renderer.weak_perspective_to_pixels(
      np.array([[0.5, 0.3, 2.0], [-1.0, 0.0, 1.0]]), (0.9, 0.1, -0.2), 224)
  # 0.9 * (0.5 + 0.1) = 0.54 -> 1.54 * 112; 0.9 * (0.3 - 0.2) = 0.09 ->
  # 1.09 * 112; 0.9 * (-1 + 0.1) = -0.81 -> 0.19 * 112; 0.9 * -0.2 = -0.18
  # -> 0.82 * 112; each minus 0.5: -1 is the crop's left edge, and
  # render_mesh takes pixel-centre coordinates (hmr_tf.geometry.crop).
  np.testing.assert_allclose(
      out, [[171.98, 121.58, 2.0], [20.78, 91.34, 1.0]], rtol=1e-12)


def test_perspective_projection_matches_hand_computation():
  out = renderer.perspective_project(np.array([[0.1, -0.2, 2.0]]), 500.0,
                                   (112.0, 100.0))
  np.testing.assert_allclose(out, [[137.0, 50.0, 2.0]])
  out = renderer.perspective_project(np.array([[0.1, -0.2, 2.0]]), (500, 400),
                                   (112.0, 100.0))
  np.testing.assert_allclose(out, [[137.0, 60.0, 2.0]])


def test_side_view_turns_the_mesh_about_the_vertical_axis():
  # A square in the y-z plane is edge-on from the front and face-on from
  # the side.
  vertices = np.array([[0.0, -1, -1], [0, 1, -1], [0, 1, 1], [0, -1, 1]])
  faces = np.array([[0, 1, 2], [0, 2, 3]])
  front = renderer.render_mesh(vertices * 10 + [16, 16, 50], faces, 32, 32)
  assert front.mask.sum() == 0
  side = renderer.side_view(vertices, faces, 32, 32, fill=0.5)
  x, y = _centres(32, 32)
  # Fitted to half the image, centred at pixel (15.5, 15.5).
  inside = (np.abs(x - 15.5) < 8) & (np.abs(y - 15.5) < 8)
  np.testing.assert_array_equal(side.face_index >= 0, inside)


def test_obj_round_trip(tmp_path):
  rng = np.random.default_rng(4)
  vertices = rng.normal(size=(10, 3))
  faces = rng.integers(0, 10, (7, 3)).astype(np.int32)
  path = os.path.join(tmp_path, 'mesh.obj')
  renderer.write_obj(path, vertices, faces)
  v, f = renderer.read_obj(path)
  np.testing.assert_allclose(v, vertices, rtol=1e-8)
  np.testing.assert_array_equal(f, faces)
  assert os.listdir(tmp_path) == ['mesh.obj']


def test_read_obj_quads_negative_indices_and_errors(tmp_path):
  path = os.path.join(tmp_path, 'quad.obj')
  with open(path, 'w') as fh:
    fh.write('o q\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\n'
             'f 1/1 2/1 3/1 4/1\nf -4 -3 -2\n')
  v, f = renderer.read_obj(path)
  assert v.shape == (4, 3)
  np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 1, 2]])
  with open(path, 'w') as fh:
    fh.write('v 0 0 0\nv 1 0 0\nf 1 2 5\n')
  with pytest.raises(ValueError, match='quad.obj:3'):
    renderer.read_obj(path)


def test_draw_keypoints_skips_invisible_points_and_copies():
  image = np.full((40, 60, 3), 10, np.uint8)
  before = image.copy()
  keypoints = np.array([[10.0, 10.0], [45.0, 30.0], [30.0, 20.0]])
  out = renderer.draw_keypoints(image, keypoints, [1, 0, 1],
                              skeleton=[(0, 1), (0, 2)], color=(255, 0, 0),
                              radius=2, thickness=1)
  np.testing.assert_array_equal(image, before)
  changed = np.any(out != image, axis=2)
  assert changed[10, 10] and changed[20, 30]
  np.testing.assert_array_equal(out[10, 10], [255, 0, 0])
  # Nothing around the invisible point; the bone to it is not drawn either
  # (the bone 0-2 is, through its midpoint).
  assert not changed[25:36, 40:51].any()
  assert changed[15, 20]
  assert not changed[20, 27 + 10]


def test_draw_keypoints_default_cocoplus_skeleton():
  image = np.zeros((64, 64, 3), np.uint8)
  rng = np.random.default_rng(5)
  keypoints = rng.uniform(5, 59, (19, 2))
  bones = renderer.cocoplus_bones()
  assert len(bones) == 19 and len(set(bones)) == 19
  out = renderer.draw_keypoints(image, keypoints, np.zeros(19))
  np.testing.assert_array_equal(out, image)
  out = renderer.draw_keypoints(image, keypoints, np.ones(19))
  assert np.any(out != 0)


def test_empty_and_non_finite_meshes_render_the_background():
  background = np.full((8, 8, 3), 77, np.uint8)
  empty = renderer.render_mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int32), 8,
                             8, background=background)
  np.testing.assert_array_equal(empty.image, background)
  assert np.all(empty.face_index == -1) and np.all(np.isinf(empty.depth))
  nan = renderer.render_mesh([[0.0, 0, 1], [5, 0, 1], [0, 5, np.nan]],
                           [[0, 1, 2]], 8, 8, background=background)
  np.testing.assert_array_equal(nan.image, background)
