"""glTF 2.0 binary files (`.glb`) of predicted bodies, from NumPy alone.

Two writers, both over one small GLB builder (no dependency beyond NumPy):
- `write_mesh_glb`: one posed mesh (positions, normals, triangles, a plain
  material), e.g. one person in one picture.
- `write_track_glb`: one person over a video: a skinned mesh in the track's
  own rest shape, SMPL's 24 joints as a node hierarchy, and an animation that
  plays the per-frame joint rotations and the root translation.

Frames. The demo's 3D points are in the camera frame of OpenCV (x right, y
down, z forward, metres); glTF's is y up with the viewer looking down -z. The
two differ by a half turn about x: (x, y, z) -> (x, -y, -z), a rotation, so
triangle winding (outward faces counter-clockwise) is kept. The static
writer applies it to the vertices; the animated file holds it as the parent
node of the skeleton (`camera_to_gltf`), so the joints keep SMPL's values.

Skinning (glTF 2.0, section 3.7.3): a vertex moves by Σ_k w_k · jointMatrix_k
with jointMatrix_k = world(joint_k) · inverseBindMatrix_k. With joint k's
local transform [R_k | j_k − j_parent(k)] (the root's: [R_0 | j_0 + t]) and
inverse bind matrix [I | −j_k], this is SMPL's linear blend skinning (SMPL
paper eq. 2–4) of the rest vertices, plus t, then the frame flip. What a
skin leaves out: SMPL's pose blend shapes (pose correctives, eq. 9). They
are zero in the MakeHuman-derived body and small in SMPL;
`pose_correctives=True` adds them as morph targets (glTF adds those to the
rest vertices before skinning, as SMPL does) with per-frame weights, which
makes every frame exact at the cost of one target per corrective.

Influences: every nonzero skinning weight is written, four per
JOINTS_n/WEIGHTS_n set, largest first, so the skin is the body's exactly
(the MakeHuman body has up to 7 per vertex: two sets). three.js reads only
the first set and renormalises it, so there a vertex follows its four
largest influences (up to ~2 cm off on the embedded bodies);
`max_influences=4` writes exactly that, in one set, for every viewer.
"""

import json
import os
import struct
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.smpl import joints as joints_lib

# glTF constants (the specification's enums).
_FLOAT = 5126
_UNSIGNED_BYTE = 5121
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_TRIANGLES = 4
_NUM_COMPONENTS = {'SCALAR': 1, 'VEC3': 3, 'VEC4': 4, 'MAT4': 16}

# GLB container (glTF 2.0, section 4.4).
_GLB_MAGIC = 0x46546C67  # 'glTF'
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

# The camera frame (OpenCV) -> glTF frame: a half turn about x.
CAMERA_TO_GLTF = np.diag([1.0, -1.0, -1.0])
# The same rotation as a glTF quaternion (x, y, z, w).
_CAMERA_TO_GLTF_QUAT = [1.0, 0.0, 0.0, 0.0]

_INFLUENCES_PER_SET = 4
_DEFAULT_COLOR = (0.65, 0.74, 0.86, 1.0)


# ---------------------------------------------------------------------------
# Input checks: one line naming the file, the field and what was expected.


def _array(path, field, value, shape, dtype=np.float64):
  """`value` as an array of `shape` (None: any size), finite where float."""
  try:
    arr = np.asarray(value, dtype=dtype)
  except (TypeError, ValueError) as e:
    raise ValueError(f'{path}: {field} is not a numeric array ({e})') from e
  ok = arr.ndim == len(shape) and all(
      s is None or s == n for s, n in zip(shape, arr.shape))
  if not ok:
    want = ', '.join('?' if s is None else str(s) for s in shape)
    raise ValueError(f'{path}: {field} must be [{want}], got shape '
                     f'{list(arr.shape)}')
  if arr.dtype.kind == 'f' and not np.all(np.isfinite(arr)):
    raise ValueError(f'{path}: {field} has non-finite values')
  return arr


def _faces(path, faces, num_vertices):
  faces = _array(path, 'faces', faces, (None, 3), dtype=np.int64)
  if faces.shape[0] == 0:
    raise ValueError(f'{path}: faces must hold at least one triangle')
  if faces.min() < 0 or faces.max() >= num_vertices:
    raise ValueError(f'{path}: faces must index vertices in [0, '
                     f'{num_vertices}), got [{faces.min()}, {faces.max()}]')
  return faces


