"""What the CPU computes natively, read from /proc/cpuinfo (no TensorFlow).

bfloat16 inference only pays on CPUs with bfloat16 instructions: x86's
AVX-512 BF16 (`avx512_bf16`) or AMX (`amx_bf16`), ARM's BF16 extension
(`bf16` in the `Features` line). Elsewhere oneDNN emulates it, and a
bfloat16 export runs slower than the float32 one (issue 26 measured 0.84x
on an AVX2-only Zen 3), so the export warns.
"""

from typing import FrozenSet, Optional

CPUINFO = '/proc/cpuinfo'
# Flags that mean bfloat16 arithmetic in hardware: x86 (Linux's names for
# AVX-512 BF16 and AMX-BF16) and ARM (FEAT_BF16).
NATIVE_BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16', 'bf16'})
# The cpuinfo keys that list features: x86 says `flags`, ARM `Features`.
_FLAG_KEYS = ('flags', 'features')


def parse_cpu_flags(cpuinfo: str) -> FrozenSet[str]:
  """The feature flags of /proc/cpuinfo's text (the union over its CPUs).

  Args:
    cpuinfo: the file's text.

  Returns:
    Lower-case flag names, e.g. {'avx2', 'avx512f', 'amx_bf16', ...}; empty
    when the text lists none.
  """
  found = set()
  for line in cpuinfo.splitlines():
    key, sep, value = line.partition(':')
    if sep and key.strip().lower() in _FLAG_KEYS:
      found.update(value.lower().split())
  return frozenset(found)


def cpu_flags(path: str = CPUINFO) -> Optional[FrozenSet[str]]:
  """This machine's CPU flags, or None where `path` cannot be read."""
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      return parse_cpu_flags(f.read())
  except OSError:
    return None


def has_native_bf16(flags: Optional[FrozenSet[str]]) -> Optional[bool]:
  """Whether the flags include bfloat16 instructions (None: unknown).

  Args:
    flags: `cpu_flags()`'s result; None or empty means nothing is known
      (no /proc/cpuinfo, e.g. macOS or Windows).
  """
  if not flags:
    return None
  return bool(flags & NATIVE_BF16_FLAGS)


def describe_cpu(path: str = CPUINFO) -> str:
  """'<model name>; <the vector and matrix flags present>' for reports."""
  model = 'unknown CPU'
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      text = f.read()
  except OSError:
    return model
  for line in text.splitlines():
    key, sep, value = line.partition(':')
    if sep and key.strip().lower() == 'model name':
      model = value.strip()
      break
  shown = sorted(f for f in parse_cpu_flags(text)
                 if f.startswith(('avx', 'amx')) or f == 'bf16')
  return f'{model}; {" ".join(shown) or "no AVX/AMX flags"}'


def bf16_export_warning(
    flags: Optional[FrozenSet[str]]) -> Optional[str]:
  """The warning for a bfloat16 export on a CPU without bfloat16, or None.

  Args:
    flags: `cpu_flags()`'s result (injected in tests).

  Returns:
    One line to log where the flags are known and lack every
    NATIVE_BF16_FLAGS entry; None where the CPU has them or nothing is known.
  """
  if has_native_bf16(flags) is not False:
    return None
  return ('--export_precision=bfloat16 on a CPU without bfloat16 '
          'instructions (no avx512_bf16, amx_bf16 or bf16 in '
          f'{CPUINFO}): TensorFlow emulates it here and the export will run '
          'slower than float32 on this machine; it pays on CPUs with '
          'AVX-512 BF16 or AMX, and on GPUs or TPUs')
