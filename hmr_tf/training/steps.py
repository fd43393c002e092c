"""Step planning: steps per epoch, the `fit` calls of a (resumed) run.

Resume. A run restored at global step g continues where it stopped: the
epoch g // steps_per_epoch is finished with a shorter `fit` (the remaining
steps of that epoch), then the remaining whole epochs run, so the total
number of steps and the epoch boundaries are those of an uninterrupted run
(`plan_segments`).

Data-iterator position. Keras' `fit` creates its dataset iterator
internally and gives callbacks no handle on it, so the iterator state is not
checkpointed. Instead a resumed run rebuilds the input pipeline with a seed
derived from (data seed, global step) (`data_config_for_step`): it sees
fresh, still deterministic batches rather than repeating the first batches
of the run. (The original HMR used TF1 queues, whose position was not saved
either.)
"""

import dataclasses
from typing import List, NamedTuple

from hmr_tf import configs
from hmr_tf.data import input_pipeline


def steps_per_epoch(data_config: configs.DataConfig,
                    train_config: configs.TrainConfig) -> int:
  """Training steps per epoch.

  Args:
    data_config: the data config (datasets, batch_size = the global batch).
    train_config: an explicit `steps_per_epoch` > 0 wins.

  Returns:
    max(1, sum of the training datasets' sidecar counts // batch size).

  Raises:
    ValueError: a dataset has no sidecar count and none was configured.
  """
  if train_config.steps_per_epoch > 0:
    return train_config.steps_per_epoch
  total = 0
  for name in data_config.datasets:
    count = input_pipeline.num_examples(data_config, name,
                                        data_config.train_split)
    if count is None:
      raise ValueError(
          f'steps_per_epoch: dataset {name!r} under {data_config.data_dir} '
          'has no sidecar with its example count; set steps_per_epoch')
    total += count
  return max(1, total // data_config.batch_size)


class FitSegment(NamedTuple):
  """Arguments of one `model.fit` call."""
  initial_epoch: int
  epochs: int
  steps_per_epoch: int


def plan_segments(start_step: int, steps_per_epoch_: int,
                  epochs: int) -> List[FitSegment]:
  """The `fit` calls that take a run from `start_step` to the end.

  A start inside an epoch first finishes that epoch (a shorter fit), so the
  total is epochs * steps_per_epoch and later epochs start on their usual
  step boundaries.

  Args:
    start_step: global step restored (0 for a new run).
    steps_per_epoch_: steps per epoch.
    epochs: total epochs.

  Returns:
    The segments in order (empty when training is already complete).
  """
  total = epochs * steps_per_epoch_
  if start_step >= total:
    return []
  epoch, offset = divmod(start_step, steps_per_epoch_)
  segments = []
  if offset:
    segments.append(FitSegment(epoch, epoch + 1, steps_per_epoch_ - offset))
    epoch += 1
  if epoch < epochs:
    segments.append(FitSegment(epoch, epochs, steps_per_epoch_))
  return segments


def execution_size(segment_steps: int, steps_per_execution: int) -> int:
  """Steps per `fit` execution for a segment: the largest divisor <= N.

  Keras runs ceil(steps / N) executions of N steps each, so an N that does
  not divide a segment's steps would run more steps than planned (and the
  global step would drift from the steps done).

  Args:
    segment_steps: steps of the `fit` call's epochs (FitSegment's
      steps_per_epoch), >= 1.
    steps_per_execution: the configured N, >= 1.

  Returns:
    The largest divisor of `segment_steps` that is <= N.
  """
  for size in range(min(steps_per_execution, segment_steps), 0, -1):
    if segment_steps % size == 0:
      return size
  return 1


def crossed(previous_step: int, step: int, every: int) -> bool:
  """Whether a period's multiple lies in (previous_step, step].

  With several steps per execution, callbacks see every N-th step only;
  a period acts at the first step they see at or after its multiple.
  """
  return every > 0 and step // every > previous_step // every


def data_config_for_step(data_config: configs.DataConfig,
                         step: int) -> configs.DataConfig:
  """The data config of a (re)started run: reseeded unless at step 0.

  See the module docstring (data-iterator position).
  """
  if step == 0:
    return data_config
  seed = (int(data_config.seed) * 1000003 + int(step) * 7919 + 1) % (2**31 - 1)
  return dataclasses.replace(data_config, seed=seed)
