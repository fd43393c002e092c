"""Tests of the procedural stand-in body model (hmr_tf.smpl.standin).

Every property is computed here from the arrays, independently of the
builder's code: edge counts for closedness, solid angles (winding numbers) for
inside/outside, explicit index maps for the mirror symmetry, a float64 NumPy
SMPL (smpl_reference) for posing.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import repo_paths  # tests/support/
import smpl_reference
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io
from hmr_tf.smpl import standin

M = np.array([-1.0, 1.0, 1.0])  # the mirror x -> -x
SMALL = 1000  # target size of the test model (~1700 vertices)


@pytest.fixture(scope='module')
def model():
  return standin.build(num_vertices=SMALL)


def smpl_index(name):
  return joints_lib.SMPL_JOINT_NAMES.index(name)


def face_normals(verts, faces):
  p = verts[faces]
  return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def winding_numbers(points, verts, faces):
  """[K] generalised winding numbers (Van Oosterom-Strackee solid angles)."""
  out = []
  tri = verts[faces]  # [F, 3, 3]
  for p in points:
    a, b, c = (tri[:, k] - p for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
    det = np.einsum('ij,ij->i', a, np.cross(b, c))
    den = (la * lb * lc + np.einsum('ij,ij->i', a, b) * lc +
           np.einsum('ij,ij->i', a, c) * lb + np.einsum('ij,ij->i', b, c) * la)
    out.append(np.sum(2.0 * np.arctan2(det, den)) / (4.0 * np.pi))
  return np.array(out)


def surface_samples(verts, faces, steps=6):
  """[F * K, 3] points on every triangle (a barycentric grid)."""
  bary = np.array([(i, j, steps - i - j) for i in range(steps + 1)
                   for j in range(steps + 1 - i)], np.float64) / steps
  return np.einsum('kc,fcd->fkd', bary, verts[faces]).reshape(-1, 3)


def height(verts):
  return verts[:, 1].max() - verts[:, 1].min()


def shaped(model, betas):
  return model.v_template + model.shapedirs[:, :, :len(betas)] @ np.asarray(
      betas, np.float64)


# ---------------------------------------------------------------------------
# Construction, size, metadata.


def test_deterministic(model):
  again = standin.build(num_vertices=SMALL)
  for key, value in model_io.to_file_dict(model).items():
    np.testing.assert_array_equal(model_io.to_file_dict(again)[key], value,
                                  err_msg=key)
  np.testing.assert_array_equal(again.vertex_mirror, model.vertex_mirror)


def test_other_seed_changes_proportions_only():
  a = standin.build(num_vertices=SMALL, seed=0)
  b = standin.build(num_vertices=SMALL, seed=3)
  assert a.faces.shape == b.faces.shape
  assert np.abs(a.v_template - b.v_template).max() > 5e-3
  assert 1.6 < height(b.v_template) < 1.8
  np.testing.assert_allclose(b.v_template[b.vertex_mirror],
                             b.v_template * M, atol=1e-9)
  np.testing.assert_allclose(b.J_regressor @ b.v_template,
                             standin.rest_joints(seed=3), atol=1e-3)
  assert b.metadata['seed'] == 3


def test_metadata_and_shapes(model):
  n = model.num_vertices
  assert 500 <= n <= 2000
  assert model.metadata == {
      'standin': True, 'name': 'hmr_tf procedural stand-in body (not SMPL)',
      'seed': 0, 'num_vertices': n}
  assert model.is_standin
  assert model.faces.dtype == np.int32 and model.faces.shape[1] == 3
  assert model.weights.shape == (n, 24)
  assert model.shapedirs.shape == (n, 3, 10)
  assert model.posedirs.shape == (n, 3, 207)
  assert model.J_regressor.shape == (24, n)
  assert model.cocoplus_regressor.shape == (19, n)
  assert model.vertex_mirror.shape == (n,)
  np.testing.assert_array_equal(model.parents, joints_lib.SMPL_PARENTS)


def test_default_size_and_build_time():
  start = time.perf_counter()
  big = standin.build()
  seconds = time.perf_counter() - start
  assert 3000 <= big.num_vertices <= 7000
  assert seconds < 10.0
  assert 1.6 < height(big.v_template) < 1.8


def test_rejects_tiny_sizes():
  with pytest.raises(ValueError, match='num_vertices'):
    standin.build(num_vertices=10)


# ---------------------------------------------------------------------------
# Geometry.


def test_height_and_orientation(model):
  v = model.v_template
  assert 1.65 < height(v) < 1.75
  joints = model.J_regressor @ v
  # Pelvis near the origin, y up: head above pelvis above knees above feet.
  assert np.linalg.norm(joints[smpl_index('pelvis')]) < 0.05
  y = {n: joints[smpl_index(n), 1] for n in joints_lib.SMPL_JOINT_NAMES}
  assert y['head'] > y['neck'] > y['spine3'] > y['pelvis'] > y['left_knee']
  assert y['left_knee'] > y['left_ankle'] > v[:, 1].min()
  # Left is +x; arms out horizontally in a T.
  for name in joints_lib.SMPL_JOINT_NAMES:
    if name.startswith('left_'):
      assert joints[smpl_index(name), 0] > 0.03, name
  for part in ('elbow', 'wrist', 'hand'):
    j = joints[smpl_index('left_' + part)]
    assert abs(j[1] - y['left_shoulder']) < 0.03, part
  assert joints[smpl_index('left_wrist'), 0] > 0.55
  arm_span = v[:, 0].max() - v[:, 0].min()
  assert 0.9 * height(v) < arm_span < 1.1 * height(v)
  # Facing +z: toes and nose in front of ankles and head.
  toes = v[v[:, 1] < v[:, 1].min() + 0.03]
  assert toes[:, 2].max() > joints[smpl_index('left_ankle'), 2] + 0.1
  nose = model.cocoplus_regressor[14] @ v
  assert nose[2] > joints[smpl_index('head'), 2] + 0.07


def test_closed_oriented_genus_zero(model):
  f = model.faces.astype(np.int64)
  n = model.num_vertices
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  # Every directed edge once, and its reverse once: closed and consistently
  # oriented (each undirected edge in exactly two faces).
  codes = directed[:, 0] * n + directed[:, 1]
  assert len(np.unique(codes)) == len(codes)
  assert np.all(np.isin(directed[:, 1] * n + directed[:, 0], codes))
  undirected = np.unique(np.sort(directed, axis=1), axis=0)
  assert len(undirected) * 2 == len(directed)
  assert len(np.unique(f)) == n
  assert n - len(undirected) + len(f) == 2  # a sphere
  assert np.all(np.linalg.norm(face_normals(model.v_template, f), axis=1) >
                1e-8)


def test_outward_and_not_self_intersecting(model):
  v, f = model.v_template, model.faces
  p = v[f]
  volume = np.einsum('ij,ij->i', p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6
  assert 0.05 < volume < 0.1  # m^3; an adult of ~70 kg has ~0.07
  # Just inside every sampled face the winding number is 1 and just outside
  # 0: normals point out, and no other sheet of the surface passes there.
  rng = np.random.default_rng(0)
  sample = rng.choice(len(f), 300, replace=False)
  n = face_normals(v, f)[sample]
  n /= np.linalg.norm(n, axis=1, keepdims=True)
  centre = p[sample].mean(axis=1)
  np.testing.assert_allclose(winding_numbers(centre - 1e-3 * n, v, f), 1.0,
                             atol=1e-6)
  np.testing.assert_allclose(winding_numbers(centre + 1e-3 * n, v, f), 0.0,
                             atol=1e-6)


# ---------------------------------------------------------------------------
# Mirror symmetry.


def test_vertex_mirror_is_an_exact_reflection(model):
  mirror = model.vertex_mirror
  np.testing.assert_array_equal(mirror[mirror], np.arange(model.num_vertices))
  np.testing.assert_allclose(model.v_template[mirror], model.v_template * M,
                             rtol=0, atol=1e-9)


def test_faces_mirror_to_faces_with_reversed_winding(model):
  f = model.faces
  mirrored = model.vertex_mirror[f][:, [0, 2, 1]]

  def canonical(tris):  # rotate each triangle to start at its smallest index
    k = np.argmin(tris, axis=1)
    rows = np.arange(len(tris))[:, None]
    return tris[rows, (k[:, None] + np.arange(3)) % 3]

  a = {tuple(t) for t in canonical(f)}
  b = {tuple(t) for t in canonical(mirrored)}
  assert a == b


def test_arrays_mirror_consistently(model):
  m = model.vertex_mirror
  jflip = np.asarray(joints_lib.SMPL_FLIP_PERM)
  cflip = np.asarray(joints_lib.COCOPLUS_FLIP_PERM)
  np.testing.assert_allclose(model.weights[m][:, jflip], model.weights,
                             atol=1e-12)
  np.testing.assert_allclose(model.shapedirs[m] * M[None, :, None],
                             model.shapedirs, atol=1e-12)
  np.testing.assert_allclose(model.J_regressor[jflip][:, m], model.J_regressor,
                             atol=1e-12)
  np.testing.assert_allclose(model.cocoplus_regressor[cflip][:, m],
                             model.cocoplus_regressor, atol=1e-12)
  # Pose correctives: for every joint j and pose feature P = R - I, the
  # corrective of mirrored vertex m(i) under joint flip(j) with M P M is M
  # times vertex i's. Check it on random features.
  rng = np.random.default_rng(1)
  feat = rng.normal(size=(23, 3, 3))
  mirrored_feat = np.zeros_like(feat)
  for j in range(1, 24):
    mirrored_feat[jflip[j] - 1] = np.diag(M) @ feat[j - 1] @ np.diag(M)
  offsets = model.posedirs @ feat.reshape(-1)
  mirrored_offsets = model.posedirs @ mirrored_feat.reshape(-1)
  np.testing.assert_allclose(mirrored_offsets[m], offsets * M, atol=1e-12)


def test_posing_a_mirrored_pose_gives_the_mirrored_mesh(model):
  # Float64 NumPy SMPL from the paper's equations, independent of hmr_tf.
  rng = np.random.default_rng(2)
  jflip = np.asarray(joints_lib.SMPL_FLIP_PERM)
  for _ in range(2):
    theta = rng.uniform(-1.0, 1.0, size=(24, 3))
    betas = rng.normal(size=10)
    mirrored_theta = (theta[jflip] * np.array([1.0, -1.0, -1.0])).reshape(-1)
    verts, joints = smpl_reference.smpl_forward(model, theta.reshape(-1), betas)
    mverts, mjoints = smpl_reference.smpl_forward(model, mirrored_theta, betas)
    np.testing.assert_allclose(mverts[model.vertex_mirror], verts * M,
                               atol=1e-9)
    np.testing.assert_allclose(mjoints[jflip], joints * M, atol=1e-9)


def test_smpl_layer_mirror_property(model):
  # TensorFlow is imported here only, so the rest of the file stays light.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import layer as layer_lib  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import mirror  # pylint: disable=g-import-not-at-top
  smpl = layer_lib.SMPL(model)
  rng = np.random.default_rng(3)
  theta = rng.uniform(-1.0, 1.0, size=(4, 72)).astype(np.float32)
  betas = rng.normal(size=(4, 10)).astype(np.float32)
  out = smpl(tf.constant(theta), tf.constant(betas))
  mirrored = smpl(mirror.mirror_pose(tf.constant(theta)), tf.constant(betas))
  verts = out.vertices.numpy()
  np.testing.assert_allclose(
      mirrored.vertices.numpy()[:, model.vertex_mirror], verts * M, atol=1e-5)
  np.testing.assert_allclose(
      mirrored.joints.numpy()[:, list(joints_lib.SMPL_FLIP_PERM)],
      out.joints.numpy() * M, atol=1e-5)
  np.testing.assert_allclose(
      mirrored.keypoints.numpy()[:, list(joints_lib.COCOPLUS_FLIP_PERM)],
      out.keypoints.numpy() * M, atol=1e-5)


# ---------------------------------------------------------------------------
# Skinning weights and regressors.


def test_weights_convex_sparse_and_smooth(model):
  w = model.weights
  assert w.min() >= 0.0
  np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
  influences = (w > 0.01).sum(axis=1)
  assert np.mean(influences <= 3) > 0.8
  assert influences.max() <= 6
  assert np.all(w.max(axis=0) > 0.3)  # every joint drives some vertices
  # Smooth: along a mesh edge (2-10 cm here) weights change gradually; no
  # edge jumps from one joint to another.
  f = model.faces
  edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  jump = np.abs(w[edges[:, 0]] - w[edges[:, 1]]).max(axis=1)
  assert jump.max() < 0.6
  assert np.percentile(jump, 99) < 0.4
  # Vertices follow the nearest bones: the left wrist's vertices (near it)
  # are driven by the left arm, never by the right side or the legs.
  joints = model.J_regressor @ model.v_template
  near = np.linalg.norm(model.v_template - joints[smpl_index('left_wrist')],
                        axis=1) < 0.04
  arm = [smpl_index('left_' + p) for p in ('elbow', 'wrist', 'hand')]
  assert np.all(w[near][:, arm].sum(axis=1) > 0.99)


def test_j_regressor_convex_and_reproduces_joints(model):
  r = model.J_regressor
  assert r.min() >= 0.0
  np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
  joints = r @ model.v_template
  np.testing.assert_allclose(joints, standin.rest_joints(), atol=1e-3)
  # Each joint's weights spread over several vertices near it (a ring).
  for j in range(24):
    support = np.flatnonzero(r[j] > 1e-6)
    assert len(support) >= 4
    dist = np.linalg.norm(model.v_template[support] - joints[j], axis=1)
    assert dist.max() < 0.35


def test_rest_joints_plausible_for_an_adult(model):
  joints = standin.rest_joints()
  length = lambda a, b: np.linalg.norm(joints[smpl_index(a)] -
                                       joints[smpl_index(b)])
  assert 0.35 < length('left_hip', 'left_knee') < 0.45
  assert 0.35 < length('left_knee', 'left_ankle') < 0.45
  assert 0.22 < length('left_shoulder', 'left_elbow') < 0.32
  assert 0.2 < length('left_elbow', 'left_wrist') < 0.3
  assert 0.12 < length('left_hip', 'right_hip') < 0.22
  assert 0.3 < length('left_shoulder', 'right_shoulder') < 0.4
  assert 0.4 < length('pelvis', 'neck') < 0.6


def test_joints_stay_inside_the_body_with_shape(model):
  rng = np.random.default_rng(4)
  cases = [np.eye(10)[k] * s for k in range(10) for s in (-3.0, 3.0)]
  cases += list(np.clip(rng.normal(size=(5, 10)), -3, 3))
  for betas in cases:
    v = shaped(model, betas)
    joints = model.J_regressor @ v
    np.testing.assert_allclose(winding_numbers(joints, v, model.faces), 1.0,
                               atol=1e-6, err_msg=str(betas))


def test_cocoplus_regressor(model):
  c = model.cocoplus_regressor
  assert c.min() >= 0.0
  np.testing.assert_allclose(c.sum(axis=1), 1.0, atol=1e-12)
  v = model.v_template
  kp = c @ v
  joints = model.J_regressor @ v
  names = joints_lib.COCOPLUS_JOINT_NAMES
  k = {n: kp[i] for i, n in enumerate(names)}
  # The 12 limb keypoints sit at the SMPL joints of the same name.
  for i, smpl_j in enumerate(joints_lib.SMPL_TO_LSP_LIMBS):
    np.testing.assert_allclose(kp[i], joints[smpl_j], atol=0.02,
                               err_msg=names[i])
  assert k['R_ankle'][0] < 0 < k['L_ankle'][0]
  assert k['R_wrist'][0] < 0 < k['L_wrist'][0]
  # Neck between the shoulders and the head; head top on the crown.
  shoulder_y = joints[smpl_index('left_shoulder'), 1]
  assert shoulder_y < k['neck'][1] < joints[smpl_index('head'), 1]
  assert abs(k['neck'][0]) < 1e-9
  assert v[:, 1].max() - 0.02 < k['head_top'][1] <= v[:, 1].max()
  # Face points on the head's surface: nose and eyes in front (+z), ears on
  # the sides; each within 1 cm of the mesh and in its own half.
  head = joints[smpl_index('head')]
  surface = surface_samples(v, model.faces)
  for name in ('nose', 'L_eye', 'R_eye', 'L_ear', 'R_ear', 'head_top'):
    assert np.linalg.norm(surface - k[name], axis=1).min() < 0.01, name
    assert np.linalg.norm(k[name] - head) < 0.2, name
  for name in ('nose', 'L_eye', 'R_eye'):
    assert k[name][2] > head[2] + 0.07, name
  assert k['L_eye'][0] > 0.02 and k['R_eye'][0] < -0.02
  assert k['L_ear'][0] > 0.06 and k['R_ear'][0] < -0.06
  assert abs(k['L_ear'][2] - head[2]) < 0.04
  assert k['nose'][1] < k['L_eye'][1]


# ---------------------------------------------------------------------------
# Shape and pose blend shapes.


def test_shape_directions_orthogonal_with_decreasing_norms(model):
  cols = model.shapedirs.reshape(-1, 10)
  gram = cols.T @ cols
  norms = np.sqrt(np.diag(gram))
  off = gram / np.outer(norms, norms) - np.eye(10)
  assert np.abs(off).max() < 1e-9
  assert np.all(np.diff(norms) < 0)
  # Per vertex, one unit moves a vertex by millimetres to a few centimetres.
  rms = norms / np.sqrt(model.num_vertices)
  assert np.all(rms > 1e-3) and np.all(rms < 0.05)


def test_shape_changes_stature_limbs_and_girth(model):
  v0 = model.v_template
  h0 = height(v0)
  vol = lambda v: abs(np.einsum('ij,ij->i', v[model.faces[:, 0]], np.cross(
      v[model.faces[:, 1]], v[model.faces[:, 2]])).sum() / 6)
  # The first direction is stature.
  assert abs(height(shaped(model, [1.0])) - h0) > 0.03
  dh = [abs(height(shaped(model, np.eye(10)[k])) - h0) for k in range(10)]
  assert np.argmax(dh) == 0
  # Some direction changes the volume a lot at nearly constant height
  # (girth), and some changes leg length relative to the torso.
  assert any(
      abs(vol(shaped(model, np.eye(10)[k])) / vol(v0) - 1) > 0.04 and
      dh[k] < 0.01 for k in range(1, 10))

  def leg_ratio(v):
    j = model.J_regressor @ v
    leg = j[smpl_index('left_hip'), 1] - j[smpl_index('left_ankle'), 1]
    return leg / height(v)

  r0 = leg_ratio(v0)
  assert max(abs(leg_ratio(shaped(model, 3.0 * np.eye(10)[k])) - r0)
             for k in range(10)) > 0.015


def test_shape_at_three_sigma_stays_plausible(model):
  v0, f = model.v_template, model.faces
  n0 = face_normals(v0, f)
  rng = np.random.default_rng(5)
  single = [np.eye(10)[k] * s for k in range(10) for s in (-3.0, 3.0)]
  combined = [np.full(10, 2.5), np.full(10, -2.5)]
  combined += list(np.clip(rng.normal(size=(20, 10)), -3.0, 3.0))
  for betas in single + combined:
    v = shaped(model, betas)
    assert 1.4 < height(v) < 2.0, betas
    # No face turns over relative to the template (one direction at a time
    # with a margin; combinations at least keep every face's side).
    n = face_normals(v, f)
    cos = np.einsum('ij,ij->i', n, n0) / (
        np.linalg.norm(n, axis=1) * np.linalg.norm(n0, axis=1))
    limit = 0.3 if np.count_nonzero(betas) == 1 else 0.0
    assert cos.min() > limit, (betas, cos.min())
  for s in (-3.0, 3.0):  # all ten at 3 standard deviations: still a size
    assert 1.4 < height(shaped(model, np.full(10, s))) < 2.0


def test_pose_correctives_are_local_and_sized_like_smpl(model):
  v = model.v_template
  joints = model.J_regressor @ v
  assert np.abs(model.posedirs).max() > 0
  for j in range(1, 24):
    for axis in range(3):
      r = smpl_reference.rodrigues(np.eye(3)[axis] * np.pi / 2)  # 90 degrees
      feat = np.zeros((23, 3, 3))
      feat[j - 1] = r - np.eye(3)
      offsets = np.linalg.norm(model.posedirs @ feat.reshape(-1), axis=1)
      # A strong bend moves vertices by millimetres to a few centimetres,
      # as SMPL's correctives do, and only near the bent joint.
      assert 0.003 < offsets.max() < 0.06, (j, axis, offsets.max())
      far = np.linalg.norm(v - joints[j], axis=1) > 0.3
      assert offsets[far].max() < 1e-3, (j, axis)


# ---------------------------------------------------------------------------
# Files and the command line.


def test_file_round_trip(model, tmp_path):
  path = str(tmp_path / 'standin.npz')
  model_io.save_model(model, path)
  loaded = model_io.load_model(path)
  for key, value in model_io.to_file_dict(model).items():
    np.testing.assert_array_equal(model_io.to_file_dict(loaded)[key], value,
                                  err_msg=key)
  np.testing.assert_array_equal(loaded.vertex_mirror, model.vertex_mirror)
  assert loaded.metadata == model.metadata and loaded.is_standin


def test_command_line_writes_a_loadable_file(tmp_path):
  path = tmp_path / 'out' / 'standin.npz'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  root = repo_paths.ROOT
  result = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.smpl.standin', f'--output={path}',
       '--num_vertices=600'],
      cwd=root, env=env, capture_output=True, text=True, timeout=120,
      check=False)
  assert result.returncode == 0, result.stderr
  assert 'stand-in' in result.stderr.lower()
  assert 'not smpl' in result.stderr.lower()
  loaded = model_io.load_model(str(path))
  assert loaded.is_standin
  reference = standin.build(num_vertices=600)
  np.testing.assert_array_equal(loaded.v_template, reference.v_template)


def test_command_line_requires_output(tmp_path):
  root = repo_paths.ROOT
  result = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.smpl.standin'], cwd=root,
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode != 0
  assert 'output' in result.stderr
