"""HMRModel: encoder + IEF regressor + SMPL + camera, trained adversarially.

One training step (see `train_step`) is two updates on one forward pass, as
in the original, where both optimizers ran in the same session call:

  1. generator: images -> ResNet50V2 (batch norm in training mode: its moving
     statistics update here and only here) -> Θ_1..Θ_T -> SMPL on Θ_T ->
     2D/3D losses (or, with ief_supervision='all', SMPL on every Θ_t and
     the mean of each loss over the iterations); Θ_1..Θ_T -> discriminator
     -> adversarial loss. Updates the encoder, the regressor and Θ_0 (never
     the discriminator).
  2. discriminator: the same predictions (stop_gradient) against a mocap
     batch of the same size. Updates only the discriminator.

Because the generator step leaves the discriminator unchanged and the
discriminator step reuses the generator step's predictions, this equals the
original's simultaneous update.

Distribution: each loss is a per-replica sum divided by a normaliser summed
over all replicas (the number of visible keypoints, labelled examples,
discriminator samples) and the weight decay is divided by the number of
replicas, so the per-replica losses add up to the loss of the global batch;
Keras' optimizers sum the replicas' gradients. Batch-norm statistics are
per replica (as with one GPU per replica in TF-Slim) unless
`sync_batch_norm`, where they are all-reduced over the global batch; then a
step on R replicas equals a step on one device with the same global batch.

Mixed precision (see hmr_tf.training.distribute.set_precision_policy): build the
model under a Keras mixed policy. The encoder and the hidden layers compute
in float16/bfloat16; Θ, the discriminator's scores, SMPL and the losses stay
float32. Under mixed_float16 `compile` wraps both optimizers in
keras.optimizers.LossScaleOptimizer and each step multiplies its loss by
the current loss scale before differentiating; the optimizer divides the
gradients by it and skips (and lowers the scale on) steps whose gradients
overflowed.
"""

from typing import Dict, List, Optional, Tuple

import keras
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.evaluation import metrics as metrics_lib
from hmr_tf.geometry import camera
from hmr_tf.modeling import discriminator as discriminator_lib
from hmr_tf.modeling import encoder as encoder_lib
from hmr_tf.modeling import losses
from hmr_tf.modeling import mean_params
from hmr_tf.modeling import prebuilt
from hmr_tf.modeling import regressor as regressor_lib
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl.layer import SMPL
from hmr_tf.smpl import lbs
from hmr_tf.smpl.model_io import BodyModel

_NUM_LSP = joints_lib.NUM_LSP_JOINTS
_NUM_SMPL_JOINTS = joints_lib.NUM_SMPL_JOINTS

# Names of the training logs (each a keras.metrics.Mean tracker).
GENERATOR_TERMS = ('loss_kp', 'loss_3d_joints', 'loss_3d_smpl', 'loss_adv',
                   'loss_g_wd', 'g_loss')
DISCRIMINATOR_TERMS = ('d_loss_real', 'd_loss_fake', 'loss_d_wd', 'd_loss',
                       'd_out_real', 'd_out_fake')
EVAL_TERMS = ('loss_kp', 'mpjpe_mm', 'pa_mpjpe_mm')


LR_SCHEDULES = configs.LR_SCHEDULES


def learning_rate(rate: float, config: configs.ModelConfig):
  """The rate, or its cosine schedule (see configs.ModelConfig.lr_schedule)."""
  configs.check_choice('lr_schedule', config.lr_schedule, LR_SCHEDULES)
  if config.lr_schedule == 'constant':
    return rate
  if config.lr_decay_steps <= 0:
    raise ValueError(f'lr_decay_steps: expected > 0 with the cosine '
                     f'schedule, got {config.lr_decay_steps}')
  return keras.optimizers.schedules.CosineDecay(rate, config.lr_decay_steps)


def build_optimizers(config: configs.ModelConfig):
  """(generator, discriminator) Adam optimizers with the config's rates."""
  return (keras.optimizers.Adam(learning_rate(config.e_lr, config),
                                name='g_optimizer'),
          keras.optimizers.Adam(learning_rate(config.d_lr, config),
                                name='d_optimizer'))


def _kernels(variables):
  # Weight decay on weight matrices/filters only (not biases, batch norm or
  # Θ_0), as TF-Slim's weights_regularizer did.
  return [v for v in variables if v.name == 'kernel']


