"""Benchmark: mesh renderer frames per second on one CPU core.

  python src/bench/render_bench.py [--frames=30] [--sizes=512,224]

Renders SMPL-sized synthetic meshes (6890 vertices, 13776 faces: SMPL's
counts, as the SMPL model itself is not shipped) with `hmr_tf.render.renderer`
(z-buffer, Lambert shading, anti-aliased silhouette) and, as the baseline in
the same run, a painter's-algorithm render of the same mesh: faces sorted by
mean depth and filled one by one with `cv2.fillConvexPoly` from a Python loop
(flat Lambert colour, no anti-aliasing, wrong where faces intersect). The
body spans about 400 px of a 512 px image (issue 5's setting: at least
20 frames per second). The process pins itself to one core and one thread.

Meshes: "ellipsoid" is one closed latitude-longitude surface with a
body-like radius profile; "limbs" is a torso, head, two arms and two legs
(six closed parts; more silhouette, inner occlusion edges and
interpenetration).
"""

import os
import sys

# One core, one thread: set before NumPy / OpenCV load their thread pools.
os.environ['OMP_NUM_THREADS'] = '1'
os.environ['OPENBLAS_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import time  # pylint: disable=g-import-not-at-top,g-bad-import-order

import cv2
import numpy as np
from absl import app
from absl import flags

from hmr_tf.render import renderer

_FRAMES = flags.DEFINE_integer('frames', 30, 'Timed frames per setting.')
_SIZES = flags.DEFINE_list('sizes', ['512', '224'], 'Square image sizes.')


def lat_long_surface(rings, segments, radius_profile, centre, axes):
  """A closed latitude-longitude surface: rings * segments + 2 vertices.

  Args:
    rings: number of latitude rings (poles excluded).
    segments: vertices per ring.
    radius_profile: maps latitude t in (0, pi) to a radius factor.
    centre: [3] centre.
    axes: [3] semi-axes (x, y = the long axis, z).

  Returns:
    vertices [rings * segments + 2, 3], faces [2 * rings * segments, 3].
  """
  t = (np.arange(rings) + 1) / (rings + 1) * np.pi
  phi = np.arange(segments) / segments * 2 * np.pi
  r = np.sin(t) * radius_profile(t)
  ring = np.stack([np.outer(r, np.cos(phi)),
                   np.repeat(-np.cos(t)[:, None], segments, axis=1),
                   np.outer(r, np.sin(phi))], axis=-1).reshape(-1, 3)
  vertices = np.concatenate([[[0, -1, 0]], ring, [[0, 1, 0]]]) * axes + centre
  idx = 1 + np.arange(rings * segments).reshape(rings, segments)
  nxt = np.roll(idx, -1, axis=1)
  top = np.stack([np.zeros(segments, int), nxt[0], idx[0]], axis=1)
  a, b, c, d = idx[:-1], nxt[:-1], idx[1:], nxt[1:]
  band = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                         np.stack([a, d, c], -1).reshape(-1, 3)])
  last = rings * segments + 1
  bottom = np.stack([np.full(segments, last), idx[-1], nxt[-1]], axis=1)
  return vertices, np.concatenate([top, band, bottom])


def ellipsoid_body():
  """6890 vertices, 13776 faces; y down, height 2 (units), depth along z."""
  return lat_long_surface(
      84, 82, lambda t: 0.25 + 0.08 * np.sin(3 * t), np.zeros(3),
      np.array([1.0, 1.0, 0.6]))


def limbs_body():
  """Torso, head, arms, legs: 6 closed parts, 6890 vertices, 13756 faces."""
  parts = [  # rings, segments, centre, semi-axes, rotation about z (deg)
      (50, 44, (0.0, -0.2, 0.0), (0.28, 0.45, 0.16), 0),  # torso
      (24, 28, (0.0, -0.8, 0.0), (0.13, 0.16, 0.14), 0),  # head
      (37, 22, (-0.55, -0.45, 0.02), (0.08, 0.42, 0.08), 65),  # arms
      (37, 22, (0.55, -0.45, -0.02), (0.08, 0.42, 0.08), -65),
      (41, 29, (-0.15, 0.55, 0.0), (0.11, 0.48, 0.11), 8),  # legs
      (41, 29, (0.15, 0.55, 0.0), (0.11, 0.48, 0.11), -8),
  ]
  all_v, all_f, offset = [], [], 0
  for rings, segments, centre, axes, angle in parts:
    v, f = lat_long_surface(rings, segments, lambda t: 1.0, np.zeros(3),
                            np.array(axes))
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0],
                    [0, 0, 1]])
    all_v.append(v @ rot.T + centre)
    all_f.append(f + offset)
    offset += len(v)
  return np.concatenate(all_v), np.concatenate(all_f)


