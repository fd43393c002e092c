"""Mesh helpers for the procedural stand-in body (hmr_tf.smpl.standin).

The stand-in's surface is a Catmull-Clark subdivision of a quad "cage": the
boundary of a union of grid cells (a polycube) whose lattice points are then
moved to body-shaped positions. A polycube boundary is a closed, consistently
oriented quad mesh, and Catmull-Clark keeps both properties while making the
surface smooth, so the result is a closed manifold by construction.

Everything here is plain NumPy on small meshes: [V, 3] float vertices, [F, 4]
quads or [F, 3] triangles with counter-clockwise (outward) winding.
"""

from typing import Callable, Iterable, Tuple

import numpy as np
import scipy.sparse
import scipy.spatial

# A cell of the polycube: integer lattice coordinates of its minimum corner.
Cell = Tuple[int, int, int]


def polycube_quads(cells: Iterable[Cell]) -> Tuple[np.ndarray, np.ndarray]:
  """The outward-oriented boundary quads of a union of unit lattice cells.

  Args:
    cells: integer (x, y, z) minimum corners of the occupied cells. The union
      must be well composed (no two cells touching only along an edge or at a
      corner) for the boundary to be a manifold; `check_closed_manifold`
      verifies it.

  Returns:
    lattice: [V, 3] int, lattice coordinates of the boundary's vertices.
    quads: [F, 4] int, vertex indices of each boundary quad, counter-clockwise
      seen from outside.
  """
  occupied = set(map(tuple, cells))
  unit = np.eye(3, dtype=int)
  corners = []
  for cell in sorted(occupied):
    c = np.asarray(cell)
    for axis in range(3):
      # The two other axes in cyclic order, so that u x v = +axis.
      u, v = unit[(axis + 1) % 3], unit[(axis + 2) % 3]
      for side in (0, 1):
        neighbour = tuple(c + (2 * side - 1) * unit[axis])
        if neighbour in occupied:
          continue
        base = c + side * unit[axis]
        quad = [base, base + u, base + u + v, base + v]
        if side == 0:  # outward normal is -axis: reverse the winding.
          quad = quad[::-1]
        corners.append(quad)
  corners = np.asarray(corners).reshape(-1, 3)
  lattice, inverse = np.unique(corners, axis=0, return_inverse=True)
  return lattice, inverse.reshape(-1, 4)


def check_closed_manifold(faces: np.ndarray, num_vertices: int) -> None:
  """Raises ValueError unless `faces` is a closed, oriented genus-0 surface.

  Closed and oriented: every directed edge appears exactly once and its
  reverse exactly once. Genus 0 and connected: V - E + F = 2.
  """
  k = faces.shape[1]
  a = faces.reshape(-1)
  b = np.roll(faces, -1, axis=1).reshape(-1)
  directed = a.astype(np.int64) * num_vertices + b
  if len(np.unique(directed)) != len(directed):
    raise ValueError('stand-in mesh: a directed edge is used twice '
                     '(inconsistent orientation or non-manifold edge)')
  reverse = b.astype(np.int64) * num_vertices + a
  if not np.all(np.isin(reverse, directed)):
    raise ValueError('stand-in mesh: an edge has only one face (not closed)')
  num_edges = len(directed) // 2
  used = len(np.unique(faces))
  euler = used - num_edges + faces.shape[0]
  if used != num_vertices or euler != 2:
    raise ValueError(f'stand-in mesh: expected a connected sphere-like '
                     f'surface using all vertices, got V={used}/{num_vertices}'
                     f', Euler characteristic {euler} ({k}-gons)')