def _global_sum(x):
  """Sums `x` over replicas (identity without a multi-replica strategy)."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def _num_replicas():
  return tf.distribute.get_strategy().num_replicas_in_sync


def _step_outputs(logs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """The step's logs as Keras' fit can reduce them under the strategy.

  Under MultiWorkerMirroredStrategy Keras reduces each output with
  strategy.reduce(MEAN, value, axis=0), which needs a batch axis: the
  scalars become [1] (the reduced logs are scalars again).
  """
  if isinstance(tf.distribute.get_strategy(),
                tf.distribute.MultiWorkerMirroredStrategy):
    return {k: tf.reshape(v, [1]) for k, v in logs.items()}
  return logs


def _loss_scaled(optimizer, policy_name: str):
  """Wraps `optimizer` in a LossScaleOptimizer under mixed_float16."""
  if (policy_name == 'mixed_float16' and
      not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
    return keras.optimizers.LossScaleOptimizer(
        optimizer, name=optimizer.name + '_loss_scale')
  return optimizer


def _loss_scale(optimizer) -> Optional[tf.Tensor]:
  """The current loss scale of a LossScaleOptimizer, else None."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return tf.convert_to_tensor(optimizer.scale_loss(1.0), tf.float32)
  return None


class HMRModel(prebuilt.PrebuiltModel):
  """End-to-end human mesh recovery.

  Args:
    body_model: the SMPL-format body model (must have a cocoplus regressor).
    mean_theta: [85] Θ_0 initial value (mean_params.load_mean_params).
    config: configs.ModelConfig.
    xla_layers: build the small encoder with the layers written for training
      under XLA on a CPU (`encoder.build_encoder`'s `xla_layers`).
  """

  def __init__(self, body_model: BodyModel, mean_theta,
               config: configs.ModelConfig = configs.ModelConfig(),
               xla_layers: bool = False, **kwargs):
    kwargs.setdefault('name', 'hmr')
    super().__init__(**kwargs)
    if body_model.cocoplus_regressor is None:
      raise ValueError('HMRModel needs a body model with a cocoplus_regressor '
                       '(the 19 keypoints the losses compare)')
    if body_model.num_betas < mean_params.NUM_SHAPE:
      raise ValueError(f'HMRModel needs a body model with at least '
                       f'{mean_params.NUM_SHAPE} shape directions, got '
                       f'{body_model.num_betas}')
    configs.check_choice('ief_supervision', config.ief_supervision,
                         configs.IEF_SUPERVISION)
    self.config = config
    self.encoder = encoder_lib.build_encoder(config.img_size,
                                             config.encoder_weights,
                                             config.encoder, xla_layers)
    if config.sync_batch_norm:
      for layer in self.encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
          layer.synchronized = True  # read by the layer at call time
    self.regressor = regressor_lib.IterativeRegressor(
        mean_theta, num_stage=config.num_stage,
        hidden_units=config.regressor_units,
        dropout_rate=config.dropout_rate, name='regressor')
    self.smpl = SMPL(body_model, name='smpl')
    self.discriminator = discriminator_lib.Discriminator(
        num_betas=mean_params.NUM_SHAPE, pose_units=config.d_pose_units)
    # Everything is built here, so Keras never needs a symbolic build (which
    # under tf.distribute would call the model on a whole data batch).
    self.regressor.build((None, int(self.encoder.output.shape[-1])))
    self.discriminator.build()
    self.smpl.built = True  # holds constants only, no weights to create
    self.built = True
    names = dict.fromkeys(GENERATOR_TERMS + DISCRIMINATOR_TERMS + EVAL_TERMS)
    self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
    self.g_optimizer = None
    self.d_optimizer = None

  # -------------------------------------------------------------------------
  # Setup.

  def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
    """Sets the two optimizers (defaults: Adam with the config's rates).

    Extra keyword arguments (e.g. jit_compile, steps_per_execution) go to
    keras.Model.compile; no loss is given there, train_step computes it.
    Under the mixed_float16 policy the optimizers are wrapped in
    keras.optimizers.LossScaleOptimizer (the given ones become their
    `inner_optimizer`: checkpoint those, so float32 and float16 runs share
    checkpoints; the loss scale restarts at its initial value on resume).
    """
    super().compile(**kwargs)
    default_g, default_d = build_optimizers(self.config)
    self.g_optimizer = _loss_scaled(g_optimizer or default_g,
                                    self.dtype_policy.name)
    self.d_optimizer = _loss_scaled(d_optimizer or default_d,
                                    self.dtype_policy.name)
    # Built now so their slots exist before a checkpoint restore.
    self.g_optimizer.build(self.generator_variables)
    self.d_optimizer.build(self.discriminator_variables)

  @property
  def generator_variables(self) -> List[tf.Variable]:
    """Encoder, regressor and Θ_0: what the generator optimizer updates."""
    return (self.encoder.trainable_variables +
            self.regressor.trainable_variables)

  @property
  def discriminator_variables(self) -> List[tf.Variable]:
    return self.discriminator.trainable_variables

  @property
  def metrics(self):
    return list(self._trackers.values())

  # -------------------------------------------------------------------------
  # Forward.

  def _predict(self, images, training: bool, with_mesh: bool = True,
               all_stages: bool = False) -> Dict[str, tf.Tensor]:
    """Everything a step needs: all stages' Θ and rotations, last stage's body.

    Without `with_mesh` the body's keypoints come from `SMPL.keypoints_only`
    (the same values, no mesh: 'vertices' is None); the training and test
    steps use that, as their losses and metrics read keypoints only.

    Returns:
      dict with the `call` outputs plus 'thetas' (list of T [B, 85]),
      'rotmats_all' [T*B, 24, 3, 3] and 'betas_all' [T*B, 10] (stage-major,
      as the discriminator sees them), 'rotmats' [B, 24, 3, 3] (last stage);
      with `all_stages` also every iteration's keypoints, stage-major:
      'keypoints3d_all' [T*B, 19, 3] and 'keypoints2d_all' [T*B, 19, 2].
    """
    features = self.encoder(images, training=training)
    return self.head(features, training=training, with_mesh=with_mesh,
                     all_stages=all_stages)

  def head(self, features, training: bool = False, with_mesh: bool = True,
           all_stages: bool = False) -> Dict[str, tf.Tensor]:
    """Everything after the encoder: IEF, SMPL and the projection.

    Args:
      features: [B, F] encoder features φ.
      training: enables dropout.
      with_mesh: see `_predict`.
      all_stages: also the keypoints of every IEF iteration (see
        `_predict`; needs `with_mesh` False).

    Returns:
      The `_predict` dict.
    """
    thetas = self.regressor(features, training=training)
    batch = tf.shape(features)[0]
    stacked = tf.concat(thetas, axis=0)  # [T*B, 85], stage-major
    cams_all, pose_all, betas_all = mean_params.split_theta(stacked)
    rotmats_all = lbs.batch_rodrigues(
        tf.reshape(pose_all, [-1, _NUM_SMPL_JOINTS, 3]))
    cam, pose, betas = mean_params.split_theta(thetas[-1])
    rotmats = rotmats_all[-batch:] if len(thetas) > 1 else rotmats_all
    extra = {}
    if all_stages:
      if with_mesh:
        raise ValueError('all_stages needs with_mesh=False')
      # One SMPL call for every iteration; the last stage's rows are the
      # usual outputs.
      body_all = self.smpl.keypoints_only(rotmats_all, betas_all)
      extra = {'keypoints3d_all': body_all.keypoints,
               'keypoints2d_all': camera.project(body_all.keypoints,
                                                 cams_all)}
      body = body_all._replace(joints=body_all.joints[-batch:],
                               keypoints=body_all.keypoints[-batch:])
      keypoints2d = extra['keypoints2d_all'][-batch:]
    else:
      if with_mesh:
        body = self.smpl(rotmats, betas)
      else:
        body = self.smpl.keypoints_only(rotmats, betas)
      keypoints2d = camera.project(body.keypoints, cam)
    return {
        **extra,
        'cam': cam,
        'pose': pose,
        'shape': betas,
        'vertices': body.vertices,
        'joints3d': body.joints,
        'keypoints3d': body.keypoints,
        'keypoints2d': keypoints2d,
        'theta_stages': tf.stack(thetas, axis=1),
        'thetas': thetas,
        'rotmats': rotmats,
        'rotmats_all': rotmats_all,
        'betas_all': betas_all,
    }

  def call(self, images, training=False) -> Dict[str, tf.Tensor]:
    """Predicts the body in each crop.

    Args:
      images: [B, S, S, 3] float32 crops in [-1, 1].
      training: enables dropout and batch-norm batch statistics.

    Returns:
      dict (all from the last IEF iteration except theta_stages):
        cam [B, 3] (s, tx, ty); pose [B, 72]; shape [B, 10];
        vertices [B, N, 3]; joints3d [B, 24, 3] (SMPL joints);
        keypoints3d [B, 19, 3] (cocoplus); keypoints2d [B, 19, 2] (crop
        coordinates in [-1, 1]); theta_stages [B, T, 85].
    """
    out = self._predict(images, training=training)
    keys = ('cam', 'pose', 'shape', 'vertices', 'joints3d', 'keypoints3d',
            'keypoints2d', 'theta_stages')
    return {k: out[k] for k in keys}

  # -------------------------------------------------------------------------
  # Losses.

  def _supervised(self, batch, pred):
    """(labels, predictions) the 2D and 3D losses compare.

    With `ief_supervision` 'last': the batch and the last iteration's
    predictions. With 'all': the labels repeated T times (stage-major, as
    the '_all' predictions) and every iteration's predictions; each loss is
    a sum divided by a count, so over the repeated batch it is the mean of
    the iterations' losses.
    """
    if self.config.ief_supervision == 'last':
      return batch, pred
    stages = self.config.num_stage
    keys = ('keypoints2d', 'joints3d', 'has_joints3d', 'pose', 'shape',
            'has_smpl')
    labels = {k: tf.concat([batch[k]] * stages, axis=0)
              for k in keys if k in batch}
    return labels, {'keypoints2d': pred['keypoints2d_all'],
                    'keypoints3d': pred['keypoints3d_all'],
                    'rotmats': pred['rotmats_all'],
                    'shape': pred['betas_all']}

  def _keypoint_loss(self, batch, pred):
    kp_gt = tf.cast(batch['keypoints2d'], tf.float32)
    return self.config.e_loss_weight * losses.keypoint_l1_loss(
        kp_gt, pred['keypoints2d'],
        normalizer=_global_sum(losses.keypoint_count(kp_gt)))

  def _losses_3d(self, batch, pred):
    """(joints loss, SMPL parameter loss), weighted; zeros without labels."""
    zero = tf.constant(0.0)
    if not self.config.use_3d_label or 'joints3d' not in batch:
      return zero, zero
    has_j = tf.cast(batch['has_joints3d'], tf.float32)
    loss_joints = self.config.e_3d_weight * losses.joints3d_loss(
        batch['joints3d'], pred['keypoints3d'][:, :_NUM_LSP], has_j,
        normalizer=_global_sum(losses.label_count(has_j, _NUM_LSP * 3)))
    has_smpl = tf.cast(batch['has_smpl'], tf.float32)
    gt_rotmats = lbs.batch_rodrigues(
        tf.reshape(tf.cast(batch['pose'], tf.float32),
                   [-1, _NUM_SMPL_JOINTS, 3]))
    size = _NUM_SMPL_JOINTS * 9 + mean_params.NUM_SHAPE
    smpl_weight = self.config.e_smpl_weight
    if smpl_weight is None:
      smpl_weight = self.config.e_3d_weight
    loss_smpl = smpl_weight * losses.smpl_params_loss(
        gt_rotmats, batch['shape'], pred['rotmats'], pred['shape'], has_smpl,
        normalizer=_global_sum(losses.label_count(has_smpl, size)))
    return loss_joints, loss_smpl

  def _discriminate(self, rotmats, betas):
    """[M, 24, 3, 3], [M, 10] -> [M, 25] float32 scores (root dropped)."""
    return tf.cast(self.discriminator(rotmats[:, 1:], betas), tf.float32)

  def _add_weight_decay(self, grads, variables, loss_scale=None):
    """Adds d/dW of the weight decay term (wd * W / replicas) to the grads.

    The same gradient as putting `_weight_decay` inside the tape, without
    differentiating a sum over every kernel (about a quarter of the step's
    time at small batch sizes on CPU). With a loss scale the gradients are
    still scaled, so the decay term is scaled too.
    """
    wd = self.config.weight_decay / _num_replicas()
    if wd == 0:
      return grads
    if loss_scale is not None:
      wd = wd * loss_scale
    return [g + wd * v if (g is not None and v.name == 'kernel') else g
            for g, v in zip(grads, variables)]

  def _weight_decay(self, variables):
    # Divided by the replica count: the replicas' gradients are summed.
    return losses.l2_weight_decay(_kernels(variables),
                                  self.config.weight_decay) / _num_replicas()

  # -------------------------------------------------------------------------
  # Training.

  def _generator_step(self, batch) -> Tuple[Dict[str, tf.Tensor], tuple]:
    """One update of encoder + regressor + Θ_0.

    Args:
      batch: parser outputs batched to [B, ...] (data contract).

    Returns:
      (terms, (fake_rotmats [T*B, 24, 3, 3], fake_betas [T*B, 10])): terms
      maps GENERATOR_TERMS to this replica's share of each loss; the fakes
      carry no gradient.
    """
    variables = self.generator_variables
    all_stages = self.config.ief_supervision == 'all'
    with tf.GradientTape() as tape:
      pred = self._predict(batch['image'], training=True, with_mesh=False,
                           all_stages=all_stages)
      labels, supervised = self._supervised(batch, pred)
      loss_kp = self._keypoint_loss(labels, supervised)
      loss_3d_joints, loss_3d_smpl = self._losses_3d(labels, supervised)
      d_fake = self._discriminate(pred['rotmats_all'], pred['betas_all'])
      num_fake = _global_sum(tf.cast(tf.shape(d_fake)[0], tf.float32))
      loss_adv = self.config.d_loss_weight * losses.generator_adversarial_loss(
          d_fake, normalizer=num_fake)
      data_loss = loss_kp + loss_3d_joints + loss_3d_smpl + loss_adv
      scale = _loss_scale(self.g_optimizer)
      scaled = data_loss if scale is None else data_loss * scale
    grads = self._add_weight_decay(tape.gradient(scaled, variables),
                                   variables, scale)
    loss_wd = self._weight_decay(variables)
    g_loss = data_loss + loss_wd
    self.g_optimizer.apply_gradients(zip(grads, variables))
    self._average_bn_statistics()
    terms = dict(loss_kp=loss_kp, loss_3d_joints=loss_3d_joints,
                 loss_3d_smpl=loss_3d_smpl, loss_adv=loss_adv,
                 loss_g_wd=loss_wd, g_loss=g_loss)
    fakes = (tf.stop_gradient(pred['rotmats_all']),
             tf.stop_gradient(pred['betas_all']))
    return terms, fakes

  def _average_bn_statistics(self):
    """Makes the replicas' batch-norm moving statistics equal (their mean).

    Keras 3 creates them without a cross-replica aggregation, so under a
    strategy each replica's copy would follow its own examples and the
    workers of a multi-worker run would disagree (the checkpoint keeps the
    first replica's). Keras 2 averaged them when read; one batched
    all-reduce per step does the same here. Not needed with
    sync_batch_norm, where every replica sees the global statistics.
    """
    ctx = tf.distribute.get_replica_context()
    if (ctx is None or ctx.num_replicas_in_sync == 1 or
        self.config.sync_batch_norm):
      return
    stats = [v for layer in self.encoder.layers
             if isinstance(layer, keras.layers.BatchNormalization)
             for v in (layer.moving_mean, layer.moving_variance)]
    means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN,
                           [tf.identity(v) for v in stats])
    for variable, mean in zip(stats, means):
      variable.assign(mean)

  def _discriminator_step(self, fake_rotmats, fake_betas,
                          mocap) -> Dict[str, tf.Tensor]:
    """One update of the discriminator.

    Args:
      fake_rotmats: [N, 24, 3, 3] predicted rotations (no gradient needed).
      fake_betas: [N, 10] predicted shapes.
      mocap: {'pose': [M, 72], 'shape': [M, 10]} real samples.

    Returns:
      DISCRIMINATOR_TERMS -> this replica's share.
    """
    real_rotmats = lbs.batch_rodrigues(
        tf.reshape(tf.cast(mocap['pose'], tf.float32),
                   [-1, _NUM_SMPL_JOINTS, 3]))
    real_betas = tf.cast(mocap['shape'], tf.float32)
    fake_rotmats = tf.stop_gradient(fake_rotmats)
    fake_betas = tf.stop_gradient(fake_betas)
    variables = self.discriminator_variables
    with tf.GradientTape() as tape:
      # One call on real and fake together: each layer is one larger
      # matmul (no batch statistics in the discriminator, so the scores are
      # those of two calls).
      scores = self._discriminate(
          tf.concat([real_rotmats, tf.cast(fake_rotmats, tf.float32)], 0),
          tf.concat([real_betas, tf.cast(fake_betas, tf.float32)], 0))
      num_rows = tf.shape(real_rotmats)[0]
      d_real, d_fake = scores[:num_rows], scores[num_rows:]
      num_real = _global_sum(tf.cast(tf.shape(d_real)[0], tf.float32))
      num_fake = _global_sum(tf.cast(tf.shape(d_fake)[0], tf.float32))
      loss_real, loss_fake = losses.discriminator_losses(
          d_real, d_fake, real_normalizer=num_real, fake_normalizer=num_fake)
      loss_real *= self.config.d_loss_weight
      loss_fake *= self.config.d_loss_weight
      data_loss = loss_real + loss_fake
      scale = _loss_scale(self.d_optimizer)
      scaled = data_loss if scale is None else data_loss * scale
    grads = self._add_weight_decay(tape.gradient(scaled, variables),
                                   variables, scale)
    loss_wd = self._weight_decay(variables)
    d_loss = data_loss + loss_wd
    self.d_optimizer.apply_gradients(zip(grads, variables))
    # Mean score per sample and output, as a share of the global mean.
    out_real = tf.math.divide_no_nan(
        tf.reduce_sum(d_real) / discriminator_lib.NUM_OUTPUTS, num_real)
    out_fake = tf.math.divide_no_nan(
        tf.reduce_sum(d_fake) / discriminator_lib.NUM_OUTPUTS, num_fake)
    return dict(d_loss_real=loss_real, d_loss_fake=loss_fake,
                loss_d_wd=loss_wd, d_loss=d_loss, d_out_real=out_real,
                d_out_fake=out_fake)

  def _log(self, terms):
    # Each term is this replica's share of the global value; the trackers
    # average over replicas, so log share * replicas.
    replicas = float(_num_replicas())
    for name, value in terms.items():
      self._trackers[name].update_state(value * replicas)

  def train_step(self, data):
    """One generator and one discriminator update.

    Args:
      data: (batch, mocap) as yielded by input_pipeline.train_dataset.

    Returns:
      dict of the running means of every loss term and discriminator output.
    """
    if self.g_optimizer is None:
      raise ValueError('HMRModel.compile(g_optimizer, d_optimizer) must be '
                       'called before training')
    batch, mocap = data
    g_terms, (fake_rotmats, fake_betas) = self._generator_step(batch)
    d_terms = self._discriminator_step(fake_rotmats, fake_betas, mocap)
    self._log(g_terms)
    self._log(d_terms)
    return _step_outputs({n: self._trackers[n].result()
                          for n in GENERATOR_TERMS + DISCRIMINATOR_TERMS})

  def test_step(self, data):
    """2D loss and, where 3D joints exist, MPJPE / PA-MPJPE in mm.

    Args:
      data: an eval batch (dict of parser outputs) or (batch, ...) tuple.
    """
    batch = data[0] if isinstance(data, (tuple, list)) else data
    pred = self._predict(batch['image'], training=False, with_mesh=False)
    self._log({'loss_kp': self._keypoint_loss(batch, pred)})
    if 'joints3d' in batch:
      weight = tf.cast(batch['has_joints3d'], tf.float32)
      pred_joints = pred['keypoints3d'][:, :_NUM_LSP]
      self._trackers['mpjpe_mm'].update_state(
          metrics_lib.tf_mpjpe(pred_joints, batch['joints3d']),
          sample_weight=weight)
      self._trackers['pa_mpjpe_mm'].update_state(
          metrics_lib.tf_pa_mpjpe(pred_joints, batch['joints3d']),
          sample_weight=weight)
    return _step_outputs({n: self._trackers[n].result() for n in EVAL_TERMS})
