"""The original HMR's TF-Slim variable names, mapped onto hmr_tf's networks.

The original code (TF1, TF-Slim) names its variables by scope; a checkpoint
it wrote (the released `model.ckpt-667589`, or slim's ImageNet
`resnet_v2_50.ckpt`) is read here by those names, whatever else it holds
(Adam slots, `global_step`, summaries are never looked at):

  resnet_v2_50/conv1/{weights, biases}          -> conv1_conv
  resnet_v2_50/block{b}/unit_{u}/bottleneck_v2/  -> conv{b+1}_block{u}_...
      preact/{gamma, beta, moving_*}            -> ..._preact_bn
      shortcut/{weights, biases}                -> ..._0_conv
      conv1/weights, conv1/BatchNorm/{...}      -> ..._1_conv, ..._1_bn
      conv2/weights, conv2/BatchNorm/{...}      -> ..._2_conv, ..._2_bn
      conv3/{weights, biases}                   -> ..._3_conv
  resnet_v2_50/postnorm/{...}                   -> post_bn
  3D_module/fc{1,2,3}/{weights, biases}         -> regressor fc1..fc3
  mean_param [1, 85]                            -> regressor Θ_0
  D/D_conv{1,2}/{weights, biases}               -> discriminator conv1, conv2
  D/pose_out_j{0..22}/{weights, biases}         -> joint_heads row j
  D/D_alljoints_fc{1,2}, D/D_alljoints_out      -> pose_fc1, pose_fc2, pose_out
  D/shape_fc1/shape_fc1_{1,2}, D/shape_final    -> shape_fc1, shape_fc2,
                                                   shape_out

TF-Slim and Keras store kernels in the same layouts ([kh, kw, in, out] and
[in, out]), so every array but the per-joint heads (23 [32, 1] kernels
stacked into one [23, 32]) is copied as it is. A mapping is checked whole
(every name present, every shape right) before anything is assigned.
"""

import dataclasses
from typing import Callable, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

# Bottleneck units per block of resnet_v2_50.
RESNET_V2_50_UNITS = (3, 4, 6, 3)
RESNET_SCOPE = 'resnet_v2_50'
REGRESSOR_SCOPE = '3D_module'
MEAN_PARAM = 'mean_param'
DISCRIMINATOR_SCOPE = 'D'

_BN = ('gamma', 'beta', 'moving_mean', 'moving_variance')


@dataclasses.dataclass(frozen=True)
class Mapping:
  """One hmr_tf variable and the checkpoint arrays it is made from.

  Attributes:
    target: readable name of the hmr_tf variable (for messages).
    variable: the variable to assign.
    sources: ((checkpoint name, expected shape), ...).
    combine: the source arrays -> the variable's value.
  """
  target: str
  variable: tf.Variable
  sources: Tuple[Tuple[str, Tuple[int, ...]], ...]
  combine: Callable[[List[np.ndarray]], np.ndarray] = lambda arrays: arrays[0]


def _one(target: str, variable, name: str) -> Mapping:
  return Mapping(target, variable, ((name, tuple(variable.shape)),))


def _bn(layer, scope: str) -> List[Mapping]:
  return [_one(f'{layer.name}/{attr}', getattr(layer, attr), f'{scope}/{attr}')
          for attr in _BN]


def _conv(layer, scope: str) -> List[Mapping]:
  maps = [_one(f'{layer.name}/kernel', layer.kernel, f'{scope}/weights')]
  if layer.use_bias:
    maps.append(_one(f'{layer.name}/bias', layer.bias, f'{scope}/biases'))
  return maps


def encoder_mappings(encoder, scope: str = RESNET_SCOPE) -> List[Mapping]:
  """The 270 variables of slim's resnet_v2_50 onto hmr_tf's resnet50v2."""
  get = encoder.get_layer
  maps = _conv(get('conv1_conv'), f'{scope}/conv1')
  for b, units in enumerate(RESNET_V2_50_UNITS, start=1):
    for u in range(1, units + 1):
      keras_name = f'conv{b + 1}_block{u}'
      slim = f'{scope}/block{b}/unit_{u}/bottleneck_v2'
      maps += _bn(get(f'{keras_name}_preact_bn'), f'{slim}/preact')
      if u == 1:
        maps += _conv(get(f'{keras_name}_0_conv'), f'{slim}/shortcut')
      for i in (1, 2):
        maps += _conv(get(f'{keras_name}_{i}_conv'), f'{slim}/conv{i}')
        maps += _bn(get(f'{keras_name}_{i}_bn'), f'{slim}/conv{i}/BatchNorm')
      maps += _conv(get(f'{keras_name}_3_conv'), f'{slim}/conv3')
  maps += _bn(get('post_bn'), f'{scope}/postnorm')
  return maps


def _dense(layer, scope: str) -> List[Mapping]:
  return [_one(f'{layer.name}/kernel', layer.kernel, f'{scope}/weights'),
          _one(f'{layer.name}/bias', layer.bias, f'{scope}/biases')]


