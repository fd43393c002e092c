"""Tests for hmr_tf.configs: the flags declared by the config dataclasses."""

import dataclasses
import os
import subprocess
import sys

from absl import flags as absl_flags
from absl.testing import flagsaver
import pytest

import repo_paths  # tests/support/

from hmr_tf import configs
from hmr_tf import flags as _  # pylint: disable=unused-import  (defines flags)

ROOT = repo_paths.ROOT
FLAGS = absl_flags.FLAGS


def test_configs_and_flags_import_without_tensorflow():
  code = ('import sys\n'
          'import hmr_tf.configs\n'
          'assert "absl.flags" not in sys.modules, "configs reads no flags"\n'
          'import hmr_tf.flags\n'
          'heavy = [m for m in ("tensorflow", "keras", "numpy")'
          ' if m in sys.modules]\n'
          'assert not heavy, heavy\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]


def test_every_config_field_is_a_flag_or_marked_derived():
  for cls in configs.FLAG_CONFIGS:
    for field in dataclasses.fields(cls):
      flag = configs.flag_spec(field) is not None
      assert flag != configs.is_derived(field), (cls.__name__, field.name)


def test_every_flag_field_has_its_flag_with_the_same_default():
  for field in configs.flag_fields():
    name = configs.flag_name(field)
    assert name in FLAGS, name
    flag = FLAGS[name]
    default = configs.flag_default(field)
    if isinstance(default, tuple):
      default = list(default)
    assert flag.default == default, name
    # A field that only reads a flag has the defining field's default.
    spec = configs.flag_spec(field)
    if not spec.defines:
      assert field.default == default, name
      continue
    if spec.choices is not None:
      assert tuple(flag.parser.enum_values) == spec.choices, name
      # absl puts the choices before an enum's help.
      assert flag.help.endswith(': ' + spec.help), name
    else:
      assert flag.help == spec.help, name
    for bound in ('lower_bound', 'upper_bound'):
      if getattr(spec, bound) is not None:
        assert getattr(flag.parser, bound) == getattr(spec, bound), name


def test_main_defines_only_the_declared_flags_each_once():
  declared = [configs.flag_name(f) for f, _ in configs.defined_flags()]
  assert len(declared) == len(set(declared))
  defined = {f.name for f in FLAGS.flags_by_module_dict()['hmr_tf.flags']}
  assert defined == set(declared)


def test_library_defaults_that_differ_from_the_command_line():
  # The evaluation library's defaults (Human3.6M, no baseline) are not the
  # command line's (the quickstart's held-out set, with the baseline).
  assert configs.EvalConfig().dataset == 'h36m'
  assert not configs.EvalConfig().include_mean_baseline
  assert FLAGS['eval_dataset'].default == 'synthetic_3d'
  assert FLAGS['eval_mean_baseline'].default is True
  # None in the config is 0 or empty on the command line.
  assert configs.SyntheticConfig().num_mocap is None
  assert FLAGS['synthetic_num_mocap'].default == 0
  assert configs.DataConfig().dataset_weights is None
  assert FLAGS['dataset_weights'].default == []


def test_standin_bound_is_the_builders_minimum():
  from hmr_tf.smpl import standin  # pylint: disable=g-import-not-at-top
  assert FLAGS['standin_num_vertices'].parser.lower_bound == (
      configs.STANDIN_MIN_VERTICES)
  with pytest.raises(ValueError, match='at least'):
    standin.build(num_vertices=configs.STANDIN_MIN_VERTICES - 1)


def _parsed_config(*argv):
  """from_flags on `argv` parsed by the global FLAGS, restored after."""
  was_parsed = FLAGS.is_parsed()
  try:
    with flagsaver.flagsaver():
      FLAGS.unparse_flags()
      FLAGS(['prog', *argv])
      return configs.from_flags(FLAGS)
  finally:
    FLAGS.unparse_flags()
    if was_parsed:
      FLAGS.mark_as_parsed()


def _paths(out):
  return configs.Paths(
      output_dir=out, body_model_file=f'{out}/body_model/body_model.npz',
      data_dir=f'{out}/data', model_dir=f'{out}/model',
      log_dir=f'{out}/logs', eval_dir=f'{out}/eval',
      export_dir=f'{out}/export', demo_dir=f'{out}/demo')


def test_from_flags_on_the_defaults():
  # Every value written out from the flag definitions (the paper's).
  out = 'runs/quickstart'
  expected = configs.RunConfig(
      mode='train',
      paths=_paths(out),
      body=configs.BodyModelConfig(
          smpl_model_path='', body_model='makehuman',
          standin_num_vertices=4000, seed=0),
      synthetic=configs.SyntheticConfig(
          num_train=2000, num_test=200, num_mocap=None, img_size=224,
          workers=2, seed=0, num_train_3d=None, part_colors='random',
          background='clutter', yaw_max_deg=45.0),
      data=configs.DataConfig(
          data_dir=f'{out}/data',
          datasets=('lsp', 'lsp_ext', 'mpii', 'h36m', 'coco',
                    'mpi_inf_3dhp'),
          dataset_weights=None, mocap_datasets=('CMU', 'H3.6', 'jointLim'),
          train_split='train', batch_size=64, num_stage=3, img_size=224,
          base_crop_size=224.0, scale_min=0.8, scale_max=1.23,
          trans_max=20.0, flip_prob=0.5, keypoints_outside_crop='keep',
          shuffle_buffer=2000, seed=0,
          deterministic=True, num_parallel_calls=-1, cycle_length=-1,
          skip_corrupt_records=False),
      model=configs.ModelConfig(
          img_size=224, num_stage=3, encoder='resnet50v2',
          encoder_weights='none', dropout_rate=0.5, e_loss_weight=60.0,
          e_3d_weight=60.0, e_smpl_weight=None, d_loss_weight=1.0,
          weight_decay=1e-4, use_3d_label=True, e_lr=1e-5, d_lr=1e-4,
          lr_schedule='constant', lr_decay_steps=0, sync_batch_norm=False,
          base_crop_size=224.0),
      train=configs.TrainConfig(
          model_dir=f'{out}/model', log_dir=f'{out}/logs', epochs=75,
          steps_per_epoch=0, checkpoint_every_steps=500, max_to_keep=5,
          init_checkpoint='', summary_every_steps=100,
          image_summary_every_steps=1000, num_summary_images=4,
          on_nonfinite='stop', max_consecutive_nonfinite=10, progress='auto',
          jit_compile=False, seed=0),
      eval=configs.EvalConfig(
          dataset='synthetic_3d', split='test', h36m_protocol='p1',
          checkpoint=f'{out}/model', output_dir=f'{out}/eval',
          summary_dir=f'{out}/logs/eval', step=0, max_examples=0, tag='',
          include_mean_baseline=True, smpl_male_path='',
          smpl_female_path='', pw3d_joint_regressor=''),
      export=configs.ExportConfig(
          export_dir=f'{out}/export', version=1, include_vertices=True,
          precision='float32', jit_compile='auto'),
      mean_params_path=f'{out}/data/mean_params.npz',
      checkpoint=f'{out}/model',
      scale=configs.ScaleConfig(strategy='default', tpu_address='',
                                collective_timeout_s=0.0,
                                mixed_precision='none'),
      original_checkpoint='',
      explicit_flags=frozenset())
  assert _parsed_config('--mode=train') == expected


def test_from_flags_on_the_quickstart_flagfile():
  # The defaults above with src/flags/quickstart.flags' values.
  out = 'runs/quickstart'
  got = _parsed_config(
      f'--flagfile={os.path.join(ROOT, "src", "flags", "quickstart.flags")}')
  expected = configs.RunConfig(
      mode='quickstart',
      paths=_paths(out),
      body=configs.BodyModelConfig(
          smpl_model_path='', body_model='makehuman',
          standin_num_vertices=4000, seed=0),
      synthetic=configs.SyntheticConfig(
          num_train=1000, num_test=200, num_mocap=None, img_size=128,
          workers=2, seed=0, num_train_3d=8000, part_colors='fixed',
          background='plain', yaw_max_deg=0.0, antialias=False),
      data=configs.DataConfig(
          data_dir=f'{out}/data', datasets=('synthetic_2d', 'synthetic_3d'),
          dataset_weights=(1.0, 7.0), mocap_datasets=('synthetic_mocap',),
          train_split='train', batch_size=32, num_stage=3, img_size=64,
          base_crop_size=170.0, scale_min=1.0, scale_max=1.0,
          trans_max=0.0, flip_prob=0.0, keypoints_outside_crop='drop',
          shuffle_buffer=500, seed=0,
          deterministic=True, num_parallel_calls=-1, cycle_length=-1,
          skip_corrupt_records=False, cache_crops=True),
      model=configs.ModelConfig(
          img_size=64, num_stage=3, encoder='resnet_v2_small',
          encoder_weights='none', dropout_rate=0.0, regressor_units=256,
          d_pose_units=256, e_loss_weight=60.0, e_3d_weight=1200.0, e_smpl_weight=60.0, d_loss_weight=0.1,
          weight_decay=0.0, use_3d_label=True, e_lr=1.4e-3, d_lr=1e-4,
          # --epochs=1 x --steps_per_epoch=3200.
          lr_schedule='cosine', lr_decay_steps=3200, sync_batch_norm=False,
          base_crop_size=170.0),
      train=configs.TrainConfig(
          model_dir=f'{out}/model', log_dir=f'{out}/logs', epochs=1,
          steps_per_epoch=3200, checkpoint_every_steps=800, max_to_keep=5,
          init_checkpoint='', summary_every_steps=50,
          image_summary_every_steps=800, num_summary_images=4,
          on_nonfinite='stop', max_consecutive_nonfinite=10, progress='auto',
          jit_compile=True, steps_per_execution=50, seed=0),
      eval=configs.EvalConfig(
          dataset='synthetic_3d', split='test', h36m_protocol='p1',
          checkpoint=f'{out}/model', output_dir=f'{out}/eval',
          summary_dir=f'{out}/logs/eval', step=0, max_examples=0, tag='',
          include_mean_baseline=True, smpl_male_path='',
          smpl_female_path='', pw3d_joint_regressor=''),
      export=configs.ExportConfig(
          export_dir=f'{out}/export', version=1, include_vertices=True,
          precision='float32', jit_compile='auto'),
      mean_params_path=f'{out}/data/mean_params.npz',
      checkpoint=f'{out}/model',
      scale=configs.ScaleConfig(strategy='default', tpu_address='',
                                collective_timeout_s=0.0,
                                mixed_precision='none'),
      original_checkpoint='',
      explicit_flags=frozenset({'img_size', 'base_crop_size'}))
  for name in ('paths', 'body', 'synthetic', 'data', 'model', 'train',
               'eval', 'export', 'scale'):
    assert getattr(got, name) == getattr(expected, name), name
  assert got == expected


def test_from_flags_derives_paths_and_none_values():
  got = _parsed_config('--mode=eval', '--output_dir=/r', '--data_dir=/d',
                       '--tensorboard_dir=/tb', '--checkpoint=',
                       '--synthetic_num_mocap=5', '--mean_params_path=',
                       '--dataset_weights=1,2,3,4,5,6')
  assert got.paths.data_dir == got.data.data_dir == '/d'
  assert got.paths.model_dir == got.train.model_dir == got.checkpoint == (
      '/r/model')
  assert got.eval.checkpoint == '/r/model'
  assert got.train.log_dir == '/tb'
  assert got.eval.summary_dir == '/tb/eval'
  assert got.mean_params_path == '/d/mean_params.npz'
  assert got.synthetic.num_mocap == 5
  assert got.data.dataset_weights == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
  assert got.explicit_flags == frozenset()
