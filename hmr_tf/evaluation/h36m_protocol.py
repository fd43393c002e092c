"""Human3.6M evaluation protocols, as the original HMR evaluation defined them.

Test subjects S9 and S11; 15 actions; each action recorded twice ("trials")
by four cameras. A test frame belongs to the sequence
(subject, action, trial, camera):

  * 'p1': Protocol 1, all four cameras and both trials.
  * 'p2_original': Protocol 2 as HMR's evaluation code defined it: only the
    frontal camera (index 3, id 60457274) and trial 0. The numbers are
    MPJPE and PA-MPJPE on that subset.
  * 'p2_all_cameras_pa': Protocol 2 as many other papers define it (e.g.
    Pavlakos et al., SPIN): all cameras and trials, reported with Procrustes
    alignment (PA-MPJPE). Its frame selection equals 'p1'; the name records
    which number a result means.

In every protocol the corrupt sequence (S11, Directions, trial 1, camera 0)
is skipped, as in the original. Per-action errors are the mean over the
action's sequences of each sequence's mean error, and the "mean over
actions" averages the 15 action means (the original's table); the mean over
all frames is reported too.

Frame names. The h36m converter stores each image's original name in
`image/filename` in the form `S9_Directions_1.54138969_000001.jpg`:
subject, video name (spaces replaced by '_'; the trial suffix is part of it),
camera id, frame number. Human3.6M names the two recordings of an action
either with and without a number ('Directions 1', 'Directions') or with two
numbers ('Discussion 1', 'Discussion 2'). The dataset's own subaction order,
which the original's trial index follows, lists the numbered video first
and the unnumbered one second (so the known corrupt file
S11/Directions.54138969 is trial 1, camera 0). Hence:
  * no number -> trial 1;
  * a number -> trial 0 if it is the smallest number among the evaluated
    frames' videos of that subject and action, else trial 1.
`parse_filename` gives the number; `assign_trials` resolves the trial over a
set of frames.
"""

import dataclasses
import os
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from hmr_tf import configs

PROTOCOLS = configs.H36M_PROTOCOLS
PROTOCOL_DESCRIPTIONS = {
    'p1': 'Protocol 1 (HMR): subjects S9, S11; all 4 cameras, both trials; '
          'MPJPE and PA-MPJPE',
    'p2_original': 'Protocol 2 as defined by the original HMR evaluation: '
                   'subjects S9, S11; frontal camera 3 (60457274), trial 0 '
                   'only; MPJPE and PA-MPJPE',
    'p2_all_cameras_pa': 'Protocol 2 as defined by other papers: subjects '
                         'S9, S11; all cameras and trials; the number to '
                         'quote is PA-MPJPE',
}
TEST_SUBJECTS = (9, 11)
# Camera ids in Human3.6M's order: index 0..3.
CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
FRONTAL_CAMERA = 3
# (subject, action, trial, camera) that the original skipped: a corrupt video.
CORRUPT_SEQUENCES = frozenset({(11, 'Directions', 1, 0)})

# The 15 actions, in the order of the original's table.
ACTIONS = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning',
           'TakingPhoto', 'Posing', 'Purchases', 'Sitting', 'SittingDown',
           'Smoking', 'Waiting', 'WalkingDog', 'Walking', 'WalkTogether')
# Human3.6M's video names differ from the action names for some subjects.
_ACTION_ALIASES = {'Photo': 'TakingPhoto', 'WalkDog': 'WalkingDog',
                   'WakingDog': 'WalkingDog'}

_NAME_RE = re.compile(
    r'^S(?P<subject>\d+)_(?P<video>[A-Za-z]+(?:_\d+)?)\.(?P<camera>\d+)_'
    r'(?P<frame>\d+)\.[A-Za-z]+$')


@dataclasses.dataclass(frozen=True)
class Frame:
  """One Human3.6M test frame, parsed from its file name.

  Attributes:
    subject: subject number (9 for S9).
    action: canonical action name (one of ACTIONS).
    video_number: the number after the action in the video name, or None
      when the name has none ('Directions' vs 'Directions 1').
    camera: camera index 0..3 (CAMERA_IDS order).
    frame: frame number in the file name.
  """
  subject: int
  action: str
  video_number: Optional[int]
  camera: int
  frame: int