def catmull_clark(verts: np.ndarray,
                  quads: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """One step of Catmull-Clark subdivision of a closed quad mesh.

  Args:
    verts: [V, 3] float vertex positions.
    quads: [F, 4] int quads (a closed manifold).

  Returns:
    verts: [V + E + F, 3], the moved old vertices, then one per edge, then one
      per face.
    quads: [4F, 4], keeping the winding of the input.
  """
  nv, nf = len(verts), len(quads)
  a = quads.reshape(-1)
  b = np.roll(quads, -1, axis=1).reshape(-1)
  key = np.minimum(a, b).astype(np.int64) * nv + np.maximum(a, b)
  edge_keys, face_edge = np.unique(key, return_inverse=True)
  face_edge = face_edge.reshape(nf, 4)  # edge k of a face joins corners k, k+1
  ne = len(edge_keys)
  e0, e1 = edge_keys // nv, edge_keys % nv

  face_pts = verts[quads].mean(axis=1)
  # Each edge borders exactly two faces in a closed manifold.
  edge_face_sum = np.zeros((ne, 3))
  np.add.at(edge_face_sum, face_edge.reshape(-1), np.repeat(face_pts, 4, 0))
  edge_pts = (verts[e0] + verts[e1] + edge_face_sum) / 4.0

  valence = np.bincount(a, minlength=nv).astype(float)
  face_avg = np.zeros((nv, 3))
  np.add.at(face_avg, a, np.repeat(face_pts, 4, 0))
  face_avg /= valence[:, None]
  mid = (verts[e0] + verts[e1]) / 2.0
  edge_avg = np.zeros((nv, 3))
  np.add.at(edge_avg, e0, mid)
  np.add.at(edge_avg, e1, mid)
  edge_avg /= valence[:, None]
  n = valence[:, None]
  moved = (face_avg + 2.0 * edge_avg + (n - 3.0) * verts) / n

  new_verts = np.concatenate([moved, edge_pts, face_pts])
  ev = nv + face_edge  # new vertex index of each face's edges
  fv = nv + ne + np.arange(nf)
  new_quads = []
  for k in range(4):
    new_quads.append(
        np.stack([quads[:, k], ev[:, k], fv, ev[:, (k - 1) % 4]], axis=1))
  return new_verts, np.concatenate(new_quads)


def mirror_map(verts: np.ndarray, tol: float = 1e-7) -> np.ndarray:
  """Index of each vertex's image under x -> -x.

  Raises:
    ValueError: if some vertex has no mirror image within `tol`.
  """
  tree = scipy.spatial.cKDTree(verts)
  dist, index = tree.query(verts * np.array([-1.0, 1.0, 1.0]))
  if dist.max() > tol or not np.array_equal(index[index], np.arange(len(verts))):
    raise ValueError(f'stand-in mesh is not mirror symmetric (worst vertex '
                     f'{dist.max():.3g} m from its mirror image)')
  return index


def triangulate(verts: np.ndarray, quads: np.ndarray,
                mirror: np.ndarray) -> np.ndarray:
  """Splits quads into triangles so that the mirror of a face is a face.

  Each quad is cut along its shorter diagonal; near ties (which mirror images
  always are of each other, up to rounding) are broken by a rule that only
  uses mirror-invariant vertex labels, so a quad and its mirror image are cut
  the same way.

  Args:
    verts: [V, 3] positions.
    quads: [F, 4] quads, none of which is its own mirror image.
    mirror: [V] vertex mirror map.

  Returns:
    [2F, 3] int32 triangles with the quads' winding.
  """
  canon = np.minimum(np.arange(len(verts)), mirror)
  p = verts[quads]
  len02 = np.linalg.norm(p[:, 0] - p[:, 2], axis=1)
  len13 = np.linalg.norm(p[:, 1] - p[:, 3], axis=1)
  key02 = np.sort(canon[quads[:, [0, 2]]], axis=1)
  key13 = np.sort(canon[quads[:, [1, 3]]], axis=1)
  if np.any(np.all(key02 == key13, axis=1)):
    raise ValueError('stand-in mesh: a quad straddles the mirror plane')
  lex = (key02[:, 0] < key13[:, 0]) | ((key02[:, 0] == key13[:, 0]) &
                                       (key02[:, 1] < key13[:, 1]))
  use02 = np.where(np.abs(len02 - len13) > 1e-6, len02 < len13, lex)
  q = quads
  tri_a = np.where(use02[:, None], q[:, [0, 1, 2]], q[:, [0, 1, 3]])
  tri_b = np.where(use02[:, None], q[:, [0, 2, 3]], q[:, [1, 2, 3]])
  return np.concatenate([tri_a, tri_b]).astype(np.int32)


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """[F, 3] unnormalised triangle normals (twice the area, outward)."""
  p = verts[faces]
  return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """[V, 3] unit vertex normals (area-weighted face normals)."""
  fn = face_normals(verts, faces)
  vn = np.zeros_like(verts)
  for k in range(3):
    np.add.at(vn, faces[:, k], fn)
  return vn / np.linalg.norm(vn, axis=1, keepdims=True)


def neighbour_average_matrix(faces: np.ndarray,
                             num_vertices: int) -> scipy.sparse.csr_matrix:
  """[V, V] sparse row-stochastic matrix averaging each vertex's neighbours."""
  i = faces.reshape(-1)
  j = np.roll(faces, -1, axis=1).reshape(-1)
  adj = scipy.sparse.coo_matrix(
      (np.ones(2 * len(i)), (np.concatenate([i, j]), np.concatenate([j, i]))),
      shape=(num_vertices, num_vertices)).tocsr()
  adj.data[:] = 1.0  # each undirected edge counted once
  deg = np.asarray(adj.sum(axis=1)).ravel()
  return scipy.sparse.diags(1.0 / deg) @ adj


def segment_closest(points: np.ndarray, p0: np.ndarray,
                    p1: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Closest points on segment p0-p1 to `points` [N, 3].

  Returns:
    t: [N] the segment parameter in [0, 1] of the closest point.
    closest: [N, 3] the closest points.
  """
  d = p1 - p0
  t = np.clip((points - p0) @ d / max(float(d @ d), 1e-12), 0.0, 1.0)
  return t, p0 + t[:, None] * d


def map_vertices(lattice: np.ndarray,
                 position: Callable[[int, int, int], Tuple[float, float, float]]
                 ) -> np.ndarray:
  """[V, 3] float positions of lattice points via `position(ix, iy, iz)`."""
  return np.array([position(int(x), int(y), int(z)) for x, y, z in lattice],
                  dtype=np.float64)