# ---------------------------------------------------------------------------
# Geometry helpers.


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Unit area-weighted vertex normals.

  Args:
    vertices: [V, 3].
    faces: [F, 3] int, counter-clockwise seen from outside.

  Returns:
    [V, 3] float64 unit vectors; vertices in no triangle (or only in
    degenerate ones) get +y, since glTF asks every normal to be unit length.
  """
  v = np.asarray(vertices, np.float64)
  tri = v[faces]
  face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  normals = np.zeros_like(v)
  for corner in range(3):
    np.add.at(normals, faces[:, corner], face_n)
  length = np.linalg.norm(normals, axis=1, keepdims=True)
  unit = np.where(length > 1e-12, normals / np.maximum(length, 1e-300),
                  np.array([0.0, 1.0, 0.0]))
  return unit


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
  """Axis-angle vectors to unit quaternions in glTF's (x, y, z, w) order.

  Args:
    axis_angle: [..., 3], the axis times the angle in radians.

  Returns:
    [..., 4] float64 unit quaternions.
  """
  r = np.asarray(axis_angle, np.float64)
  angle = np.linalg.norm(r, axis=-1, keepdims=True)
  half = 0.5 * angle
  # sin(θ/2)/θ, with its limit 1/2 at θ = 0.
  scale = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-300),
                   0.5)
  return np.concatenate([r * scale, np.cos(half)], axis=-1)


def _continuous(quats: np.ndarray) -> np.ndarray:
  """[T, J, 4] with each quaternion's sign chosen nearest the previous frame.

  q and −q are the same rotation; keeping neighbours in one hemisphere makes
  a viewer's interpolation between keyframes take the short way round.
  """
  out = quats.copy()
  for t in range(1, len(out)):
    flip = np.sum(out[t] * out[t - 1], axis=-1) < 0
    out[t, flip] *= -1
  return out


def skin_influences(weights: np.ndarray,
                    max_influences: Optional[int] = None):
  """Per-vertex joints and weights in sets of four, largest first.

  Args:
    weights: [V, J] skinning weights (rows sum to 1).
    max_influences: keep at most this many per vertex (renormalised); None
      keeps every nonzero weight (exact).

  Returns:
    joints [V, 4 S] uint8 and weights [V, 4 S] float32 (rows sum to 1 to
    float32 round-off), S = the number of JOINTS_n/WEIGHTS_n sets. Unused
    slots hold joint 0 with weight 0.
  """
  w = np.asarray(weights, np.float64)
  num_joints = w.shape[1]
  count = int(np.max(np.sum(w > 0, axis=1)))
  if max_influences is not None:
    count = min(count, int(max_influences))
  slots = _INFLUENCES_PER_SET * max(1, -(-count // _INFLUENCES_PER_SET))
  slots = min(slots, _INFLUENCES_PER_SET * -(-num_joints // 4))
  order = np.argsort(-w, axis=1, kind='stable')  # every joint, largest first
  joints = order[:, :slots]
  kept = np.take_along_axis(w, joints, axis=1)
  kept[:, count:] = 0.0
  # An unused slot holds joint 0 (the validator warns about any other joint
  # index with weight 0).
  joints = np.where(kept > 0, joints, 0)
  kept /= np.sum(kept, axis=1, keepdims=True)
  kept32 = kept.astype(np.float32)
  # Put the float32 rounding residue on the largest weight, so each row sums
  # to 1 as closely as float32 allows.
  kept32[:, 0] += (1.0 - kept32.astype(np.float64).sum(1)).astype(np.float32)
  return joints.astype(np.uint8), kept32


# ---------------------------------------------------------------------------
# The GLB builder.


class _Builder:
  """Collects buffer views, accessors and the JSON of one .glb file."""

  def __init__(self):
    self._blob = bytearray()
    self.doc: Dict[str, Any] = {
        'asset': {'version': '2.0', 'generator': 'hmr_tf'},
        'buffers': [], 'bufferViews': [], 'accessors': [],
    }

  def _view(self, data: bytes, target: Optional[int]) -> int:
    while len(self._blob) % 4:  # every accessor here wants 4-byte alignment
      self._blob.append(0)
    view = {'buffer': 0, 'byteOffset': len(self._blob),
            'byteLength': len(data)}
    if target is not None:
      view['target'] = target
    self._blob.extend(data)
    self.doc['bufferViews'].append(view)
    return len(self.doc['bufferViews']) - 1

  def accessor(self, array: np.ndarray, kind: str, component: int,
               target: Optional[int] = None, bounds: bool = False,
               normalized: bool = False) -> int:
    """Adds one tightly packed accessor; returns its index."""
    dtype = {_FLOAT: '<f4', _UNSIGNED_BYTE: 'u1', _UNSIGNED_SHORT: '<u2',
             _UNSIGNED_INT: '<u4'}[component]
    arr = np.ascontiguousarray(array, dtype=dtype)
    count = arr.size // _NUM_COMPONENTS[kind]
    acc = {'bufferView': self._view(arr.tobytes(), target),
           'componentType': component, 'count': count, 'type': kind}
    if normalized:
      acc['normalized'] = True
    if bounds:
      flat = arr.reshape(count, -1)
      cast = float if component == _FLOAT else int
      acc['min'] = [cast(x) for x in flat.min(0)]
      acc['max'] = [cast(x) for x in flat.max(0)]
    self.doc['accessors'].append(acc)
    return len(self.doc['accessors']) - 1

  def glb(self) -> bytes:
    """The file: 12-byte header, the JSON chunk, the BIN chunk."""
    while len(self._blob) % 4:
      self._blob.append(0)
    self.doc['buffers'] = [{'byteLength': len(self._blob)}]
    text = json.dumps(self.doc, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 4)  # the JSON chunk pads with spaces
    total = 12 + 8 + len(text) + 8 + len(self._blob)
    return b''.join([
        struct.pack('<III', _GLB_MAGIC, 2, total),
        struct.pack('<II', len(text), _CHUNK_JSON), text,
        struct.pack('<II', len(self._blob), _CHUNK_BIN), bytes(self._blob)])


def _material(color: Sequence[float]) -> Dict[str, Any]:
  return {'name': 'body',
          'pbrMetallicRoughness': {'baseColorFactor': [float(c) for c in color],
                                   'metallicFactor': 0.0,
                                   'roughnessFactor': 0.8}}


def _geometry(builder: _Builder, vertices: np.ndarray,
              faces: np.ndarray) -> Dict[str, int]:
  """POSITION and NORMAL accessors and the triangle indices."""
  index_type = _UNSIGNED_SHORT if len(vertices) < 65535 else _UNSIGNED_INT
  return dict(
      POSITION=builder.accessor(vertices, 'VEC3', _FLOAT, _ARRAY_BUFFER,
                                bounds=True),
      NORMAL=builder.accessor(vertex_normals(vertices, faces), 'VEC3', _FLOAT,
                              _ARRAY_BUFFER),
      indices=builder.accessor(faces.reshape(-1), 'SCALAR', index_type,
                               _ELEMENT_ARRAY_BUFFER))


# ---------------------------------------------------------------------------
# Writers.


def write_mesh_glb(path: str, vertices, faces, *, name: str = 'person',
                   color: Sequence[float] = _DEFAULT_COLOR) -> str:
  """Writes one static posed mesh as a .glb file, atomically.

  Args:
    path: the output file.
    vertices: [V, 3] float, metres, in the demo's camera frame (x right, y
      down, z forward); written in glTF's frame (x, −y, −z).
    faces: [F, 3] int, counter-clockwise seen from outside.
    name: the glTF node and mesh name.
    color: RGBA base colour in [0, 1] (linear).

  Returns:
    path.

  Raises:
    ValueError: naming the file and the field, for a wrong shape, non-finite
      values or out-of-range faces.
  """
  path = os.fspath(path)
  vertices = _array(path, 'vertices', vertices, (None, 3))
  faces = _faces(path, faces, len(vertices))
  builder = _Builder()
  attrs = _geometry(builder, vertices @ CAMERA_TO_GLTF.T, faces)
  indices = attrs.pop('indices')
  builder.doc.update(
      scene=0, scenes=[{'nodes': [0]}],
      nodes=[{'name': name, 'mesh': 0}],
      meshes=[{'name': name, 'primitives': [
          {'attributes': attrs, 'indices': indices, 'material': 0,
           'mode': _TRIANGLES}]}],
      materials=[_material(color)])
  return atomic_io.write_bytes_atomic(path, builder.glb())


def rest_shape(body_model, betas) -> tuple:
  """The body's rest vertices and joints for one shape.

  Args:
    body_model: `hmr_tf.smpl.model_io.BodyModel`.
    betas: [K] shape coefficients, K <= the model's count.

  Returns:
    vertices [N, 3] (v_template + shapedirs · β) and joints [24, 3]
    (J_regressor · vertices), float64 (SMPL paper eq. 8 and 10).
  """
  betas = np.asarray(betas, np.float64)
  verts = body_model.v_template + body_model.shapedirs[:, :, :len(betas)] @ betas
  return verts, body_model.J_regressor @ verts


def write_track_glb(path: str, body_model, betas, theta, translation,
                    fps: float, *, name: str = 'person',
                    max_influences: Optional[int] = None,
                    pose_correctives: bool = False,
                    color: Sequence[float] = _DEFAULT_COLOR) -> str:
  """Writes one person's track as an animated, skinned .glb file, atomically.

  The file's frame t (at time t / fps seconds) is SMPL(θ_t, β) without pose
  blend shapes, plus `translation[t]`, turned into glTF's frame: the body
  the demo overlays on frame t, as a viewer plays it. With
  `pose_correctives`, the pose blend shapes are in the file too, as morph
  targets, and frame t is SMPL(θ_t, β) exactly.

  Args:
    path: the output file.
    body_model: `hmr_tf.smpl.model_io.BodyModel` (v_template, faces, weights,
      parents, J_regressor, shapedirs).
    betas: [K] the track's shape, K <= the model's number of betas.
    theta: [T, 72] axis-angle pose per frame (joint 0 = global rotation).
    translation: [T, 3] per-frame translation in the camera frame (the demo's
      `cam_t_full`).
    fps: frames per second (> 0).
    name: the name of the mesh, its node and the animation.
    max_influences: at most this many joints per vertex (renormalised); None
      (default) writes every nonzero weight (see the module docstring).
    pose_correctives: also write SMPL's pose blend shapes: one morph target
      per nonzero column of `posedirs` (at most 207; SMPL's make the file
      ~17 MB larger) and their per-frame weights (R_j(θ_t) − I, SMPL paper
      eq. 9) as an animation channel. Nothing is added for a body without
      correctives (the MakeHuman-derived one).
    color: RGBA base colour in [0, 1].

  Returns:
    path.

  Raises:
    ValueError: naming the file and the field, for wrong shapes, non-finite
      values, a frame count that differs between `theta` and `translation`,
      or fps <= 0.
  """
  path = os.fspath(path)
  num_joints = len(body_model.parents)
  theta = _array(path, 'theta', theta, (None, 3 * num_joints))
  num_frames = theta.shape[0]
  if num_frames == 0:
    raise ValueError(f'{path}: theta must hold at least one frame')
  translation = _array(path, 'translation', translation, (num_frames, 3))
  betas = _array(path, 'betas', betas, (None,))
  if len(betas) > body_model.num_betas:
    raise ValueError(f'{path}: betas must hold at most {body_model.num_betas} '
                     f'values (the body model\'s), got {len(betas)}')
  if not (np.isfinite(fps) and fps > 0):
    raise ValueError(f'{path}: fps must be a positive number, got {fps}')
  if max_influences is not None and max_influences < 1:
    raise ValueError(f'{path}: max_influences must be >= 1, got '
                     f'{max_influences}')
  faces = _faces(path, body_model.faces, body_model.num_vertices)
  skin_weights = _array(path, 'body model weights', body_model.weights,
                        (body_model.num_vertices, num_joints))
  if np.any(skin_weights < 0) or np.any(np.sum(skin_weights, axis=1) <= 0):
    raise ValueError(f'{path}: body model weights must be >= 0 with a '
                     f'positive sum for every vertex')
  parents = [int(p) for p in body_model.parents]
  rest_verts, rest_joints = rest_shape(body_model, betas)
  local_t = rest_joints - np.concatenate(
      [np.zeros((1, 3)), rest_joints[parents[1:]]])
  quats = _continuous(axis_angle_to_quaternion(
      theta.reshape(num_frames, num_joints, 3)))
  root_t = rest_joints[0] + translation  # [T, 3]

  builder = _Builder()
  attrs = _geometry(builder, rest_verts, faces)
  indices = attrs.pop('indices')
  joints, weights = skin_influences(skin_weights, max_influences)
  for s in range(joints.shape[1] // _INFLUENCES_PER_SET):
    cols = slice(4 * s, 4 * s + 4)
    attrs[f'JOINTS_{s}'] = builder.accessor(joints[:, cols], 'VEC4',
                                            _UNSIGNED_BYTE, _ARRAY_BUFFER)
    attrs[f'WEIGHTS_{s}'] = builder.accessor(weights[:, cols], 'VEC4', _FLOAT,
                                             _ARRAY_BUFFER)
  # Inverse bind matrices [I | −j_k], column-major as glTF stores them.
  ibm = np.tile(np.eye(4), (num_joints, 1, 1))
  ibm[:, :3, 3] = -rest_joints
  ibm_acc = builder.accessor(np.transpose(ibm, (0, 2, 1)), 'MAT4', _FLOAT)
  morph = None
  if pose_correctives:
    morph = _pose_morph_targets(builder, body_model.posedirs, theta)

  # Nodes: 0 the mesh, 1 the frame flip, 2 + k joint k.
  first = 2
  nodes: List[Dict[str, Any]] = [
      {'name': name, 'mesh': 0, 'skin': 0},
      {'name': 'camera_to_gltf', 'rotation': _CAMERA_TO_GLTF_QUAT,
       'children': [first]}]
  joint_names = _joint_names(num_joints)
  for k in range(num_joints):
    # The static TRS is frame 0, what a viewer shows before playing.
    node = {'name': joint_names[k],
            'rotation': [float(x) for x in quats[0, k]],
            'translation': [float(x) for x in (root_t[0] if k == 0
                                               else local_t[k])]}
    children = [first + c for c in range(num_joints) if parents[c] == k]
    if children:
      node['children'] = children
    nodes.append(node)

  times = builder.accessor(np.arange(num_frames) / float(fps), 'SCALAR',
                           _FLOAT, bounds=True)
  samplers, channels = [], []
  for k in range(num_joints):
    samplers.append({'input': times, 'interpolation': 'LINEAR',
                     'output': builder.accessor(quats[:, k], 'VEC4', _FLOAT)})
    channels.append({'sampler': k, 'target': {'node': first + k,
                                              'path': 'rotation'}})
  samplers.append({'input': times, 'interpolation': 'LINEAR',
                   'output': builder.accessor(root_t, 'VEC3', _FLOAT)})
  channels.append({'sampler': num_joints,
                   'target': {'node': first, 'path': 'translation'}})
  primitive = {'attributes': attrs, 'indices': indices, 'material': 0,
               'mode': _TRIANGLES}
  mesh = {'name': name, 'primitives': [primitive]}
  if morph is not None:
    targets, weights = morph
    primitive['targets'] = targets
    mesh['weights'] = [float(x) for x in weights[0]]
    samplers.append({'input': times, 'interpolation': 'LINEAR',
                     'output': builder.accessor(weights.reshape(-1), 'SCALAR',
                                                _FLOAT)})
    channels.append({'sampler': len(samplers) - 1,
                     'target': {'node': 0, 'path': 'weights'}})

  builder.doc.update(
      scene=0, scenes=[{'nodes': [0, 1]}], nodes=nodes,
      meshes=[mesh],
      materials=[_material(color)],
      skins=[{'name': name, 'inverseBindMatrices': ibm_acc, 'skeleton': first,
              'joints': [first + k for k in range(num_joints)]}],
      animations=[{'name': name, 'samplers': samplers, 'channels': channels}])
  return atomic_io.write_bytes_atomic(path, builder.glb())


def _rotation_matrices(axis_angle: np.ndarray) -> np.ndarray:
  """[..., 3] axis-angle -> [..., 3, 3] (Rodrigues' formula, float64)."""
  r = np.asarray(axis_angle, np.float64)
  angle = np.linalg.norm(r, axis=-1)[..., None, None]
  k = r / np.maximum(angle[..., 0], 1e-300)
  zero = np.zeros(r.shape[:-1])
  skew = np.stack([zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0],
                   -k[..., 1], k[..., 0], zero], -1).reshape(r.shape + (3,))
  eye = np.broadcast_to(np.eye(3), skew.shape)
  return eye + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def _pose_morph_targets(builder: _Builder, posedirs: np.ndarray,
                        theta: np.ndarray):
  """SMPL's pose blend shapes as morph targets and per-frame weights.

  B_P(θ) = Σ_n (R_n(θ) − I) P_n (SMPL paper eq. 9) is a morph: target n is
  the column P_n of `posedirs` (rest-frame offsets, added before skinning as
  glTF adds morph targets), its weight at frame t the entry n of the
  flattened R_j(θ_t) − I over joints 1..23.

  Returns:
    None for a body without correctives, else (the primitive's `targets`
    list, weights [T, K] for the K nonzero columns).
  """
  posedirs = np.asarray(posedirs, np.float64)
  used = np.nonzero(np.any(posedirs != 0, axis=(0, 1)))[0]
  if used.size == 0:
    return None
  num_frames = theta.shape[0]
  rot = _rotation_matrices(theta.reshape(num_frames, -1, 3)[:, 1:])
  feature = (rot - np.eye(3)).reshape(num_frames, -1)  # [T, 207]
  targets = [{'POSITION': builder.accessor(posedirs[:, :, n], 'VEC3', _FLOAT,
                                           _ARRAY_BUFFER, bounds=True)}
             for n in used]
  return targets, feature[:, used]


def _joint_names(num_joints: int) -> List[str]:
  names = list(joints_lib.SMPL_JOINT_NAMES)
  return names if len(names) == num_joints else [
      f'joint_{k}' for k in range(num_joints)]
