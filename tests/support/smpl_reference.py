"""A float64 NumPy SMPL written from the paper's equations, for tests only.

Deliberately independent of hmr_tf.smpl.lbs: homogeneous 4x4 matrices,
Rodrigues via the skew matrix, explicit loops. Also builds random
SMPL-shaped body models.
"""

import numpy as np

from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl.model_io import BodyModel


def rodrigues(r):
  """[3] axis-angle -> [3, 3]: R = I + sin θ K + (1 − cos θ) K²."""
  theta = np.linalg.norm(r)
  if theta < 1e-12:
    return np.eye(3)
  k = r / theta
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def smpl_forward(model, theta, betas):
  """One body: theta [72] (or [24,3,3]), betas [K] -> (verts [N,3], joints [24,3])."""
  theta = np.asarray(theta, np.float64)
  if theta.shape == (24, 3, 3):
    rots = theta
  else:
    rots = np.stack([rodrigues(r) for r in theta.reshape(24, 3)])
  betas = np.asarray(betas, np.float64)
  k = betas.shape[0]
  v_shaped = model.v_template + model.shapedirs[:, :, :k] @ betas  # eq. 8
  rest_j = model.J_regressor @ v_shaped  # eq. 10
  feat = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 24)])
  v_posed = v_shaped + model.posedirs @ feat  # eq. 9
  world = []
  for j in range(24):
    local = np.eye(4)
    local[:3, :3] = rots[j]
    p = model.parents[j]
    local[:3, 3] = rest_j[j] - (rest_j[p] if p >= 0 else 0)
    world.append(local if p < 0 else world[p] @ local)
  posed_j = np.stack([g[:3, 3] for g in world])
  verts = np.zeros_like(v_posed)
  for j in range(24):
    g = world[j].copy()
    g[:3, 3] -= g[:3, :3] @ rest_j[j]  # G'_k = G_k [I | −j_k]
    homo = np.concatenate([v_posed, np.ones((len(v_posed), 1))], 1)
    verts += model.weights[:, j:j + 1] * (homo @ g.T)[:, :3]
  return verts, posed_j


def random_body_model(num_vertices=200, num_betas=10, seed=0, cocoplus=True):
  """A random but well-formed SMPL-shaped BodyModel."""
  rng = np.random.default_rng(seed)
  n = num_vertices
  weights = rng.dirichlet(np.full(24, 0.3), n)
  return BodyModel(
      v_template=rng.normal(size=(n, 3)) * 0.5,
      faces=rng.integers(0, n, (2 * n, 3)).astype(np.int32),
      weights=weights,
      parents=np.asarray(joints_lib.SMPL_PARENTS, np.int32),
      J_regressor=rng.dirichlet(np.ones(n), 24),
      shapedirs=rng.normal(size=(n, 3, num_betas)) * 0.03,
      posedirs=rng.normal(size=(n, 3, 207)) * 0.01,
      cocoplus_regressor=(rng.dirichlet(np.ones(n), 19) if cocoplus else None))