def parse_filename(filename) -> Frame:
  """Parses `S9_Directions_1.54138969_000001.jpg` (any directory prefix).

  Args:
    filename: str or bytes.

  Returns:
    A `Frame`.

  Raises:
    ValueError: naming the file name and the expected form.
  """
  if isinstance(filename, bytes):
    filename = filename.decode('utf-8', 'replace')
  base = os.path.basename(str(filename).replace('\\', '/'))
  match = _NAME_RE.match(base)
  if match is None:
    raise ValueError(
        f'image/filename {filename!r}: not a Human3.6M frame name; expected '
        'the form S<subject>_<Action>[_<n>].<camera id>_<frame>.jpg, e.g. '
        'S9_Directions_1.54138969_000001.jpg')
  action, _, number = match['video'].partition('_')
  action = _ACTION_ALIASES.get(action, action)
  if action not in ACTIONS:
    raise ValueError(f'image/filename {filename!r}: unknown action '
                     f'{action!r}; expected one of {ACTIONS}')
  camera_id = match['camera']
  if camera_id not in CAMERA_IDS:
    raise ValueError(f'image/filename {filename!r}: unknown camera id '
                     f'{camera_id}; expected one of {CAMERA_IDS}')
  return Frame(subject=int(match['subject']), action=action,
               video_number=int(number) if number else None,
               camera=CAMERA_IDS.index(camera_id), frame=int(match['frame']))


def assign_trials(frames: Sequence[Frame]) -> List[int]:
  """The trial index (0 or 1) of each frame (rule in the module docstring)."""
  smallest: Dict[Tuple[int, str], int] = {}
  for f in frames:
    if f.video_number is not None:
      key = (f.subject, f.action)
      smallest[key] = min(smallest.get(key, f.video_number), f.video_number)
  return [1 if f.video_number is None or
          f.video_number != smallest[(f.subject, f.action)] else 0
          for f in frames]


def sequence_keys(filenames: Iterable) -> List[Tuple[int, str, int, int]]:
  """(subject, action, trial, camera) of each file name."""
  frames = [parse_filename(n) for n in filenames]
  trials = assign_trials(frames)
  return [(f.subject, f.action, t, f.camera) for f, t in zip(frames, trials)]


def selected(key: Tuple[int, str, int, int], protocol: str) -> bool:
  """Whether a sequence (subject, action, trial, camera) is in the protocol."""
  configs.check_choice('h36m_protocol', protocol, PROTOCOLS)
  subject, _, trial, camera = key
  if subject not in TEST_SUBJECTS or key in CORRUPT_SEQUENCES:
    return False
  if protocol == 'p2_original':
    return trial == 0 and camera == FRONTAL_CAMERA
  return True


def select(filenames: Sequence, protocol: str
          ) -> Tuple[np.ndarray, List[Tuple[int, str, int, int]]]:
  """Which frames a protocol evaluates.

  Args:
    filenames: [N] file names (str or bytes).
    protocol: one of PROTOCOLS.

  Returns:
    (mask [N] bool, keys: the N (subject, action, trial, camera) tuples).
  """
  keys = sequence_keys(filenames)
  mask = np.array([selected(k, protocol) for k in keys], dtype=bool)
  return mask, keys


def action_table(keys: Sequence[Tuple[int, str, int, int]],
                 errors: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
  """Per-action errors, the original's way.

  Args:
    keys: [N] sequence keys of the evaluated (already selected) frames.
    errors: metric name -> [N] per-frame errors (mm).

  Returns:
    {action: {metric: mean over the action's sequences of the sequence
    means, 'num_frames': int, 'num_sequences': int}} for the actions present,
    in ACTIONS order, plus 'mean_over_actions': {metric: the mean of the
    action means}.
  """
  by_seq: Dict[Tuple[int, str, int, int], List[int]] = {}
  for i, key in enumerate(keys):
    by_seq.setdefault(key, []).append(i)
  table: Dict[str, Dict[str, float]] = {}
  for action in ACTIONS:
    seqs = [idx for key, idx in by_seq.items() if key[1] == action]
    if not seqs:
      continue
    row = {name: float(np.mean([np.mean(np.asarray(values)[idx])
                                for idx in seqs]))
           for name, values in errors.items()}
    row['num_frames'] = int(sum(len(idx) for idx in seqs))
    row['num_sequences'] = len(seqs)
    table[action] = row
  if table:
    table['mean_over_actions'] = {
        name: float(np.mean([row[name] for row in table.values()]))
        for name in errors}
  return table
