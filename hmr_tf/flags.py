"""Every command-line flag of `python -m hmr_tf.main`, with its validators.

Nothing else lives here. `hmr_tf.configs.from_flags` turns the parsed values
into typed, frozen config dataclasses once, in `main`; no code below `main`
reads FLAGS. Defaults are the paper's / the original code's values; the
flagfiles in src/flags/ override them per run.
"""

import os

from absl import flags

MODES = ('quickstart', 'body_model', 'data', 'train', 'eval', 'export', 'demo',
         'import_original')
BODY_MODELS = ('makehuman', 'standin')
ENCODERS = ('resnet50v2', 'resnet_v2_small')  # hmr_tf.modeling.encoder's
H36M_PROTOCOLS = ('p1', 'p2_original', 'p2_all_cameras_pa')
ON_NONFINITE = ('stop', 'skip')

# --- Run --------------------------------------------------------------------
flags.DEFINE_enum(
    'mode', 'quickstart', MODES,
    'What to run. quickstart: every stage below in order, each reusing what '
    'is already there. body_model: write the body model (.npz) and its '
    'template (.obj). data: write the synthetic dataset. train: train HMR. '
    'eval: evaluate a checkpoint. export: write a SavedModel for TF Serving. '
    'demo: run the demo on one held-out synthetic image. import_original: '
    'turn the original HMR\'s released checkpoint (--original_checkpoint) '
    'into an hmr_tf model in OUTPUT_DIR/model.')
flags.DEFINE_string(
    'output_dir', 'runs/quickstart',
    'Root folder of a run. Unless given explicitly, the stages use '
    'OUTPUT_DIR/{body_model,data,model,logs,eval,export,demo}.')
flags.DEFINE_integer('seed', 0, 'Seed of every random choice.', lower_bound=0)

# --- Body model -------------------------------------------------------------
flags.DEFINE_string(
    'smpl_model_path', '',
    'An SMPL-format body model file: an official SMPL .pkl (chumpy not '
    'needed), HMR\'s neutral_smpl_with_cocoplus_reg.pkl, or an .npz with the '
    'same keys. Empty: the embedded --body_model.')
flags.DEFINE_enum(
    'body_model', 'makehuman', BODY_MODELS,
    'The embedded body model used when --smpl_model_path is empty (neither '
    'is SMPL). makehuman: a real human body in SMPL format derived from the '
    'CC0 MakeHuman assets (13,348 vertices, no pose correctives). standin: '
    'the small procedural body the unit tests use.')
flags.DEFINE_integer('standin_num_vertices', 4000,
                     'Target vertex count of the procedural stand-in body.',
                     lower_bound=200)

# --- Synthetic data (--mode=data / quickstart) --------------------------------
flags.DEFINE_integer('synthetic_num_train', 2000,
                     'Training images of each synthetic image dataset.',
                     lower_bound=1)
flags.DEFINE_integer('synthetic_num_train_3d', 0,
                     'Training images of the synthetic 3D dataset; 0: '
                     '--synthetic_num_train.', lower_bound=0)
flags.DEFINE_integer('synthetic_num_test', 200,
                     'Held-out test images of each synthetic dataset.',
                     lower_bound=1)
flags.DEFINE_integer('synthetic_num_mocap', 0,
                     'Synthetic mocap training poses; 0: 4 x '
                     '--synthetic_num_train (at least 1000).', lower_bound=0)
flags.DEFINE_integer('synthetic_img_size', 224,
                     'Side of the rendered synthetic images (pixels).',
                     lower_bound=32)
flags.DEFINE_integer('synthetic_workers', 2,
                     'Processes rendering the synthetic images.', lower_bound=0)
# Repeats hmr_tf.synthetic.scene.PART_COLORS / BACKGROUNDS (that module
# imports OpenCV; a test ties them).
SYNTHETIC_PART_COLORS = ('random', 'fixed')
SYNTHETIC_BACKGROUNDS = ('clutter', 'plain')
flags.DEFINE_enum(
    'synthetic_part_colors', 'random', SYNTHETIC_PART_COLORS,
    'Colours of the synthetic bodies\' 24 parts. random: each image draws '
    'its own (like clothing); fixed: the same colour per part in every image '
    '(an easier scene, the quickstart\'s).')