def regressor_mappings(regressor) -> List[Mapping]:
  """3D_module/fc1..fc3 and mean_param onto the IEF regressor."""
  maps = []
  for layer in (regressor.fc1, regressor.fc2, regressor.fc3):
    maps += _dense(layer, f'{REGRESSOR_SCOPE}/{layer.name}')
  maps.append(_one('regressor/mean_theta', regressor.theta0, MEAN_PARAM))
  return maps


def discriminator_mappings(discriminator) -> List[Mapping]:
  """The factorized discriminator's `D/...` variables."""
  d = DISCRIMINATOR_SCOPE
  heads = discriminator.joint_heads
  num_joints, channels = (int(n) for n in heads.kernel.shape)
  maps = (_conv(discriminator.conv1, f'{d}/D_conv1') +
          _conv(discriminator.conv2, f'{d}/D_conv2'))
  maps.append(Mapping(
      'joint_heads/kernel', heads.kernel,
      tuple((f'{d}/pose_out_j{j}/weights', (channels, 1))
            for j in range(num_joints)),
      lambda arrays: np.concatenate(arrays, axis=1).T))
  maps.append(Mapping(
      'joint_heads/bias', heads.bias,
      tuple((f'{d}/pose_out_j{j}/biases', (1,)) for j in range(num_joints)),
      np.concatenate))
  maps += _dense(discriminator.pose_fc1, f'{d}/D_alljoints_fc1')
  maps += _dense(discriminator.pose_fc2, f'{d}/D_alljoints_fc2')
  maps += _dense(discriminator.pose_out, f'{d}/D_alljoints_out')
  maps += _dense(discriminator.shape_fc1, f'{d}/shape_fc1/shape_fc1_1')
  maps += _dense(discriminator.shape_fc2, f'{d}/shape_fc1/shape_fc1_2')
  maps += _dense(discriminator.shape_out, f'{d}/shape_final')
  return maps


# ---------------------------------------------------------------------------
# Reading checkpoints.


def open_checkpoint(path: str, flag: str):
  """A reader of the TensorFlow checkpoint at `path` (a prefix or V1 file).

  Raises:
    ValueError: one line naming the flag and file when it is no checkpoint.
  """
  try:
    return tf.train.load_checkpoint(path)
  except (tf.errors.OpError, ValueError) as e:
    raise ValueError(
        f'{flag}={path}: not a readable TensorFlow checkpoint (expected the '
        f'prefix of a .index/.data pair, or a V1 .ckpt file): '
        f'{str(e).splitlines()[0]}') from e


def check_mappings(mappings: Sequence[Mapping], shapes, where: str) -> None:
  """Checks every source name and shape against the checkpoint's.

  Args:
    mappings: what will be read.
    shapes: dict checkpoint name -> shape (reader.get_variable_to_shape_map()).
    where: the checkpoint, for messages.

  Raises:
    ValueError: naming the first missing variable or wrong shape.
  """
  for m in mappings:
    for name, expected in m.sources:
      if name not in shapes:
        raise ValueError(f'{where}: missing variable {name} (expected shape '
                         f'{list(expected)}, for {m.target})')
      if tuple(shapes[name]) != tuple(expected):
        raise ValueError(f'{where}: variable {name} has shape '
                         f'{list(shapes[name])}, expected {list(expected)} '
                         f'(for {m.target})')


def read_mappings(mappings: Sequence[Mapping], reader,
                  where: str) -> List[np.ndarray]:
  """Reads and combines each mapping's arrays (nothing is assigned yet).

  Raises:
    ValueError: a variable whose data cannot be read (a truncated file).
  """
  values = []
  for m in mappings:
    arrays = []
    for name, _ in m.sources:
      try:
        arrays.append(np.asarray(reader.get_tensor(name)))
      except (tf.errors.OpError, ValueError, IndexError) as e:
        raise ValueError(f'{where}: cannot read variable {name} '
                         f'({str(e).splitlines()[0]})') from e
    value = m.combine(arrays)
    if not np.all(np.isfinite(value)):
      raise ValueError(f'{where}: variable {m.sources[0][0]} has non-finite '
                       'values')
    values.append(value)
  return values


def assign(mappings: Sequence[Mapping], values: Sequence[np.ndarray]) -> None:
  for m, value in zip(mappings, values):
    m.variable.assign(value.astype(m.variable.dtype))


def load_encoder_from_checkpoint(encoder, path: str,
                                 flag: str = '--encoder_weights',
                                 scope: str = RESNET_SCOPE) -> None:
  """Loads slim's resnet_v2_50 variables from a checkpoint into `encoder`.

  Raises:
    ValueError: one line naming the file and the variable.
  """
  reader = open_checkpoint(path, flag)
  where = f'{flag}={path}'
  mappings = encoder_mappings(encoder, scope)
  check_mappings(mappings, reader.get_variable_to_shape_map(), where)
  assign(mappings, read_mappings(mappings, reader, where))
