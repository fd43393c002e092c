"""The .glb writers, checked by reading the files back as the glTF spec says.

The reference for the animated file is hmr_tf's SMPL layer (TensorFlow,
float64) without pose blend shapes, plus the translation, turned into glTF's
frame; the file is evaluated by tests/support/gltf_reader.py (NumPy, from the
glTF 2.0 specification), never by the writer's own code. The Khronos
validator (node + the npm package gltf-validator) checks both kinds of file.
"""

import dataclasses
import os

import numpy as np
import pytest

import gltf_reader
import gltf_validator
from hmr_tf.inference import gltf
from hmr_tf.smpl import standin

NUM_FRAMES = 6
FPS = 25.0
FLIP = np.diag([1.0, -1.0, -1.0])  # camera frame -> glTF frame


@pytest.fixture(scope='module')
def body():
  # The stand-in has nonzero pose correctives (dropped by the skin) and up to
  # six joints per vertex (two JOINTS/WEIGHTS sets).
  return standin.build(num_vertices=600)


@pytest.fixture(scope='module')
def track(body):
  rng = np.random.default_rng(3)
  theta = rng.normal(size=(NUM_FRAMES, 72)) * 0.35
  theta[:, :3] = [np.pi, 0.0, 0.0]  # upright in the camera frame (y down)
  theta[:, :3] += rng.normal(size=(NUM_FRAMES, 3)) * 0.2
  theta[2, 3:6] = [0.0, 0.0, 2.5]  # a large turn (quaternion w < 0.4)
  translation = np.array([0.1, 0.2, 6.0]) + rng.normal(
      size=(NUM_FRAMES, 3)) * 0.1
  betas = rng.normal(size=10)
  return theta, translation, betas


@pytest.fixture(scope='module')
def track_file(body, track, tmp_path_factory):
  theta, translation, betas = track
  path = str(tmp_path_factory.mktemp('glb') / 'track.glb')
  assert gltf.write_track_glb(path, body, betas, theta, translation,
                              FPS) == path
  return path


def _smpl_no_correctives(body, theta, betas):
  """[T, N, 3] SMPL(θ_t, β) from hmr_tf's layer, pose blend shapes zeroed."""
  from hmr_tf.smpl import layer  # pylint: disable=g-import-not-at-top
  flat = dataclasses.replace(body, posedirs=np.zeros_like(body.posedirs))
  smpl = layer.SMPL(flat, dtype='float64')
  out = smpl(theta, np.tile(betas, (len(theta), 1)))
  return out.vertices.numpy()


def _mesh_node(g):
  return next(i for i, n in enumerate(g.doc['nodes']) if 'mesh' in n)


def test_track_file_replays_smpl_every_frame(body, track, track_file):
  theta, translation, betas = track
  expected = (_smpl_no_correctives(body, theta, betas) +
              translation[:, None]) @ FLIP.T
  g = gltf_reader.Gltf(track_file)
  times = gltf_reader.keyframe_times(g)
  np.testing.assert_allclose(times, np.arange(NUM_FRAMES) / FPS, atol=1e-6)
  node = _mesh_node(g)
  errors = [np.max(np.linalg.norm(
      gltf_reader.posed_mesh(g, node, 0, float(times[t])) - expected[t],
      axis=1)) for t in range(NUM_FRAMES)]
  assert max(errors) < 1e-3, errors  # the issue's bound: 1 mm
  assert max(errors) < 1e-5, errors  # in fact float32 round-off
  # Without playing, a viewer shows frame 0.
  np.testing.assert_allclose(gltf_reader.posed_mesh(g, node), expected[0],
                             atol=1e-5)
  # The file's skin is SMPL's without the correctives, not with them: the
  # stand-in's correctives move this pose's vertices by more than 1 mm.
  from hmr_tf.smpl import layer  # pylint: disable=g-import-not-at-top
  full = layer.SMPL(body, dtype='float64')(theta[:1], betas[None]).vertices
  full = (full.numpy()[0] + translation[0]) @ FLIP.T
  assert np.max(np.linalg.norm(full - expected[0], axis=1)) > 1e-3


def test_pose_correctives_as_morph_targets_are_exact(body, track, tmp_path):
  """With the correctives as morph targets the file is SMPL itself."""
  from hmr_tf.smpl import layer  # pylint: disable=g-import-not-at-top
  theta, translation, betas = track
  path = str(tmp_path / 'morph.glb')
  gltf.write_track_glb(path, body, betas, theta[:3], translation[:3], FPS,
                       pose_correctives=True)
  out = layer.SMPL(body, dtype='float64')(theta[:3], np.tile(betas, (3, 1)))
  expected = (out.vertices.numpy() + translation[:3, None]) @ FLIP.T
  g = gltf_reader.Gltf(path)
  node = _mesh_node(g)
  prim = g.doc['meshes'][g.doc['nodes'][node]['mesh']]['primitives'][0]
  assert len(prim['targets']) == 207  # every stand-in column is nonzero
  for t in range(3):
    got = gltf_reader.posed_mesh(g, node, 0, t / FPS)
    assert np.max(np.linalg.norm(got - expected[t], axis=1)) < 1e-5, t
  # A body without correctives gets no targets.
  flat = dataclasses.replace(body, posedirs=np.zeros_like(body.posedirs))
  gltf.write_track_glb(path, flat, betas, theta[:1], translation[:1], FPS,
                       pose_correctives=True)
  doc = gltf_reader.Gltf(path).doc
  assert 'targets' not in doc['meshes'][0]['primitives'][0]