flags.DEFINE_enum(
    'synthetic_background', 'clutter', SYNTHETIC_BACKGROUNDS,
    'Synthetic backgrounds. clutter: gradient, blotches and random shapes; '
    'plain: gradient and blotches only.')
flags.DEFINE_float(
    'synthetic_yaw_max', 45.0,
    'Synthetic bodies turn about their vertical axis by a uniform angle of '
    'up to this many degrees (0: all face the camera).', lower_bound=0.0,
    upper_bound=180.0)

# --- Input pipeline ---------------------------------------------------------
flags.DEFINE_string(
    'data_dir', '',
    'Root of the TFRecord datasets (DATASET/SPLIT_NNNNN.tfrecord plus the '
    'DATASET/DATASET_meta.json sidecars). Empty: OUTPUT_DIR/data.')
flags.DEFINE_list(
    'datasets', ['lsp', 'lsp_ext', 'mpii', 'h36m', 'coco', 'mpi_inf_3dhp'],
    'Image datasets mixed for training (folder names under --data_dir).')
flags.DEFINE_list(
    'dataset_weights', [],
    'One sampling weight per --datasets entry. Empty: the original scheme, '
    'half of each batch from the 3D datasets and half from the 2D ones, '
    'each group in proportion to the datasets\' sizes.')
flags.DEFINE_list('mocap_datasets', ['CMU', 'H3.6', 'jointLim'],
                  'Mocap (pose, shape) datasets for the discriminator.')
flags.DEFINE_string('train_split', 'train', 'Split used for training.')
flags.DEFINE_integer('img_size', 224, 'Side S of the network input crops.',
                     lower_bound=32)
flags.DEFINE_float('base_crop_size', 224.0,
                   'Crop window side at record scale 1, in stored pixels '
                   '(records are scaled so the person is ~150 px tall). '
                   'Saved with the model: eval, export and the demo use the '
                   'trained model\'s and refuse a different explicit value.',
                   lower_bound=1.0)
flags.DEFINE_float('scale_min', 0.8, 'Smallest random scale factor.',
                   lower_bound=0.01)
flags.DEFINE_float('scale_max', 1.23, 'Largest random scale factor.',
                   lower_bound=0.01)
flags.DEFINE_float('trans_max', 20.0,
                   'Random centre jitter range (+- pixels at scale 1).',
                   lower_bound=0.0)
