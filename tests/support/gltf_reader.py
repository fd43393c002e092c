"""A glTF 2.0 binary (.glb) reader and skinning evaluator in NumPy, for tests.

Written from the glTF 2.0 specification (Khronos), independently of
hmr_tf.inference.gltf: the GLB container (section 4.4), accessors (3.6.2),
node TRS and the scene hierarchy (3.5), animation samplers (3.11, LINEAR:
lerp for translations, slerp for rotations; STEP) and skinning (3.7.3:
jointMatrix = globalTransform(joint) · inverseBindMatrix, the skinned mesh
node's own transform ignored).
"""

import json
import struct
from typing import Any, Dict, List, Optional

import numpy as np

_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16,
           5125: np.uint32, 5126: np.float32}
_COMPONENTS = {'SCALAR': 1, 'VEC2': 2, 'VEC3': 3, 'VEC4': 4, 'MAT2': 4,
               'MAT3': 9, 'MAT4': 16}


class Gltf:
  """One parsed .glb file: `doc` (the JSON) and `accessor(i)`."""

  def __init__(self, path: str):
    with open(path, 'rb') as f:
      data = f.read()
    magic, version, length = struct.unpack_from('<III', data, 0)
    assert magic == 0x46546C67, 'not a GLB file'
    assert version == 2, version
    assert length == len(data), (length, len(data))
    chunks = []
    offset = 12
    while offset < length:
      size, kind = struct.unpack_from('<II', data, offset)
      assert size % 4 == 0, 'chunks are 4-byte aligned'
      chunks.append((kind, data[offset + 8:offset + 8 + size]))
      offset += 8 + size
    assert chunks[0][0] == 0x4E4F534A, 'first chunk must be JSON'
    self.doc: Dict[str, Any] = json.loads(chunks[0][1].decode('utf-8'))
    self.bin: Optional[bytes] = None
    if len(chunks) > 1:
      assert chunks[1][0] == 0x004E4942, 'second chunk must be BIN'
      self.bin = chunks[1][1]

  def accessor(self, index: int) -> np.ndarray:
    """The accessor's elements as [count, components] (MAT4: [count, 4, 4])."""
    acc = self.doc['accessors'][index]
    view = self.doc['bufferViews'][acc['bufferView']]
    assert view['buffer'] == 0 and 'uri' not in self.doc['buffers'][0]
    dtype = np.dtype(_DTYPES[acc['componentType']]).newbyteorder('<')
    ncomp = _COMPONENTS[acc['type']]
    elem = dtype.itemsize * ncomp
    stride = view.get('byteStride', elem)
    start = view.get('byteOffset', 0) + acc.get('byteOffset', 0)
    count = acc['count']
    rows = [np.frombuffer(self.bin, dtype, ncomp, start + i * stride)
            for i in range(count)] if stride != elem else [
                np.frombuffer(self.bin, dtype, count * ncomp, start)]
    out = np.concatenate(rows).reshape(count, ncomp)
    if acc.get('normalized') and dtype.kind in 'iu':
      out = out / np.iinfo(dtype).max
    if acc['type'] == 'MAT4':  # column-major in the file
      out = np.transpose(out.reshape(count, 4, 4), (0, 2, 1))
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
  """(x, y, z, w) unit quaternion -> [3, 3]."""
  x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
  return np.array([
      [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _slerp(a, b, u):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  dot = float(np.dot(a, b))
  if dot < 0:  # the shorter arc
    b, dot = -b, -dot
  if dot > 0.9995:
    out = a + u * (b - a)
    return out / np.linalg.norm(out)
  angle = np.arccos(dot)
  return (np.sin((1 - u) * angle) * a + np.sin(u * angle) * b) / np.sin(angle)


def _sample(g: Gltf, sampler: Dict[str, Any], path: str, time: float):
  times = g.accessor(sampler['input'])[:, 0].astype(np.float64)
  values = g.accessor(sampler['output']).astype(np.float64)
  interp = sampler.get('interpolation', 'LINEAR')
  assert interp in ('LINEAR', 'STEP'), interp
  if time <= times[0]:
    return values[0]
  if time >= times[-1]:
    return values[-1]
  i = int(np.searchsorted(times, time, side='right')) - 1
  if interp == 'STEP':
    return values[i]
  u = (time - times[i]) / (times[i + 1] - times[i])
  if path == 'rotation':
    return _slerp(values[i], values[i + 1], u)
  return (1 - u) * values[i] + u * values[i + 1]


def local_matrices(g: Gltf, animation: Optional[int] = None,
                   time: float = 0.0) -> List[np.ndarray]:
  """Every node's local 4x4 matrix, the animation's values at `time` applied."""
  trs = []
  for node in g.doc['nodes']:
    if 'matrix' in node:
      trs.append({'matrix': np.asarray(node['matrix'], np.float64).reshape(
          4, 4).T})
    else:
      trs.append({'translation': np.asarray(node.get('translation', [0, 0, 0]),
                                            np.float64),
                  'rotation': np.asarray(node.get('rotation', [0, 0, 0, 1]),
                                         np.float64),
                  'scale': np.asarray(node.get('scale', [1, 1, 1]),
                                      np.float64)})
  if animation is not None:
    anim = g.doc['animations'][animation]
    for channel in anim['channels']:
      target = channel['target']
      path = target['path']
      if path == 'weights':  # morph weights: see `morph_weights`
        continue
      assert path in ('translation', 'rotation', 'scale'), path
      trs[target['node']][path] = _sample(
          g, anim['samplers'][channel['sampler']], path, time)
  mats = []
  for t in trs:
    if 'matrix' in t:
      mats.append(t['matrix'])
      continue
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(t['rotation']) @ np.diag(t['scale'])
    m[:3, 3] = t['translation']
    mats.append(m)
  return mats


def morph_weights(g: Gltf, node_index: int, animation: Optional[int] = None,
                  time: float = 0.0) -> np.ndarray:
  """The morph target weights of a mesh node at `time` ([K]; K may be 0).

  The node's `weights`, else its mesh's, else zeros; an animation channel
  with path 'weights' overrides them (its output holds K values per
  keyframe).
  """
  node = g.doc['nodes'][node_index]
  mesh = g.doc['meshes'][node['mesh']]
  count = len(mesh['primitives'][0].get('targets', []))
  weights = np.asarray(node.get('weights', mesh.get('weights', [0.0] * count)),
                       np.float64)
  if animation is None:
    return weights
  anim = g.doc['animations'][animation]
  for channel in anim['channels']:
    target = channel['target']
    if target['node'] != node_index or target['path'] != 'weights':
      continue
    sampler = anim['samplers'][channel['sampler']]
    times = g.accessor(sampler['input'])[:, 0].astype(np.float64)
    values = g.accessor(sampler['output']).astype(np.float64).reshape(
        len(times), count)
    if time <= times[0]:
      return values[0]
    if time >= times[-1]:
      return values[-1]
    i = int(np.searchsorted(times, time, side='right')) - 1
    if sampler.get('interpolation', 'LINEAR') == 'STEP':
      return values[i]
    u = (time - times[i]) / (times[i + 1] - times[i])
    return (1 - u) * values[i] + u * values[i + 1]
  return weights


def world_matrices(g: Gltf, local: List[np.ndarray]) -> Dict[int, np.ndarray]:
  """Global matrices of the default scene's nodes (parent · child)."""
  scene = g.doc['scenes'][g.doc.get('scene', 0)]
  world = {}
  stack = [(n, np.eye(4)) for n in scene['nodes']]
  while stack:
    n, parent = stack.pop()
    assert n not in world, 'a node may have one parent'
    world[n] = parent @ local[n]
    stack.extend((c, world[n]) for c in g.doc['nodes'][n].get('children', []))
  return world


def primitive_attribute(g: Gltf, mesh: int, name: str) -> np.ndarray:
  return g.accessor(g.doc['meshes'][mesh]['primitives'][0]['attributes'][name])


def posed_mesh(g: Gltf, mesh_node: int, animation: Optional[int] = None,
               time: float = 0.0) -> np.ndarray:
  """The vertices of a mesh node as a viewer shows them at `time`.

  POSITION plus the weighted morph targets, then unskinned: world(node) ·
  position; skinned: Σ over every JOINTS_n/WEIGHTS_n set of weight ·
  jointMatrix · position (the node's own transform ignored).

  Returns:
    [V, 3] float64.
  """
  node = g.doc['nodes'][mesh_node]
  world = world_matrices(g, local_matrices(g, animation, time))
  pos = primitive_attribute(g, node['mesh'], 'POSITION').astype(np.float64)
  # Morph targets are added first (spec 3.7.2.2), then the skin applies.
  targets = g.doc['meshes'][node['mesh']]['primitives'][0].get('targets', [])
  for w, target in zip(morph_weights(g, mesh_node, animation, time), targets):
    pos = pos + w * g.accessor(target['POSITION']).astype(np.float64)
  homo = np.concatenate([pos, np.ones((len(pos), 1))], axis=1)
  if 'skin' not in node:
    return (homo @ world[mesh_node].T)[:, :3]
  skin = g.doc['skins'][node['skin']]
  ibm = g.accessor(skin['inverseBindMatrices']).astype(np.float64)
  joint_mats = np.stack([world[j] @ ibm[k]
                         for k, j in enumerate(skin['joints'])])
  attrs = g.doc['meshes'][node['mesh']]['primitives'][0]['attributes']
  out = np.zeros_like(homo)
  total = np.zeros(len(pos))
  s = 0
  while f'JOINTS_{s}' in attrs:
    joints = g.accessor(attrs[f'JOINTS_{s}']).astype(np.int64)
    weights = g.accessor(attrs[f'WEIGHTS_{s}']).astype(np.float64)
    for c in range(4):
      m = joint_mats[joints[:, c]]  # [V, 4, 4]
      out += weights[:, c:c + 1] * np.einsum('vij,vj->vi', m, homo)
      total += weights[:, c]
    s += 1
  assert s > 0, 'a skinned mesh needs JOINTS_0 and WEIGHTS_0'
  assert np.allclose(total, 1.0, atol=1e-5), 'weights must sum to 1'
  return out[:, :3]


def keyframe_times(g: Gltf, animation: int = 0) -> np.ndarray:
  """The union of the animation's sampler input times."""
  anim = g.doc['animations'][animation]
  return np.unique(np.concatenate(
      [g.accessor(s['input'])[:, 0] for s in anim['samplers']]))