def to_pixels(vertices, size, height_px):
  """Scales a y-down mesh so that it is height_px tall, centred in the image."""
  lo, hi = vertices.min(0), vertices.max(0)
  scale = height_px / (hi[1] - lo[1])
  out = (vertices - (lo + hi) / 2) * scale
  out[:, :2] += (size - 1) / 2
  out[:, 2] += 10 * size  # in front of nothing; depth only orders faces
  return out


def painter_render(vertices, faces, size, light=(0.0, 0.0, -1.0)):
  """Baseline: depth-sorted cv2.fillConvexPoly, one Python call per face."""
  image = np.zeros((size, size, 3), np.uint8)
  tri = vertices[faces]
  n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  n *= np.where(n[:, 2:] > 0, -1.0, 1.0)
  n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
  shade = 0.3 + 0.7 * np.maximum(n @ np.asarray(light), 0.0)
  colors = np.outer(shade, renderer.DEFAULT_COLOR) * 255
  order = np.argsort(-tri[:, :, 2].mean(1))
  fixed = np.round(tri[:, :, :2] * 16).astype(np.int32)
  for k in order:
    cv2.fillConvexPoly(image, fixed[k], colors[k].tolist(), cv2.LINE_8, 4)
  return image


def _median_ms(fn, frames):
  """Median and best milliseconds per call (best resists noisy neighbours)."""
  fn()
  times = []
  for _ in range(frames):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times)), 1e3 * min(times)


def main(argv):
  del argv
  try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  except (AttributeError, OSError):
    pass  # not Linux: the thread limits above still hold
  cv2.setNumThreads(1)
  meshes = {'ellipsoid': ellipsoid_body(), 'limbs': limbs_body()}
  frames = _FRAMES.value
  print(f'Mesh renderer, one core, median of {frames} frames; baseline = '
        'painter\'s algorithm with cv2.fillConvexPoly per face (no AA).')
  header = ('mesh', 'verts', 'faces', 'image', 'body px', 'covered',
            'ms/frame', 'best ms', 'fps', 'no-AA ms', 'baseline ms', 'ratio')
  print(('{:<10}{:>6}{:>7}{:>9}{:>8}{:>8}{:>10}{:>9}{:>7}{:>10}{:>12}{:>7}'
         ).format(*header))
  light = (0.3, -0.4, -1.0)
  for size in (int(s) for s in _SIZES.value):
    for name, (v, f) in meshes.items():
      body_px = round(size * 400 / 512)
      pix = to_pixels(v, size, body_px)
      result = renderer.render_mesh(pix, f, size, size, light_dir=light)
      ms, best = _median_ms(
          lambda: renderer.render_mesh(pix, f, size, size, light_dir=light),
          frames)
      ms_plain, _ = _median_ms(
          lambda: renderer.render_mesh(pix, f, size, size, light_dir=light,
                                     antialias=False), frames)
      ms_base, _ = _median_ms(lambda: painter_render(pix, f, size, light),
                           frames)
      print(('{:<10}{:>6}{:>7}{:>9}{:>8}{:>8}{:>10.1f}{:>9.1f}{:>7.1f}'
             '{:>10.1f}{:>12.1f}{:>7.2f}').format(
                 name, len(v), len(f), f'{size}x{size}', body_px,
                 int((result.mask > 0).sum()), ms, best, 1e3 / ms, ms_plain,
                 ms_base, ms / ms_base))
  print('ms/frame, fps, no-AA ms and baseline ms are medians; covered = '
        'pixels with coverage > 0; ratio = renderer ms / baseline ms in '
        'this run (< 1: faster).')


if __name__ == '__main__':
  app.run(main)