flags.DEFINE_float('flip_prob', 0.5, 'Probability of the horizontal flip.',
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer('shuffle_buffer', 2000,
                     'Records in each dataset\'s shuffle buffer.', lower_bound=1)
flags.DEFINE_boolean('deterministic', True,
                     'Produce batches in a deterministic order.')
flags.DEFINE_integer('num_parallel_calls', -1,
                     'Parallel decode+parse calls (-1: autotune).',
                     lower_bound=-1)
flags.DEFINE_integer('cycle_length', -1,
                     'Shards read at once per dataset (-1: autotune).',
                     lower_bound=-1)
flags.DEFINE_boolean(
    'skip_corrupt_records', False,
    'Read damaged (cut or corrupt) shards as far as they go and count the '
    'records lost (logged once per shard) instead of stopping with an error '
    'that names the file.')

# --- Model and losses -------------------------------------------------------
flags.DEFINE_integer('num_stage', 3, 'Iterative error feedback iterations.',
                     lower_bound=1)
flags.DEFINE_enum(
    'encoder', 'resnet50v2', ENCODERS,
    'Image encoder. resnet50v2: the paper\'s ResNet-50 v2 (2048 features). '
    'resnet_v2_small: a small pre-activation ResNet (2 bottlenecks per stage, '
    'quarter width, 512 features; not in the paper) for training from '
    'scratch on a CPU; no ImageNet weights.')
flags.DEFINE_string(
    'encoder_weights', 'none',
    'Encoder initial weights: none, imagenet (resnet50v2 only; downloaded by '
    'Keras, needs the network) or the path of a local Keras weights file.')
flags.DEFINE_float('dropout_rate', 0.5, 'Dropout rate of the regressor.',
                   lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_float('e_loss_weight', 60.0, 'Weight of the 2D keypoint loss.',
                   lower_bound=0.0)
flags.DEFINE_float('e_3d_weight', 60.0,
                   'Weight of the 3D joint loss, and of the SMPL parameter '
                   'loss unless --e_smpl_weight is given.', lower_bound=0.0)
flags.DEFINE_float('e_smpl_weight', None,
                   'Weight of the SMPL parameter loss (rotation matrices and '
                   'betas); default: --e_3d_weight (the original uses one '
                   'weight for both 3D losses).', lower_bound=0.0)
flags.DEFINE_float('d_loss_weight', 1.0, 'Weight of the adversarial losses.',
                   lower_bound=0.0)
flags.DEFINE_float(
    'weight_decay', 1e-4,
    'L2 weight decay on both networks (the paper). 0 matches the original '
    'code, which configured but never applied it.', lower_bound=0.0)
flags.DEFINE_boolean('use_3d_label', True,
                     'Use the 3D losses where 3D labels exist.')
flags.DEFINE_float('e_lr', 1e-5, 'Adam learning rate of encoder+regressor.',
                   lower_bound=0.0)
# Repeats hmr_tf.modeling.hmr_model.LR_SCHEDULES (a test ties them).
LR_SCHEDULES = ('constant', 'cosine')
flags.DEFINE_enum(
    'lr_schedule', 'constant', LR_SCHEDULES,
    'constant: the paper\'s fixed rates. cosine: both rates fall along a '
    'half cosine to 0 over the run (--epochs x --steps_per_epoch steps).')
flags.DEFINE_float('d_lr', 1e-4, 'Adam learning rate of the discriminator.',
                   lower_bound=0.0)
flags.DEFINE_string(
    'mean_params_path', '',
    'Initial parameters Θ_0: an .npz with pose [72] and shape [10] (the '
    'synthetic dataset writes one) or the original '
    'neutral_smpl_mean_params.h5. Empty: DATA_DIR/mean_params.npz.')

# --- Training ---------------------------------------------------------------
flags.DEFINE_integer('batch_size', 64,
                     'Global batch size (images per step over all replicas).',
                     lower_bound=1)
flags.DEFINE_integer('epochs', 75, 'Total epochs over all resumed runs.',
                     lower_bound=1)
flags.DEFINE_integer(
    'steps_per_epoch', 0,
    'Steps per epoch; 0: the sidecars\' example counts over the batch size.',
    lower_bound=0)
flags.DEFINE_string('model_dir', '',
                    'Checkpoints are written and resumed here. Empty: '
                    'OUTPUT_DIR/model.')
# Not --log_dir: absl.logging owns that name (its text log files).
flags.DEFINE_string(
    'tensorboard_dir', '',
    'TensorBoard root (training summaries under TENSORBOARD_DIR/train, '
    'evaluation under TENSORBOARD_DIR/eval). Empty: OUTPUT_DIR/logs.')
flags.DEFINE_integer(
    'checkpoint_every_steps', 500,
    'Checkpoint period: a killed run loses at most this many steps (0: only '
    'at the end and on Ctrl-C).', lower_bound=0)
flags.DEFINE_integer('max_to_keep', 5, 'Regular checkpoints kept.',
                     lower_bound=1)
flags.DEFINE_string(
    'init_checkpoint', '',
    'Checkpoint (prefix or folder) whose network weights start a new run, '
    'without optimizer state; ignored when resuming from --model_dir.')
flags.DEFINE_integer('summary_every_steps', 100,
                     'TensorBoard scalar period in steps (0: none).',
                     lower_bound=0)
flags.DEFINE_integer('image_summary_every_steps', 1000,
                     'TensorBoard image period in steps (0: none).',
                     lower_bound=0)
flags.DEFINE_integer('num_summary_images', 4,
                     'Examples shown in each image summary.', lower_bound=1)
flags.DEFINE_enum(
    'on_nonfinite', 'stop', ON_NONFINITE,
    'A non-finite loss: stop writes an emergency checkpoint and exits with '
    'an error naming the step and the loss term; skip rolls the step back '
    'and counts it.')
flags.DEFINE_integer(
    'max_consecutive_nonfinite', 10,
    'With --on_nonfinite=skip, stop after more than this many bad steps in a '
    'row.', lower_bound=0)
flags.DEFINE_enum('progress', 'auto', ('auto', 'bar', 'epoch', 'none'),
                  'Console progress: a Keras bar (auto: only on a terminal), '
                  'one line per epoch, or nothing.')
flags.DEFINE_boolean('jit_compile', False,
                     'Compile the train step and inference with XLA.')

# --- Scale: distribution and precision --------------------------------------
flags.DEFINE_enum(
    'strategy', 'default', ('default', 'mirrored', 'multi_worker', 'tpu'),
    'tf.distribute strategy. default: one device. mirrored: the GPUs of this '
    'machine. multi_worker: several machines, cluster from the TF_CONFIG '
    'environment variable. tpu: a TPU (--tpu_address).')
flags.DEFINE_string('tpu_address', '',
                    'TPU name or grpc:// address for --strategy=tpu.')
flags.DEFINE_float(
    'collective_timeout_s', 0.0,
    'multi_worker: fail a collective that waits longer than this (a dead '
    'worker then stops the run with an error instead of a hang); 0: wait '
    'forever.', lower_bound=0.0)
flags.DEFINE_enum('mixed_precision', 'none',
                  ('none', 'mixed_float16', 'mixed_bfloat16'),
                  'Keras mixed-precision policy (SMPL, losses and the '
                  'discriminator outputs stay float32; float16 uses loss '
                  'scaling).')
flags.DEFINE_boolean(
    'sync_batch_norm', False,
    'With several replicas, compute the encoder\'s batch-norm statistics '
    'over the global batch instead of per replica.')

# --- Evaluation ---------------------------------------------------------------
flags.DEFINE_string(
    'checkpoint', '',
    'Checkpoint to evaluate / export / run the demo with: a checkpoint '
    'prefix or a folder holding checkpoints (the latest is used). Empty: the '
    'latest checkpoint of the run\'s model folder.')
flags.DEFINE_string('eval_dataset', 'synthetic_3d',
                    'Dataset folder name to evaluate on.')
flags.DEFINE_string('eval_split', 'test', 'Split to evaluate on.')
flags.DEFINE_enum(
    'h36m_protocol', 'p1', H36M_PROTOCOLS,
    'Human3.6M protocol. p1: S9+S11, all cameras. p2_original: S9+S11, '
    'camera 3, trial 0, as the HMR code defined it. p2_all_cameras_pa: all '
    'cameras with Procrustes alignment, as many later papers define P2.')
flags.DEFINE_integer('eval_max_examples', 0,
                     'Stop evaluating after this many examples (0: all).',
                     lower_bound=0)
flags.DEFINE_string(
    'smpl_male_path', '',
    '3DPW evaluation: the male SMPL model (basicModel_m_lbs_10_207_0_v1.0.0'
    '.pkl, licensed) the ground truth of male subjects is posed with.')
flags.DEFINE_string(
    'smpl_female_path', '',
    '3DPW evaluation: the female SMPL model (basicModel_f_lbs_10_207_0_v1.0.0'
    '.pkl).')
flags.DEFINE_string(
    'pw3d_joint_regressor', '',
    '3DPW evaluation: the joints the errors are measured on. Empty: the '
    'model\'s own cocoplus regressor, 14 LSP joints. A .npy [17, V] '
    'Human3.6M-order regressor (e.g. J_regressor_h36m.npy) gives numbers '
    'comparable with later papers (see hmr_tf/pw3d_protocol.py).')
flags.DEFINE_boolean(
    'eval_mean_baseline', True,
    'Also report the mean-parameter baseline (Θ_0 alone, the same '
    'prediction for every image) next to the model.')

# --- Importing the original's released model ----------------------------------
flags.DEFINE_string(
    'original_checkpoint', '',
    'With --mode=import_original: the original HMR checkpoint prefix, e.g. '
    'models/model.ckpt-667589 (beside its .index and .data files).')

# --- Export -------------------------------------------------------------------
flags.DEFINE_string('export_dir', '',
                    'SavedModel root (versioned: EXPORT_DIR/1/). Empty: '
                    'OUTPUT_DIR/export.')
flags.DEFINE_integer('export_version', 1, 'Version folder of the export.',
                     lower_bound=1)
flags.DEFINE_boolean('export_vertices', True,
                     'Include the mesh vertices in the serving outputs.')
flags.DEFINE_enum(
    'export_precision', 'float32', ('float32', 'bfloat16', 'float16'),
    'What the exported encoder and regressor hidden layers compute in: '
    'bfloat16 (CPUs with AVX-512 BF16 or AMX, TPUs, recent GPUs) or float16 '
    '(GPUs); Θ, SMPL and the outputs stay float32. Recorded in the export.')
flags.DEFINE_enum(
    'export_jit_compile', 'none', ('none', 'head', 'all'),
    'What XLA compiles in the export: nothing, the head (IEF, SMPL, the '
    'projection; the encoder stays on oneDNN) or the whole model. Dynamic '
    'batch: one compilation per batch size met. Recorded in the export.')


def _file_or_empty(path):
  return not path or os.path.isfile(path)


flags.register_validator(
    'smpl_model_path', _file_or_empty,
    message='--smpl_model_path: expected an existing SMPL .pkl or .npz file '
    '(or empty for the embedded body model)')
for _name in ('smpl_male_path', 'smpl_female_path', 'pw3d_joint_regressor'):
  flags.register_validator(
      _name, _file_or_empty,
      message=f'--{_name}: expected an existing file (or empty)')
flags.register_validator(
    'mean_params_path', _file_or_empty,
    message='--mean_params_path: expected an existing .npz or .h5 file (or '
    'empty)')
flags.register_validator(
    'encoder_weights',
    lambda v: (v in ('none', 'imagenet') or os.path.isfile(v) or
               os.path.isfile(v + '.index')),
    message='--encoder_weights: expected none, imagenet, the path of an '
    'existing Keras weights file or a TF-Slim checkpoint (.ckpt, or a prefix '
    'with a .index file)')
flags.register_multi_flags_validator(
    ['encoder', 'encoder_weights'],
    lambda f: f['encoder'] == 'resnet50v2' or f['encoder_weights'] != 'imagenet',
    message='--encoder_weights=imagenet: only --encoder=resnet50v2 has '
    'ImageNet weights')
flags.register_multi_flags_validator(
    ['lr_schedule', 'steps_per_epoch'],
    lambda f: f['lr_schedule'] == 'constant' or f['steps_per_epoch'] > 0,
    message='--lr_schedule=cosine: expected --steps_per_epoch > 0 (the '
    'schedule\'s length is --epochs x --steps_per_epoch)')
flags.register_multi_flags_validator(
    ['scale_min', 'scale_max'], lambda f: f['scale_min'] <= f['scale_max'],
    message='--scale_min must not exceed --scale_max')


def _weights_ok(f):
  if not f['dataset_weights']:
    return True
  try:
    weights = [float(w) for w in f['dataset_weights']]
  except ValueError:
    return False
  return (len(weights) == len(f['datasets']) and min(weights) >= 0 and
          sum(weights) > 0)


flags.register_multi_flags_validator(
    ['datasets', 'dataset_weights'], _weights_ok,
    message='--dataset_weights: expected one non-negative number per '
    '--datasets entry, with a positive sum')


def _checkpoint_ok(path):
  return (not path or os.path.isdir(path) or os.path.isfile(path + '.index')
          or (path.endswith('.h5') and os.path.isfile(path)))


flags.register_validator(
    'checkpoint', _checkpoint_ok,
    message='--checkpoint: expected a folder with checkpoints, a checkpoint '
    'prefix (with a .index file beside it) or a .weights.h5 file')
flags.register_multi_flags_validator(
    ['mode', 'original_checkpoint'],
    lambda f: f['mode'] != 'import_original' or (
        f['original_checkpoint'] and (
            os.path.isfile(f['original_checkpoint'] + '.index') or
            os.path.isfile(f['original_checkpoint']))),
    message='--mode=import_original: expected --original_checkpoint=PREFIX '
    'of the original checkpoint (e.g. models/model.ckpt-667589, with '
    'model.ckpt-667589.index beside it)')
flags.register_validator(
    'init_checkpoint', _checkpoint_ok,
    message='--init_checkpoint: expected a folder with checkpoints or a '
    'checkpoint prefix (with a .index file beside it)')


# --- Checks before any work (issue 19 §7) -----------------------------------
# The datasets the quickstart writes (hmr_tf.synthetic.generator's DATASET_2D/_3D and
# DATASET_MOCAP; a test ties them).
QUICKSTART_DATASETS = ('synthetic_2d', 'synthetic_3d')
QUICKSTART_MOCAP_DATASETS = ('synthetic_mocap',)
_TRAINING_MODES = ('quickstart', 'train')


def _not_a_file(path):
  """A folder path a run may create: neither a file nor under one."""
  probe = os.path.abspath(path) if path else ''
  while probe and probe != os.path.dirname(probe):
    if os.path.exists(probe):
      return os.path.isdir(probe)
    probe = os.path.dirname(probe)
  return True


for _name in ('output_dir', 'data_dir', 'model_dir', 'tensorboard_dir',
              'export_dir'):
  flags.register_validator(
      _name, _not_a_file,
      message=f'--{_name}: expected a folder (or a path for one), got a file '
      'or a path under a file')


def _names_ok(names):
  return bool(names) and all(n.strip() for n in names)


flags.register_multi_flags_validator(
    ['mode', 'datasets'],
    lambda f: f['mode'] not in _TRAINING_MODES or _names_ok(f['datasets']),
    message='--datasets: expected one or more dataset names (folders under '
    '--data_dir) for training')
flags.register_multi_flags_validator(
    ['mode', 'mocap_datasets'],
    lambda f: (f['mode'] not in _TRAINING_MODES or
               _names_ok(f['mocap_datasets'])),
    message='--mocap_datasets: expected one or more mocap dataset names for '
    'training')
flags.register_multi_flags_validator(
    ['mode', 'datasets'],
    lambda f: f['mode'] != 'quickstart' or set(f['datasets']) <= set(
        QUICKSTART_DATASETS),
    message='--datasets: the quickstart trains on the synthetic datasets it '
    f'writes: some of {",".join(QUICKSTART_DATASETS)} (its settings: '
    '--flagfile=src/flags/quickstart.flags)')
flags.register_multi_flags_validator(
    ['mode', 'mocap_datasets'],
    lambda f: f['mode'] != 'quickstart' or set(f['mocap_datasets']) <= set(
        QUICKSTART_MOCAP_DATASETS),
    message='--mocap_datasets: the quickstart writes only '
    f'{",".join(QUICKSTART_MOCAP_DATASETS)}')
flags.register_multi_flags_validator(
    ['mode', 'eval_dataset'],
    lambda f: (f['mode'] != 'quickstart' or
               f['eval_dataset'] in QUICKSTART_DATASETS),
    message='--eval_dataset: the quickstart evaluates on one of '
    f'{",".join(QUICKSTART_DATASETS)}')
