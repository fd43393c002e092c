"""The SMPL layer against a float64 NumPy SMPL written from the paper."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import smpl_reference
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import mirror
from hmr_tf.smpl import SMPL


def _random_pose(rng, batch, max_angle=np.pi):
  axis = rng.normal(size=(batch, 24, 3))
  axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
  angle = rng.uniform(0, max_angle, size=(batch, 24, 1))
  return (axis * angle).reshape(batch, 72)


@pytest.fixture(scope='module')
def random_model():
  return smpl_reference.random_body_model(num_vertices=300, seed=1)


def test_layer_matches_float64_reference(random_model):
  rng = np.random.default_rng(0)
  theta = _random_pose(rng, 4)
  betas = rng.normal(size=(4, 10)) * 2
  out = SMPL(random_model)(tf.constant(theta, tf.float32),
                           tf.constant(betas, tf.float32))
  for b in range(4):
    verts, joints = smpl_reference.smpl_forward(random_model, theta[b], betas[b])
    np.testing.assert_allclose(out.vertices[b], verts, atol=1e-5)
    np.testing.assert_allclose(out.joints[b], joints, atol=1e-5)
    np.testing.assert_allclose(out.keypoints[b],
                               random_model.cocoplus_regressor @ verts,
                               atol=1e-5)
    for j in range(24):
      np.testing.assert_allclose(out.rotmats[b, j],
                                 smpl_reference.rodrigues(theta[b, 3 * j:3 * j + 3]),
                                 atol=1e-6)


def test_float64_layer_is_exact(random_model):
  rng = np.random.default_rng(2)
  theta = _random_pose(rng, 2)
  betas = rng.normal(size=(2, 10))
  out = SMPL(random_model, dtype='float64')(theta, betas)
  assert out.vertices.dtype == tf.float64
  verts, _ = smpl_reference.smpl_forward(random_model, theta[1], betas[1])
  np.testing.assert_allclose(out.vertices[1], verts, atol=1e-10)


def test_zero_pose_and_betas_give_template(random_model):
  out = SMPL(random_model)(tf.zeros([1, 72]), tf.zeros([1, 10]))
  np.testing.assert_allclose(out.vertices[0], random_model.v_template,
                             atol=1e-6)
  np.testing.assert_allclose(out.joints[0],
                             random_model.J_regressor @ random_model.v_template,
                             atol=1e-6)


def test_fewer_betas_use_leading_directions(random_model):
  betas = np.array([[0.7, -1.2, 0.3]])
  out = SMPL(random_model)(tf.zeros([1, 72]), betas)
  expected = random_model.v_template + random_model.shapedirs[:, :, :3] @ betas[0]
  np.testing.assert_allclose(out.vertices[0], expected, atol=1e-5)
  with pytest.raises(ValueError, match='betas'):
    SMPL(random_model)(tf.zeros([1, 72]), tf.zeros([1, 11]))


def test_rotation_matrix_input_equals_axis_angle(random_model):
  rng = np.random.default_rng(3)
  theta = _random_pose(rng, 2).astype(np.float32)
  smpl = SMPL(random_model)
  rot = smpl(theta, tf.zeros([2, 10])).rotmats
  a = smpl(theta, tf.zeros([2, 10])).vertices
  b = smpl(rot, tf.zeros([2, 10])).vertices
  np.testing.assert_allclose(a, b, atol=1e-6)


def test_90_degree_elbow_moves_exactly_its_descendants():
  """Hand-computed: bend the left elbow 90° about y on a rigid model."""
  model = smpl_reference.random_body_model(num_vertices=120, seed=4)
  # Rigid skinning (one joint per vertex) and no correctives, so every vertex
  # moves exactly with its joint.
  owner = np.arange(120) % 24
  weights = np.eye(24)[owner]
  model = type(model)(**{**model.__dict__, 'weights': weights,
                         'posedirs': np.zeros_like(model.posedirs)})
  elbow = joints_lib.SMPL_JOINT_NAMES.index('left_elbow')
  theta = np.zeros(72)
  theta[3 * elbow + 1] = np.pi / 2
  out = SMPL(model, dtype='float64')(theta[None], np.zeros((1, 10)))
  rest_j = model.J_regressor @ model.v_template
  descendants = {elbow}
  for j in range(24):
    if model.parents[j] in descendants:
      descendants.add(j)
  assert descendants == {elbow, elbow + 2, elbow + 4}  # wrist, hand
  rot_y = np.array([[0., 0., 1.], [0., 1., 0.], [-1., 0., 0.]])  # R_y(90°)
  for v in range(120):
    if owner[v] in descendants:
      expected = rot_y @ (model.v_template[v] - rest_j[elbow]) + rest_j[elbow]
    else:
      expected = model.v_template[v]
    np.testing.assert_allclose(out.vertices[0, v], expected, atol=1e-10)
  for j in range(24):
    expected = (rot_y @ (rest_j[j] - rest_j[elbow]) + rest_j[elbow]
                if j in descendants else rest_j[j])
    np.testing.assert_allclose(out.joints[0, j], expected, atol=1e-10)


def test_gradients_finite_and_nonzero(random_model):
  smpl = SMPL(random_model)
  theta = tf.Variable(tf.zeros([2, 72]))  # zero pose: the hard case for norms
  betas = tf.Variable(tf.random.normal([2, 10], seed=5))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(smpl(theta, betas).vertices))
  g_theta, g_betas = tape.gradient(loss, [theta, betas])
  for g in (g_theta, g_betas):
    assert np.all(np.isfinite(g))
    assert np.abs(g).max() > 0


@pytest.mark.parametrize('batch', [1, 5])
def test_eager_function_and_xla_agree(random_model, batch):
  smpl = SMPL(random_model)
  rng = np.random.default_rng(batch)
  theta = tf.constant(_random_pose(rng, batch), tf.float32)
  betas = tf.constant(rng.normal(size=(batch, 10)), tf.float32)
  eager = smpl(theta, betas).vertices
  graph = tf.function(lambda t, b: smpl(t, b).vertices)(theta, betas)
  xla = tf.function(lambda t, b: smpl(t, b).vertices,
                    jit_compile=True)(theta, betas)
  np.testing.assert_allclose(graph, eager, atol=1e-5)
  np.testing.assert_allclose(xla, eager, atol=1e-5)


def test_dynamic_batch_in_tf_function(random_model):
  smpl = SMPL(random_model)
  fn = tf.function(lambda t, b: smpl(t, b).vertices, input_signature=[
      tf.TensorSpec([None, 72]), tf.TensorSpec([None, 10])])
  for batch in (1, 3):
    assert fn(tf.zeros([batch, 72]), tf.zeros([batch, 10])).shape[0] == batch


def test_mirror_pose_reflects_rotations():
  rng = np.random.default_rng(6)
  theta = _random_pose(rng, 1)[0]
  mirrored = mirror.mirror_pose(theta[None]).numpy()[0]
  m = np.diag([-1., 1., 1.])
  for j in range(24):
    twin = joints_lib.SMPL_FLIP_PERM[j]
    np.testing.assert_allclose(
        smpl_reference.rodrigues(mirrored[3 * j:3 * j + 3]),
        m @ smpl_reference.rodrigues(theta[3 * twin:3 * twin + 3]) @ m,
        atol=1e-9)
  np.testing.assert_allclose(mirror.mirror_pose(mirror.mirror_pose(theta)), theta)


def test_mirror_pose_gives_mirrored_mesh_on_symmetric_model():
  """Posing a mirror-symmetric body with the mirrored pose mirrors the mesh."""
  rng = np.random.default_rng(7)
  half = smpl_reference.random_body_model(num_vertices=60, seed=8)
  # Build an exactly symmetric model: each vertex of the half and its mirror.
  flip_j = np.asarray(joints_lib.SMPL_FLIP_PERM)
  m = np.array([-1., 1., 1.])
  n = 60
  v = np.concatenate([half.v_template, half.v_template * m])
  w = np.concatenate([half.weights, half.weights[:, flip_j]])
  sd = np.concatenate([half.shapedirs, half.shapedirs * m[None, :, None]])
  # posedirs columns: joint j's 9 entries of (R − I); mirroring maps joint j to
  # its twin and R to M R M, whose entries change sign by the pattern s.
  s = np.outer(m, m).ravel()
  pd_half = half.posedirs.reshape(n, 3, 23, 9)
  pd_twin = np.zeros_like(pd_half)
  for j in range(1, 24):
    t = flip_j[j]
    pd_twin[:, :, t - 1, :] = pd_half[:, :, j - 1, :] * s
  pd = np.concatenate([pd_half, pd_twin * m[None, :, None, None]]).reshape(
      2 * n, 3, 207)
  jr = np.concatenate([half.J_regressor, half.J_regressor[flip_j]], axis=1) / 2
  model = type(half)(v_template=v, faces=half.faces, weights=w,
                     parents=half.parents, J_regressor=jr, shapedirs=sd,
                     posedirs=pd,
                     vertex_mirror=np.concatenate([np.arange(n, 2 * n),
                                                   np.arange(n)]))
  # Symmetric shape: betas act symmetrically by construction.
  theta = _random_pose(rng, 2, max_angle=1.0).astype(np.float32)
  betas = rng.normal(size=(2, 10)).astype(np.float32)
  smpl = SMPL(model)
  a = smpl(theta, betas).vertices.numpy()
  b = smpl(mirror.mirror_pose(theta), betas).vertices.numpy()
  np.testing.assert_allclose(b, a[:, model.vertex_mirror] * m, atol=1e-5)


def _sparse_keypoint_model(seed=3):
  # A keypoint regressor that reads 40 of the 300 vertices, as real ones
  # read a small part of the mesh.
  import dataclasses  # pylint: disable=g-import-not-at-top
  model = smpl_reference.random_body_model(num_vertices=300, seed=seed)
  rng = np.random.default_rng(seed)
  regressor = np.zeros([19, 300])
  support = rng.choice(300, 40, replace=False)
  regressor[:, support] = rng.dirichlet(np.ones(40), 19)
  return dataclasses.replace(model, cocoplus_regressor=regressor)


def test_keypoints_only_matches_float64_reference():
  model = _sparse_keypoint_model()
  rng = np.random.default_rng(5)
  theta = _random_pose(rng, 3)
  betas = rng.normal(size=(3, 10))
  smpl = SMPL(model, dtype='float64')
  out = smpl.keypoints_only(theta, betas[:, :7])
  assert out.vertices is None
  for b in range(3):
    verts, joints = smpl_reference.smpl_forward(model, theta[b], betas[b, :7])
    np.testing.assert_allclose(out.keypoints[b],
                               model.cocoplus_regressor @ verts, atol=1e-10)
    np.testing.assert_allclose(out.joints[b], joints, atol=1e-10)
  # The same values as the full layer, and the same gradients.
  full = smpl(theta, betas[:, :7])
  np.testing.assert_allclose(out.keypoints, full.keypoints, atol=1e-12)
  theta32 = tf.constant(theta, tf.float32)
  smpl32 = SMPL(model)
  grads = []
  for fn in (smpl32, smpl32.keypoints_only):
    with tf.GradientTape() as tape:
      tape.watch(theta32)
      loss = tf.reduce_sum(fn(theta32, betas).keypoints ** 2)
    grads.append(tape.gradient(loss, theta32).numpy())
  np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_body_without_pose_correctives_matches_float64_reference():
  """Zero posedirs (the MakeHuman body) skip the product; same numbers."""
  base = _sparse_keypoint_model()
  model = dataclasses.replace(base, posedirs=np.zeros_like(base.posedirs))
  rng = np.random.default_rng(6)
  theta = _random_pose(rng, 2)
  betas = rng.normal(size=(2, 10))
  smpl = SMPL(model, dtype='float64')
  full = smpl(theta, betas)
  fast = smpl.keypoints_only(theta, betas)
  for b in range(2):
    verts, joints = smpl_reference.smpl_forward(model, theta[b], betas[b])
    np.testing.assert_allclose(full.vertices[b], verts, atol=1e-10)
    np.testing.assert_allclose(full.joints[b], joints, atol=1e-10)
    np.testing.assert_allclose(fast.keypoints[b],
                               model.cocoplus_regressor @ verts, atol=1e-10)
  # The reference poses with the correctives, so it can tell them apart.
  verts, _ = smpl_reference.smpl_forward(base, theta[0], betas[0])
  assert np.abs(full.vertices[0] - verts).max() > 1e-6


def test_keypoints_only_checks_betas_as_call_does():
  smpl = SMPL(_sparse_keypoint_model())
  with pytest.raises(ValueError, match='betas'):
    smpl.keypoints_only(np.zeros([1, 72]), np.zeros([1, 11]))


def test_keypoints_only_needs_a_keypoint_regressor():
  model = smpl_reference.random_body_model(num_vertices=50, cocoplus=False)
  with pytest.raises(ValueError, match='cocoplus_regressor'):
    SMPL(model).keypoints_only(np.zeros([1, 72]), np.zeros([1, 10]))


def test_stand_in_log_line_names_the_body_once(monkeypatch):
  body = dataclasses.replace(
      smpl_reference.random_body_model(num_vertices=50),
      metadata={'standin': True, 'name': 'Some body (CC0), not SMPL'})
  # Recorded at absl.logging's call (pytest's caplog misses absl records
  # once another test has set up absl's handler).
  from hmr_tf.smpl import layer as layer_lib  # pylint: disable=g-import-not-at-top
  lines = []
  monkeypatch.setattr(layer_lib.logging, 'info',
                      lambda msg, *args: lines.append(msg % args))
  SMPL(body)
  lines = [l for l in lines if 'stand-in body model' in l]
  assert lines == ['SMPL layer uses a stand-in body model: Some body (CC0), '
                   'not SMPL.']