def test_track_file_structure(body, track, track_file):
  theta, _, betas = track
  g = gltf_reader.Gltf(track_file)
  doc = g.doc
  node = doc['nodes'][_mesh_node(g)]
  skin = doc['skins'][node['skin']]
  joints = skin['joints']
  assert len(joints) == 24
  # SMPL's tree: each joint node's children are the joints whose parent it is.
  for k, j in enumerate(joints):
    children = doc['nodes'][j].get('children', [])
    assert sorted(children) == sorted(
        joints[c] for c in range(24) if body.parents[c] == k)
  # The rest shape is the track's own: v_template + shapedirs · β, and the
  # rest joint offsets J(β)_k − J(β)_parent.
  rest = body.v_template + body.shapedirs @ betas
  rest_j = body.J_regressor @ rest
  positions = gltf_reader.primitive_attribute(g, node['mesh'], 'POSITION')
  np.testing.assert_allclose(positions, rest, atol=1e-6)
  for k in range(1, 24):
    np.testing.assert_allclose(
        doc['nodes'][joints[k]]['translation'],
        rest_j[k] - rest_j[body.parents[k]], atol=1e-6)
  ibm = g.accessor(skin['inverseBindMatrices'])
  np.testing.assert_allclose(ibm[:, :3, 3], -rest_j, atol=1e-6)
  # The frame flip is the skeleton's parent, a half turn about x.
  parent = [i for i, n in enumerate(doc['nodes'])
            if joints[0] in n.get('children', [])]
  assert len(parent) == 1
  flip = gltf_reader.local_matrices(g)[parent[0]]
  np.testing.assert_allclose(flip[:3, :3], FLIP, atol=1e-12)
  # Every nonzero weight is there: two sets for the stand-in's six.
  attrs = doc['meshes'][node['mesh']]['primitives'][0]['attributes']
  assert 'JOINTS_1' in attrs and 'JOINTS_2' not in attrs
  normals = gltf_reader.primitive_attribute(g, node['mesh'], 'NORMAL')
  np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
  # One animation: 24 rotation channels and the root's translation.
  paths = sorted((c['target']['node'], c['target']['path'])
                 for c in doc['animations'][0]['channels'])
  assert paths == sorted([(j, 'rotation') for j in joints] +
                         [(joints[0], 'translation')])
  assert len(theta) == NUM_FRAMES


def test_four_influences_one_set(body, track, tmp_path):
  """`max_influences=4`: one set, the four largest weights renormalised."""
  theta, translation, betas = track
  path = str(tmp_path / 'four.glb')
  gltf.write_track_glb(path, body, betas, theta[:1], translation[:1], FPS,
                       max_influences=4)
  g = gltf_reader.Gltf(path)
  node = g.doc['nodes'][_mesh_node(g)]
  attrs = g.doc['meshes'][node['mesh']]['primitives'][0]['attributes']
  assert 'JOINTS_1' not in attrs
  joints = g.accessor(attrs['JOINTS_0']).astype(int)
  weights = g.accessor(attrs['WEIGHTS_0']).astype(np.float64)
  for v in range(body.num_vertices):
    top = np.argsort(-body.weights[v], kind='stable')[:4]
    want = body.weights[v, top] / body.weights[v, top].sum()
    got = np.zeros(24)
    np.add.at(got, joints[v], weights[v])
    ref = np.zeros(24)
    ref[top] = want
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_static_mesh_file(body, tmp_path):
  rng = np.random.default_rng(0)
  vertices = body.v_template @ FLIP + [0.0, 0.3, 5.0]  # camera frame
  vertices = vertices + rng.normal(size=vertices.shape) * 1e-3
  path = str(tmp_path / 'mesh.glb')
  gltf.write_mesh_glb(path, vertices, body.faces, name='person_0')
  g = gltf_reader.Gltf(path)
  node = _mesh_node(g)
  assert g.doc['nodes'][node]['name'] == 'person_0'
  np.testing.assert_allclose(gltf_reader.posed_mesh(g, node),
                             vertices @ FLIP.T, atol=1e-6)
  prim = g.doc['meshes'][0]['primitives'][0]
  np.testing.assert_array_equal(g.accessor(prim['indices']).reshape(-1, 3),
                                body.faces)
  # Outward faces stay counter-clockwise: the closed stand-in's signed
  # volume is positive, in glTF's frame as in the model's.
  pos = g.accessor(prim['attributes']['POSITION']).astype(np.float64)
  tri = pos[body.faces]
  volume = np.sum(tri[:, 0] * np.cross(tri[:, 1], tri[:, 2])) / 6
  assert volume > 0.01  # m³; a ~1.7 m body holds tens of litres
  # Vertex normals: unit, and on the side of their faces' normals.
  normals = g.accessor(prim['attributes']['NORMAL']).astype(np.float64)
  np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
  face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  agree = np.einsum('fc,fkc->fk', face_n, normals[body.faces])
  assert np.mean(agree > 0) > 0.99


@pytest.mark.parametrize('field,kwargs,message', [
    ('theta', dict(theta=np.zeros((3, 71))), 'theta must be [?, 72]'),
    ('translation', dict(translation=np.zeros((2, 3))),
     'translation must be [3, 3]'),
    ('fps', dict(fps=0.0), 'fps must be a positive number'),
    ('theta', dict(theta=np.full((3, 72), np.nan)), 'theta has non-finite'),
    ('betas', dict(betas=np.zeros(11)), 'betas must hold at most 10'),
])
def test_bad_track_input_names_file_and_field(body, tmp_path, field, kwargs,
                                              message):
  path = tmp_path / 'out.glb'
  path.write_bytes(b'previous')
  args = dict(theta=np.zeros((3, 72)), translation=np.zeros((3, 3)),
              betas=np.zeros(10), fps=FPS)
  args.update(kwargs)
  with pytest.raises(ValueError) as e:
    gltf.write_track_glb(str(path), body, args['betas'], args['theta'],
                         args['translation'], args['fps'])
  assert str(e.value).startswith(f'{path}: {field}')
  assert message in str(e.value)
  assert path.read_bytes() == b'previous'  # nothing half-written
  assert sorted(os.listdir(tmp_path)) == ['out.glb']


def test_bad_skin_weights(body, tmp_path):
  path = str(tmp_path / 'w.glb')
  weights = body.weights.copy()
  weights[5] = 0.0
  broken = dataclasses.replace(body, weights=weights)
  with pytest.raises(ValueError, match='w.glb: body model weights must be'):
    gltf.write_track_glb(path, broken, np.zeros(10), np.zeros((1, 72)),
                         np.zeros((1, 3)), FPS)
  assert not os.path.exists(path)


def test_bad_mesh_input(tmp_path):
  path = str(tmp_path / 'm.glb')
  with pytest.raises(ValueError, match='m.glb: faces must index vertices'):
    gltf.write_mesh_glb(path, np.zeros((3, 3)), [[0, 1, 3]])
  with pytest.raises(ValueError, match=r'm.glb: vertices must be \[\?, 3\]'):
    gltf.write_mesh_glb(path, np.zeros((3, 2)), [[0, 1, 2]])
  assert not os.path.exists(path)


# ---------------------------------------------------------------------------
# The Khronos validator (tests/support/gltf_validator.py).

def test_khronos_validator_finds_no_issue(body, track, track_file, tmp_path):
  theta, translation, betas = track
  static = str(tmp_path / 'static.glb')
  gltf.write_mesh_glb(static, body.v_template, body.faces)
  single = str(tmp_path / 'single_frame.glb')
  gltf.write_track_glb(single, body, betas, theta[:1], translation[:1], FPS,
                       max_influences=4)
  morph = str(tmp_path / 'morph.glb')
  gltf.write_track_glb(morph, body, betas, theta, translation, FPS,
                       pose_correctives=True)
  reports = gltf_validator.validate([static, track_file, single, morph])
  assert len(reports) == 4
  for report in reports:
    counts = [report[k] for k in ('numErrors', 'numWarnings', 'numInfos',
                                  'numHints')]
    assert counts == [0, 0, 0, 0], (report['file'], report['messages'][:5])


def test_khronos_validator_catches_a_broken_file(body, tmp_path,
                                                monkeypatch):
  """The check can fail: weights that sum to 1.5 are reported."""
  path = str(tmp_path / 'broken.glb')
  original = gltf.skin_influences

  def heavy(weights, max_influences=None):
    joints, w = original(weights, max_influences)
    return joints, (w * 1.5).astype(np.float32)

  monkeypatch.setattr(gltf, 'skin_influences', heavy)
  gltf.write_track_glb(path, body, np.zeros(10), np.zeros((1, 72)),
                       np.zeros((1, 3)), FPS)
  report, = gltf_validator.validate([path])
  assert report['numErrors'] > 0
  assert any(m['code'] == 'ACCESSOR_WEIGHTS_NON_NORMALIZED'
             for m in report['messages'])
